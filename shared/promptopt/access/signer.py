"""Signing API tokens without a private key the project stores.

In the cloud the token-signing service account signs through the IAM Service Account Credentials
API (`projects/-/serviceAccounts/<email>:signJwt`): Google holds the key, rotates it, and publishes
the public keys at https://www.googleapis.com/service_accounts/v1/metadata/jwk/<email>, which the
gateway trusts as a second issuer. The calling function needs only
`iam.serviceAccounts.signJwt` on that one account (Terraform grants it to the exchange function).

Locally the dev issuer's API-token key (`PROMPTOPT_API_TOKEN_KEY_FILE`, written by the local stack)
signs RS256 with its RFC 7638 thumbprint as `kid`; the local gateway trusts its JWKS.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from promptopt.config import settings

IAM_CREDENTIALS = "https://iamcredentials.googleapis.com/v1"
_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class SignerNotConfigured(RuntimeError):
    """Neither a local key nor a signing account is configured."""


def sign(claims: dict[str, Any]) -> str:
    """The signed JWT for `claims` (their `iss` must be the configured issuer)."""
    cfg = settings()
    if cfg.api_token_key_file:
        return _sign_local(claims, cfg.api_token_key_file)
    if not cfg.api_token_issuer or "@" not in cfg.api_token_issuer:
        raise SignerNotConfigured(
            "no API-token signer: set PROMPTOPT_API_TOKEN_ISSUER to the token service account's email"
        )
    return _sign_iam(claims, cfg.api_token_issuer)


@functools.lru_cache(maxsize=2)
def _local_key(path: str) -> tuple[Any, str]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm
    from jwt.utils import base64url_encode

    with open(path, "rb") as handle:
        # Our own key, written by the local stack: its RSA consistency check (~40 ms of CPU on
        # the exchange function's first request) guards against keys from untrusted sources.
        key = serialization.load_pem_private_key(
            handle.read(), password=None, unsafe_skip_rsa_key_validation=True
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{path} does not hold an RSA private key")
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(canonical.encode())
    return key, base64url_encode(hasher.finalize()).decode()


def _sign_local(claims: dict[str, Any], path: str) -> str:
    import jwt

    key, kid = _local_key(path)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@functools.lru_cache(maxsize=1)
def _session() -> Any:
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=[_SCOPE])
    return AuthorizedSession(credentials)


def _sign_iam(claims: dict[str, Any], account: str) -> str:
    url = f"{IAM_CREDENTIALS}/projects/-/serviceAccounts/{account}:signJwt"
    response = _session().post(url, json={"payload": json.dumps(claims)}, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"signJwt answered {response.status_code}")
    return str(response.json()["signedJwt"])


def reset() -> None:
    """Forget cached keys and sessions (tests)."""
    _local_key.cache_clear()
    _session.cache_clear()
