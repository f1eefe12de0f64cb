"""A local RS256 token issuer: real signatures and a JWKS, offline, for the local gateway and tests.

The key pair lives in an issuer folder (default `~/.config/promptopt/dev-issuer/`, or
`PROMPTOPT_DEV_ISSUER_DIR`), created on first use. Tokens it mints are verified by the local
gateway exactly as API Gateway verifies the production issuer's tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from promptopt.auth import ROLE_CLAIM, TENANT_CLAIM

DEV_ISSUER = "https://dev-issuer.promptopt.local"
DEV_AUDIENCE = "promptopt-local"
# Firebase Auth and Identity Platform ID tokens live one hour; the local gateway accepts no longer
# lifetime, so a dev token cannot outlive what production would issue.
MAX_TTL_S = 3600
PRIVATE_KEY_FILE = "private.pem"
_lock = threading.Lock()
_keys: dict[Path, tuple[rsa.RSAPrivateKey, str]] = {}


def issuer_url() -> str:
    """The `iss` this issuer signs: PROMPTOPT_DEV_ISSUER_URL, else DEV_ISSUER."""
    return os.environ.get("PROMPTOPT_DEV_ISSUER_URL") or DEV_ISSUER


def audience() -> str:
    """The `aud` this issuer signs: PROMPTOPT_DEV_AUDIENCE, else DEV_AUDIENCE."""
    return os.environ.get("PROMPTOPT_DEV_AUDIENCE") or DEV_AUDIENCE


def default_dir() -> Path:
    """The issuer folder: PROMPTOPT_DEV_ISSUER_DIR, else ~/.config/promptopt/dev-issuer."""
    env = os.environ.get("PROMPTOPT_DEV_ISSUER_DIR")
    return Path(env) if env else Path.home() / ".config" / "promptopt" / "dev-issuer"


def _create_key(path: Path) -> None:
    """Write a new private key unless one exists; concurrent creators agree on one winner.

    The key is written to a private temporary file and hard-linked into place: `link` fails when
    the target exists, so a second process never replaces a key the first has already used.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _kid(key: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint of the public key: stable across processes and restarts."""
    jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    return jwt.utils.base64url_encode(digest.finalize()).decode()


def _load(issuer_dir: Path | None) -> tuple[rsa.RSAPrivateKey, str]:
    folder = (issuer_dir or default_dir()).expanduser().resolve()
    with _lock:
        cached = _keys.get(folder)
        if cached is not None:
            return cached
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / PRIVATE_KEY_FILE
        if not path.is_file():
            _create_key(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"{path} does not hold an RSA private key")
        _keys[folder] = (key, _kid(key.public_key()))
        return _keys[folder]


def mint_token(
    *,
    tenant: str,
    role: str,
    subject: str = "dev-user",
    ttl_s: int = 3600,
    issuer_dir: Path | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """An RS256 token for `subject` in `tenant` with `role`, valid for `ttl_s` seconds.

    `extra_claims` are merged last, so tests can override any standard claim (for example an
    expired `exp` or a foreign `aud`). A `ttl_s` over MAX_TTL_S is a ValueError (the gateway
    would refuse the token); a negative one gives an expired token.
    """
    if ttl_s > MAX_TTL_S:
        raise ValueError(f"a dev token lives at most {MAX_TTL_S} s (an ID token's lifetime), not {ttl_s}")
    key, kid = _load(issuer_dir)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer_url(),
        "aud": audience(),
        "sub": subject,
        "iat": now,
        "exp": now + ttl_s,
        TENANT_CLAIM: tenant,
        ROLE_CLAIM: role,
        "email": f"{subject}@dev.local",
    }
    claims.update(extra_claims or {})
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def jwks(issuer_dir: Path | None = None) -> dict[str, Any]:
    """The issuer's public key set (`{"keys": [...]}`), as a verifier fetches it."""
    key, kid = _load(issuer_dir)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.pop("key_ops", None)  # `use` says the same; RFC 7517 advises against carrying both
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}


def write_jwks(path: Path, issuer_dir: Path | None = None) -> None:
    """Write the JWKS to `path` atomically (readers never see a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(jwks(issuer_dir), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- the second identity: tokens the platform signs in exchange for API keys -----------------------

API_TOKEN_ISSUER = "https://dev-issuer.promptopt.local/api-tokens"  # noqa: S105 - a URL
API_TOKEN_AUDIENCE = "promptopt-local-api"  # noqa: S105 - an audience
API_TOKEN_DIR = "api-tokens"  # noqa: S105 - a folder name
MEMBERS_FILE = "members.json"


def api_token_dir(issuer_dir: Path | None = None) -> Path:
    """The folder of the API-token key (`private.pem`), inside the issuer folder.

    In the cloud the token-signing service account plays this part (IAM signJwt); locally the
    exchange function signs with this key (PROMPTOPT_API_TOKEN_KEY_FILE) and the local gateway
    trusts its JWKS as the `promptopt_api_token` scheme.
    """
    return (issuer_dir or default_dir()).expanduser().resolve() / API_TOKEN_DIR


def write_api_token_trust(path: Path, issuer_dir: Path | None = None) -> Path:
    """Create the API-token key if needed and write the gateway's trust file; the key's path."""
    folder = api_token_dir(issuer_dir)
    trust = {"issuer": API_TOKEN_ISSUER, "audiences": [API_TOKEN_AUDIENCE], "jwks": jwks(folder)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(trust, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return folder / PRIVATE_KEY_FILE


def members_file(issuer_dir: Path | None = None) -> Path:
    """The dev issuer's registry of members' tenant and role (promptopt.access.directory writes it)."""
    return (issuer_dir or default_dir()).expanduser().resolve() / MEMBERS_FILE


def registered_claims(subject: str, issuer_dir: Path | None = None) -> dict[str, str] | None:
    """The tenant and role the members API gave `subject`, if any (as Firebase custom claims)."""
    path = members_file(issuer_dir)
    if not path.is_file():
        return None
    entry = json.loads(path.read_text(encoding="utf-8")).get(subject)
    if not entry or TENANT_CLAIM not in entry:
        return None
    return {TENANT_CLAIM: entry[TENANT_CLAIM], ROLE_CLAIM: entry[ROLE_CLAIM]}
