"""Machine access on the emulators: the exchange signs with a test key (the dev issuer's part),
and a token reaches a function as the gateway forwards it (its verified claims)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from promptopt import config
from promptopt.access import keys, ratelimit, signer
from promptopt.auth import USERINFO_HEADER, encode_userinfo
from tests.conftest import Api
from tests.support import claims_header

ISSUER = "https://api-tokens.test.invalid"
AUDIENCE = "promptopt-test-api"


@pytest.fixture(scope="module")
def access_env(tmp_path_factory: pytest.TempPathFactory, api: Api) -> Iterator[dict[str, str]]:
    """The exchange's signing key and the members registry, as the local stack provides them."""
    folder = tmp_path_factory.mktemp("api-tokens")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = folder / "private.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    env = {
        "PROMPTOPT_API_TOKEN_ISSUER": ISSUER,
        "PROMPTOPT_API_TOKEN_AUDIENCE": AUDIENCE,
        "PROMPTOPT_API_TOKEN_KEY_FILE": str(pem),
        "PROMPTOPT_DEV_MEMBERS_FILE": str(folder / "members.json"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _reset()
    yield {
        **env,
        "public_pem": key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _reset()


def _reset() -> None:
    config.reset()
    signer.reset()
    keys.forget()
    ratelimit.reset()


def forwarded(token: str) -> dict[str, str]:
    """The header the gateway forwards for a token it verified (claims as signed)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return {USERINFO_HEADER: encode_userinfo(claims)}


@pytest.fixture
def make_key(api: Api, access_env: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create a key in a tenant as an admin; the answer's JSON (with the secret)."""

    def make(tenant: str, role: str = "editor", subject: str = "admin-1", **body: Any) -> dict[str, Any]:
        r = api.call(
            "api_keys_create", "POST", "/api/v1/api-keys",
            headers=claims_header(tenant, "admin", subject), json={"name": "ci", "role": role, **body},
        )  # fmt: skip
        assert r.status_code == 201, r.get_json()
        return dict(r.get_json())

    return make


@pytest.fixture
def exchange(api: Api, access_env: dict[str, str]) -> Callable[[str], Any]:
    """POST /auth/token with a key; the raw response."""

    def call(secret: str, client: str = "203.0.113.7") -> Any:
        return api.call(
            "auth_token", "POST", "/api/v1/auth/token", json={"api_key": secret},
            headers={"X-Forwarded-For": client},
        )  # fmt: skip

    return call


def verify(token: str, public_pem: str) -> dict[str, Any]:
    """The token's claims, checked as the gateway checks them."""
    return dict(jwt.decode(token, public_pem, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER))
