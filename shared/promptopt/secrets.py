"""Secrets by name: env or files locally, Secret Manager in the cloud.

Lookup order for `secret("openai_api_key")`:
1. env `PROMPTOPT_SECRET_OPENAI_API_KEY`;
2. the file `$PROMPTOPT_SECRETS_DIR/openai_api_key` (local stand-in, no emulator exists);
3. Secret Manager `projects/<project>/secrets/openai_api_key/versions/latest`, only when running
   in the cloud (`PROMPTOPT_ENVIRONMENT` is not `local`).
Values are cached per process; `reset` forgets them.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from promptopt.config import settings

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
_lock = threading.Lock()
_cache: dict[str, str] = {}


class SecretNotFoundError(KeyError):
    """No source holds the named secret."""


def secret(name: str) -> str:
    """The secret's value (stripped of surrounding whitespace); raises SecretNotFoundError."""
    if not _NAME.match(name):
        raise ValueError(f"invalid secret name {name!r}")
    cached = _cache.get(name)
    if cached is not None:
        return cached
    value = _lookup(name)
    with _lock:
        _cache[name] = value
    return value


def _lookup(name: str) -> str:
    env_value = os.environ.get("PROMPTOPT_SECRET_" + name.upper().replace("-", "_"))
    if env_value:
        return env_value.strip()
    directory = os.environ.get("PROMPTOPT_SECRETS_DIR")
    if directory:
        path = Path(directory) / name
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    cfg = settings()
    if cfg.environment != "local":
        return _secret_manager(cfg.project_id, name)
    raise SecretNotFoundError(f"secret {name} not found in env or PROMPTOPT_SECRETS_DIR")


def _secret_manager(project: str, name: str) -> str:
    # Imported here: only functions that read secrets in the cloud pay for the import.
    from google.api_core import exceptions
    from google.cloud import secretmanager

    client = secretmanager.SecretManagerServiceClient()
    try:
        # Secret Manager ids are hyphenated, as Terraform creates them (openai_api_key -> openai-api-key).
        secret_id = name.replace("_", "-")
        version = f"projects/{project}/secrets/{secret_id}/versions/latest"
        response = client.access_secret_version(name=version)
    except exceptions.NotFound:
        raise SecretNotFoundError(f"secret {name} not found in Secret Manager") from None
    return str(response.payload.data.decode("utf-8")).strip()


def reset() -> None:
    """Forget cached secrets (tests change the environment)."""
    with _lock:
        _cache.clear()
