"""`promptopt`: the user's command line client for the promptopt HTTP API (never bundled).

The package imports nothing heavy at import time: the HTTP client (httpx), the local dev issuer
and firebase-admin are loaded only by the commands that use them, so `promptopt --help` is instant.
"""
