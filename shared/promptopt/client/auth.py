"""How the client proves who it is: a bearer token, an API key (exchanged for you) or a dev token.

- `BearerToken`: a token you already have (a Firebase / Identity Platform ID token, or one
  `promptopt auth dev-token` printed). Sent as is; it is not refreshed.
- `ApiKey`: a tenant's API key (for CI and other machines). It is exchanged at
  POST /api/v1/auth/token for a short-lived bearer token, which is cached and exchanged again
  a minute before it expires, or at once when the API answers 401.
- `DevToken`: for the local stack, a token minted by the local dev issuer (its key lives in
  ~/.config/promptopt/dev-issuer); re-minted before it expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from promptopt.client.errors import AuthenticationFailed

if TYPE_CHECKING:
    from promptopt.client.http import HttpClient

#: A cached token is replaced this many seconds before it expires.
REFRESH_MARGIN_S = 60.0
TOKEN_PATH = "/auth/token"  # noqa: S105 - a path, not a secret


class Credentials(Protocol):
    """What the HTTP client asks for before each request, and after a 401."""

    def authorization(self, http: HttpClient) -> str | None:
        """The Authorization header value (None: send none)."""
        ...

    def refresh(self) -> bool:
        """Forget the current token; True when asking again may give a better one."""
        ...


def _bearer(token: str) -> str:
    token = token.strip()
    if token.lower().startswith("bearer "):  # tolerate a pasted "Bearer eyJ..."
        token = token[7:].strip()
    return token


class BearerToken:
    """A fixed bearer token (a user's ID token or a dev token)."""

    def __init__(self, token: str) -> None:
        self.token = _bearer(token)

    def authorization(self, http: HttpClient) -> str | None:
        """`Bearer <token>`."""
        return f"Bearer {self.token}" if self.token else None

    def refresh(self) -> bool:
        """A fixed token cannot be refreshed."""
        return False

    def __repr__(self) -> str:
        return "BearerToken(***)"


@dataclass(frozen=True)
class IssuedToken:
    """The answer of the API-key exchange."""

    token: str
    token_type: str
    expires_in: int
    tenant: str
    role: str


class _Cached:
    """A token with its expiry, replaced REFRESH_MARGIN_S early; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self, make: Callable[[], tuple[str, float]]) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                token, lifetime = make()
                self._token, self._expires_at = token, self._clock() + float(lifetime)
            return self._token

    def clear(self) -> None:
        with self._lock:
            self._token = None


class ApiKey:
    """An API key, exchanged at POST /api/v1/auth/token for a short-lived bearer token."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key.strip()
        self._cache = _Cached()
        self.issued: IssuedToken | None = None

    def exchange(self, http: HttpClient) -> IssuedToken:
        """Exchange the key now (AuthenticationFailed, code invalid_api_key, when it is refused)."""
        reply = http.request("POST", TOKEN_PATH, json={"api_key": self._api_key}, authenticate=False)
        body = reply.body if isinstance(reply.body, dict) else {}
        if not isinstance(body.get("token"), str):
            problem = {"detail": "the token exchange answered without a token", "code": "invalid_response"}
            raise AuthenticationFailed(reply.status, problem, "POST", http.base_url + TOKEN_PATH)
        self.issued = IssuedToken(
            token=body["token"],
            token_type=str(body.get("token_type") or "Bearer"),
            expires_in=int(body.get("expires_in") or 300),
            tenant=str(body.get("tenant") or ""),
            role=str(body.get("role") or ""),
        )
        return self.issued

    def authorization(self, http: HttpClient) -> str | None:
        """`Bearer <the exchanged token>`, exchanging the key when there is none or it is stale."""

        def make() -> tuple[str, float]:
            issued = self.exchange(http)
            return issued.token, issued.expires_in

        return f"Bearer {self._cache.get(make)}"

    def refresh(self) -> bool:
        """Exchange again on the next request."""
        self._cache.clear()
        return True

    def __repr__(self) -> str:
        return "ApiKey(***)"


class DevToken:
    """A token from the local dev issuer for `tenant` and `role` (the local stack only)."""

    def __init__(self, tenant: str, role: str = "editor", *, subject: str = "dev-user", ttl_s: int = 3600):
        self.tenant, self.role, self.subject, self.ttl_s = tenant, role, subject, ttl_s
        self._cache = _Cached()

    def authorization(self, http: HttpClient) -> str | None:
        """`Bearer <a freshly minted token>` (minted again before it expires)."""
        from promptopt.local.dev_issuer import mint_token

        def make() -> tuple[str, float]:
            token = mint_token(tenant=self.tenant, role=self.role, subject=self.subject, ttl_s=self.ttl_s)
            return token, self.ttl_s

        return f"Bearer {self._cache.get(make)}"

    def refresh(self) -> bool:
        """Mint a new token on the next request."""
        self._cache.clear()
        return True
