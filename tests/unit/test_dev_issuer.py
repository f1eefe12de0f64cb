"""The local RS256 issuer: key handling, claims, JWKS, and safe first use from many processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from promptopt.auth import ROLE_CLAIM, TENANT_CLAIM
from promptopt.local import dev_issuer

PRINT_KID = (
    "import sys; from pathlib import Path; from promptopt.local import dev_issuer; "
    "print(dev_issuer.jwks(Path(sys.argv[1]))['keys'][0]['kid'])"
)


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_DEV_ISSUER_URL", raising=False)
    monkeypatch.delenv("PROMPTOPT_DEV_AUDIENCE", raising=False)


def _verify(token: str, issuer_dir: Path, audience: str = dev_issuer.DEV_AUDIENCE) -> dict[str, object]:
    keys = {k["kid"]: jwt.PyJWK(k).key for k in dev_issuer.jwks(issuer_dir)["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    claims: dict[str, object] = jwt.decode(token, keys[kid], algorithms=["RS256"], audience=audience)
    return claims


def test_key_is_created_private_on_first_use(tmp_path: Path) -> None:
    folder = tmp_path / "issuer"
    dev_issuer.mint_token(tenant="acme", role="viewer", issuer_dir=folder)
    key = folder / dev_issuer.PRIVATE_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.iterdir()] == [dev_issuer.PRIVATE_KEY_FILE]


def test_token_claims_and_header(tmp_path: Path) -> None:
    before = int(time.time())
    token = dev_issuer.mint_token(
        tenant="acme", role="editor", subject="ann", ttl_s=120, issuer_dir=tmp_path, extra_claims={"x": 1}
    )
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == dev_issuer.jwks(tmp_path)["keys"][0]["kid"]
    claims = _verify(token, tmp_path)
    assert claims["iss"] == dev_issuer.DEV_ISSUER
    assert claims["aud"] == dev_issuer.DEV_AUDIENCE
    assert claims["sub"] == "ann"
    assert claims["email"] == "ann@dev.local"
    assert (claims[TENANT_CLAIM], claims[ROLE_CLAIM], claims["x"]) == ("acme", "editor", 1)
    assert isinstance(claims["iat"], int)
    assert before <= claims["iat"] <= before + 5
    assert claims["exp"] == claims["iat"] + 120


def test_extra_claims_override_standard_ones(tmp_path: Path) -> None:
    token = dev_issuer.mint_token(
        tenant="a", role="viewer", issuer_dir=tmp_path, extra_claims={"aud": "other"}
    )
    assert _verify(token, tmp_path, audience="other")["aud"] == "other"


def test_env_overrides_issuer_audience_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_DEV_ISSUER_URL", "https://issuer.test")
    monkeypatch.setenv("PROMPTOPT_DEV_AUDIENCE", "aud-test")
    monkeypatch.setenv("PROMPTOPT_DEV_ISSUER_DIR", str(tmp_path / "env-dir"))
    assert dev_issuer.default_dir() == tmp_path / "env-dir"
    token = dev_issuer.mint_token(tenant="acme", role="admin")
    assert (tmp_path / "env-dir" / dev_issuer.PRIVATE_KEY_FILE).is_file()
    claims = jwt.decode(
        token,
        jwt.PyJWK(dev_issuer.jwks()["keys"][0]).key,
        algorithms=["RS256"],
        audience="aud-test",
        issuer="https://issuer.test",
    )
    assert claims[ROLE_CLAIM] == "admin"


def test_jwks_has_only_public_material(tmp_path: Path) -> None:
    keys = dev_issuer.jwks(tmp_path)["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert {key["kty"], key["alg"], key["use"]} == {"RSA", "RS256", "sig"}
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_write_jwks_is_readable_and_matches(tmp_path: Path) -> None:
    target = tmp_path / "out" / "jwks.json"
    dev_issuer.write_jwks(target, tmp_path / "issuer")
    assert json.loads(target.read_text(encoding="utf-8")) == dev_issuer.jwks(tmp_path / "issuer")
    assert [p.name for p in target.parent.iterdir()] == ["jwks.json"]


def test_processes_racing_on_first_use_agree_on_one_key(tmp_path: Path) -> None:
    folder = tmp_path / "raced"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PRINT_KID, str(folder)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(4)
    ]
    kids = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert kids == {dev_issuer.jwks(folder)["keys"][0]["kid"]}
    assert [p.name for p in folder.iterdir()] == [dev_issuer.PRIVATE_KEY_FILE]


def test_kid_is_stable_across_processes(tmp_path: Path) -> None:
    kid = dev_issuer.jwks(tmp_path)["keys"][0]["kid"]
    out = subprocess.run(
        [sys.executable, "-c", PRINT_KID, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == kid
