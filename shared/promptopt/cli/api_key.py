"""PROMPTOPT_API_KEY: the CLI exchanges the key for a token itself and reuses it until it expires.

The token is cached per API URL and key (the file name is a hash of both; the file, mode 0600,
holds the token and when it expires) in `PROMPTOPT_TOKEN_CACHE_DIR`, else
`$XDG_CACHE_HOME/promptopt/tokens`, else `~/.cache/promptopt/tokens`. A token with less than a
minute left is exchanged again; so is one the API refuses (a revoked key answers the exchange
with 401 invalid_api_key, which the CLI reports).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

API_KEY_ENV = "PROMPTOPT_API_KEY"  # the same name as promptopt.cli.core.context.API_KEY_ENV

CACHE_DIR_ENV = "PROMPTOPT_TOKEN_CACHE_DIR"
REFRESH_MARGIN_S = 60


def cache_dir() -> Path:
    """Where exchanged tokens are kept."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "promptopt" / "tokens"


def _cache_file(api_url: str, api_key: str) -> Path:
    name = hashlib.sha256(f"{api_url.rstrip('/')}\0{api_key}".encode()).hexdigest()[:32]
    return cache_dir() / f"{name}.json"


def _cached(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if float(data["expires_at"]) - REFRESH_MARGIN_S > time.time():
            return str(data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _store(path: Path, token: str, expires_in: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"token": token, "expires_at": time.time() + expires_in}, handle)
    os.replace(tmp, path)


def forget(api_url: str, api_key: str) -> None:
    """Drop the cached token (after the API refused it)."""
    with contextlib.suppress(OSError):
        _cache_file(api_url, api_key).unlink()


def token_for(
    api_url: str,
    api_key: str,
    *,
    timeout_s: float,
    retries: int,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """A bearer token for `api_key`: the cached one while it has a minute left, else a fresh one."""
    path = _cache_file(api_url, api_key)
    token = _cached(path)
    if token is not None:
        return token
    from promptopt.cli.client import ApiClient

    with ApiClient(api_url, timeout_s=timeout_s, retries=retries, transport=transport) as client:
        body = client.exchange_api_key(api_key).body
    token, expires_in = str(body["token"]), int(body["expires_in"])
    with contextlib.suppress(OSError):  # an unwritable cache costs an exchange per command, no more
        _store(path, token, expires_in)
    return token
