"""The exceptions the client raises: one class per kind of problem, each carrying the API's code.

Every API error is an `ApiError` holding the problem+json document (`code`, `detail`, `status`,
field `errors`); its class says what kind of problem it is, so callers catch what they can handle:

    try:
        client.prompts.update(prompt_id, output_prompt=text, base_version=3)
    except VersionConflict as error:     # 412: someone saved a newer version
        ...
    except NotFound:                      # 404: no such prompt in this tenant
        ...

`TransportError` means no usable answer came (refused, timed out, broken connection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class PromptoptError(Exception):
    """Base of every error the client raises."""


@dataclass(eq=False)
class ApiError(PromptoptError):
    """The API answered with an error (a problem+json document, or something shaped like one)."""

    status: int
    problem: dict[str, Any]
    method: str
    url: str
    attempts: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def __str__(self) -> str:
        return f"{self.detail} ({self.code}, HTTP {self.status})"

    @property
    def detail(self) -> str:
        """The human explanation."""
        return str(self.problem.get("detail") or self.problem.get("title") or f"HTTP {self.status}")

    @property
    def code(self) -> str:
        """The stable machine code (`validation_failed`, `prompt_not_found`, ...)."""
        return str(self.problem.get("code") or f"http_{self.status}")

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        """Per-field validation errors ({loc, msg, type}), if any."""
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class InvalidRequest(ApiError):
    """400: the request is malformed or fails validation (see `field_errors`)."""


class AuthenticationFailed(ApiError):
    """401: no token, an invalid or expired one, or an API key the exchange refused."""


class PermissionDenied(ApiError):
    """403: the caller's role is too low for this call."""


class NotFound(ApiError):
    """404: no such resource in the caller's tenant (or no such route)."""


class Conflict(ApiError):
    """409: the request conflicts with the current state (an active run, a finished job, ...)."""


class VersionConflict(ApiError):
    """412: the version an update was based on is no longer the latest (ETag mismatch)."""


class Unprocessable(ApiError):
    """422: for example an Idempotency-Key reused with another body."""


class RateLimited(ApiError):
    """429: too many requests, jobs or runs at once; retried automatically before it is raised."""


class ServerError(ApiError):
    """5xx: the API failed; retried automatically (502/503/504) before it is raised."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    412: VersionConflict,
    422: Unprocessable,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The ApiError subclass for an HTTP status (the base class for other 4xx statuses)."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


@dataclass(eq=False)
class TransportError(PromptoptError):
    """No usable answer from the API: connection refused, DNS failure, timeout, broken connection."""

    kind: str  # "connect" | "timeout" | "network"
    url: str
    reason: str
    attempts: int = 1

    def __post_init__(self) -> None:
        super().__init__(f"{self.kind}: {self.reason}")


class UploadFailed(PromptoptError):
    """Cloud Storage refused a signed-URL upload, or never answered (`status` is None then)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(eq=False)
class WaitTimeout(PromptoptError):
    """A wait ran out of time; the work goes on (`last` is what the last poll saw)."""

    what: str
    elapsed_s: float
    last: Any = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.what} did not finish within {self.elapsed_s:.0f}s; it keeps running")


@dataclass(eq=False)
class JobFailed(PromptoptError):
    """A waited-for batch job, dataset version or experiment run ended failed (`result` holds it)."""

    what: str
    reason: str
    result: Any = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.what} failed: {self.reason}")
