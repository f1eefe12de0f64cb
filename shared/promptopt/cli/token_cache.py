"""PROMPTOPT_API_KEY in the CLI: the client's API-key credential, with the token kept between commands.

Each CLI command is a new process, so an in-memory cache would exchange the key on every command.
The exchanged token is kept per API URL and key (the file name is a hash of both; the file, mode
0600, holds the token and when it expires) in `PROMPTOPT_TOKEN_CACHE_DIR`, else
`$XDG_CACHE_HOME/promptopt/tokens`, else `~/.cache/promptopt/tokens`. A token with less than a
minute left is exchanged again, and so is one the API refuses (401).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from promptopt.client.auth import ApiKey

if TYPE_CHECKING:
    from promptopt.client.http import HttpClient

CACHE_DIR_ENV = "PROMPTOPT_TOKEN_CACHE_DIR"
REFRESH_MARGIN_S = 60


def cache_dir() -> Path:
    """Where exchanged tokens are kept."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "promptopt" / "tokens"


class CachedApiKey(ApiKey):
    """An API key whose exchanged token outlives the process (until a minute before it expires)."""

    def __init__(self, api_key: str, api_url: str) -> None:
        super().__init__(api_key)
        name = hashlib.sha256(f"{api_url.rstrip('/')}\0{api_key.strip()}".encode()).hexdigest()[:32]
        self._file = cache_dir() / f"{name}.json"

    def authorization(self, http: HttpClient) -> str | None:
        """The cached token while it has a minute left, else a freshly exchanged (and stored) one."""
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            if float(data["expires_at"]) - REFRESH_MARGIN_S > time.time():
                return f"Bearer {data['token']}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        issued = self.exchange(http)
        with contextlib.suppress(OSError):  # an unwritable cache costs an exchange per command, no more
            self._store(issued.token, issued.expires_in)
        return f"Bearer {issued.token}"

    def refresh(self) -> bool:
        """The API refused the token: forget it, so the next request exchanges the key again."""
        with contextlib.suppress(OSError):
            self._file.unlink()
        return super().refresh()

    def _store(self, token: str, expires_in: int) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._file.with_name(f".{self._file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"token": token, "expires_at": time.time() + expires_in}, handle)
        os.replace(tmp, self._file)
