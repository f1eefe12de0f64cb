"""Errors the library raises; the HTTP layer maps each to a problem+json response.

Every error carries a stable machine `code` that clients can branch on; the human `detail`
may change wording between releases, the code may not.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a caller can act on, with its HTTP status and stable code."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra
        # Response headers the problem carries (RateLimit-*, WWW-Authenticate); never in the body.
        self.headers = dict(headers or {})


class InvalidRequest(ApiError):
    """The request is malformed or fails validation."""

    status, code, title = 400, "invalid_request", "Invalid request"


class Unauthenticated(ApiError):
    """No usable identity reached the function."""

    status, code, title = 401, "unauthenticated", "Authentication required"


class Forbidden(ApiError):
    """The caller is known but its role is too low."""

    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(ApiError):
    """The resource does not exist for this tenant (other tenants' resources look the same)."""

    status, code, title = 404, "not_found", "Not found"


class MethodNotAllowed(ApiError):
    """The route exists but not with this method."""

    status, code, title = 405, "method_not_allowed", "Method not allowed"


class PaymentRequired(ApiError):
    """The work would pass the tenant's spending cap for the month."""

    status, code, title = 402, "spending_cap_exceeded", "Spending cap reached"


class Conflict(ApiError):
    """The request conflicts with the current state (for example a request still in flight)."""

    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(ApiError):
    """If-Match did not name the current version."""

    status, code, title = 412, "precondition_failed", "Precondition failed"


class PayloadTooLarge(ApiError):
    """The body exceeds the endpoint's cap."""

    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(ApiError):
    """The body is not JSON."""

    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class Unprocessable(ApiError):
    """Well-formed but semantically unusable (for example an Idempotency-Key reused with another body)."""

    status, code, title = 422, "unprocessable", "Unprocessable request"


class PreconditionRequired(ApiError):
    """A conditional header (If-Match) is required and missing."""

    status, code, title = 428, "precondition_required", "Precondition required"


class TooManyRequests(ApiError):
    """A rate limit refuses the request for now; `retry_after_s` says when to try again."""

    status, code, title = 429, "rate_limited", "Too many requests"
