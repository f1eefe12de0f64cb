"""Page tokens: signed with the platform signing key, bound to the tenant and the query."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from promptopt import config, secrets
from promptopt.errors import InvalidRequest
from promptopt.store.pagination import PageTokenKeyMissing, decode_token, encode_token


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PROMPTOPT_SECRET_SIGNING_KEY", raising=False)
    monkeypatch.delenv("PROMPTOPT_SECRETS_DIR", raising=False)
    monkeypatch.delenv("PROMPTOPT_ENVIRONMENT", raising=False)
    config.reset()
    secrets.reset()
    yield
    config.reset()
    secrets.reset()


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_token_round_trip() -> None:
    token = encode_token(["2026-01-01T00:00:00+00:00", "pr_1"], {"name": None}, tenant="t1")
    assert decode_token(token, {"name": None}, tenant="t1") == ["2026-01-01T00:00:00+00:00", "pr_1"]
    assert decode_token(None, {}, tenant="t1") is None


@pytest.mark.parametrize("token", ["garbage", "e30", "!!!", "e30.", ".", "e30.!!!"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_token(token, {}, tenant="t1")
    assert caught.value.code == "invalid_page_token"


def test_a_hand_made_cursor_is_refused() -> None:
    genuine = encode_token([5], {"prompt": "pr_1"}, tenant="t1")
    forged_payload = _b64(
        {"c": [1], "s": json.loads(base64.urlsafe_b64decode(genuine.split(".")[0] + "=="))["s"]}
    )
    for forged in (forged_payload, f"{forged_payload}.{genuine.split('.')[1]}"):
        with pytest.raises(InvalidRequest, match="not valid"):
            decode_token(forged, {"prompt": "pr_1"}, tenant="t1")


def test_another_tenants_token_is_refused() -> None:
    token = encode_token([1], {"name": None}, tenant="t1")
    with pytest.raises(InvalidRequest, match="not valid") as caught:
        decode_token(token, {"name": None}, tenant="t2")
    assert caught.value.code == "invalid_page_token"


def test_token_from_another_query_is_refused() -> None:
    token = encode_token([1], {"name": "a"}, tenant="t1")
    with pytest.raises(InvalidRequest, match="different query"):
        decode_token(token, {"name": "b"}, tenant="t1")


def test_the_key_comes_from_the_signing_key_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = encode_token([1], {}, tenant="t1")
    monkeypatch.setenv("PROMPTOPT_SECRET_SIGNING_KEY", "a-deployment-key")
    secrets.reset()
    signed = encode_token([1], {}, tenant="t1")
    assert signed != dev
    assert decode_token(signed, {}, tenant="t1") == [1]
    with pytest.raises(InvalidRequest):  # a token signed with the development key is not accepted
        decode_token(dev, {}, tenant="t1")


def test_outside_the_local_environment_a_missing_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_ENVIRONMENT", "dev")
    config.reset()
    monkeypatch.setattr(
        secrets,
        "_secret_manager",
        lambda project, name: (_ for _ in ()).throw(secrets.SecretNotFoundError(name)),
    )
    with pytest.raises(PageTokenKeyMissing):
        encode_token([1], {}, tenant="t1")
