"""Machine access and the guards every endpoint shares.

API keys and the token exchange, the caller's identity, tenant members, the audit log and
per-tenant rate limits.

Cross-cutting: it imports only config, clients, store, errors, auth and http models, so the HTTP
layer (`promptopt.http.serve`) can use it without reaching up into a domain.
"""
