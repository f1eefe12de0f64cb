import pytest

from promptopt.errors import InvalidRequest
from promptopt.store.pagination import decode_token, encode_token


def test_token_round_trip() -> None:
    token = encode_token(["2026-01-01T00:00:00+00:00", "pr_1"], {"name": None})
    assert decode_token(token, {"name": None}) == ["2026-01-01T00:00:00+00:00", "pr_1"]
    assert decode_token(None, {}) is None


@pytest.mark.parametrize("token", ["garbage", "e30", "!!!"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_token(token, {})


def test_token_from_another_query_is_refused() -> None:
    token = encode_token([1], {"name": "a"})
    with pytest.raises(InvalidRequest, match="different query"):
        decode_token(token, {"name": "b"})
