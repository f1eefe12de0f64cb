"""Every way a token can be wrong is a 401 at the gateway; the function never sees it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.e2e


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def _header(token: str) -> dict[str, object]:
    return jwt.get_unverified_header(token)


def _public_pem(issuer_dir: Path, good: str) -> bytes:
    from promptopt.local.dev_issuer import jwks

    kid = _header(good)["kid"]
    key = next(k for k in jwks(issuer_dir)["keys"] if k["kid"] == kid)
    public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(key))
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[union-attr]


def _bad_tokens(good: str, issuer_dir: Path) -> dict[str, str]:
    claims = _claims(good)
    kid = _header(good)["kid"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "garbage": "not.a.jwt",
        "alg_none": _b64({"alg": "none", "typ": "JWT", "kid": kid}) + "." + _b64(claims) + ".",
        "other_key": jwt.encode(claims, other_key, "RS256", headers={"kid": kid}),
        "hs256_with_public_key": _hs256(claims, kid, _public_pem(issuer_dir, good)),
    }


def _hs256(claims: dict[str, object], kid: object, secret: bytes) -> str:
    import hashlib
    import hmac

    signing_input = _b64({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + _b64(claims)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def tokens(token_for: Callable[..., str], issuer_dir: Path) -> dict[str, str]:
    good = token_for("matrix", "admin")
    bad = _bad_tokens(good, issuer_dir)
    bad["expired"] = token_for("matrix", "admin", ttl_s=-120)
    bad["wrong_audience"] = token_for("matrix", "admin", extra_claims={"aud": "someone-else"})
    bad["wrong_issuer"] = token_for("matrix", "admin", extra_claims={"iss": "https://evil.example"})
    return {"good": good, **bad}


CASES = [
    "garbage",
    "expired",
    "wrong_audience",
    "wrong_issuer",
    "alg_none",
    "other_key",
    "hs256_with_public_key",
]


def test_good_token_passes(gateway: httpx.Client, tokens: dict[str, str]) -> None:
    assert (
        gateway.get("/api/v1/prompts", headers={"Authorization": f"Bearer {tokens['good']}"}).status_code
        == 200
    )


def test_missing_token(gateway: httpx.Client) -> None:
    r = gateway.get("/api/v1/prompts")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("case", CASES)
def test_bad_tokens_are_refused(gateway: httpx.Client, tokens: dict[str, str], case: str) -> None:
    r = gateway.get("/api/v1/prompts", headers={"Authorization": f"Bearer {tokens[case]}"})
    assert r.status_code == 401, (case, r.text)
    assert "bearer" in r.headers.get("www-authenticate", "").lower()
