"""The HTTP side of every endpoint: parsing, identity, idempotency, problem responses."""

from promptopt.http.endpoint import Call, Reply, serve

__all__ = ["Call", "Reply", "serve"]
