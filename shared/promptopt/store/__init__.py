"""Firestore repositories. Every document lives under `tenants/{tenant}/...`."""
