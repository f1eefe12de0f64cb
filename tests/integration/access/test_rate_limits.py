"""Per-tenant rate limits: 429 with Retry-After and RateLimit headers past the limit, exact under
concurrency (never more admitted than the limit), per tenant, and recovered once the window passes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from promptopt import config
from promptopt.access import ratelimit
from tests.conftest import Api
from tests.support import new_tenant

pytestmark = pytest.mark.integration

WINDOW_S = 3


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTOPT_RATE_LIMITS", json.dumps({"inference": {"limit": 3, "window_s": WINDOW_S}}))
    config.reset()
    ratelimit.reset()
    yield
    config.reset()
    ratelimit.reset()


def _complete(api: Api, tenant: str) -> object:
    return api.call(
        "inference_complete", "POST", "/api/v1/inference/complete", tenant=tenant, role="editor",
        json={"output_prompt": "{input}", "user_input": "hi"},
    )  # fmt: skip


def test_past_the_limit_is_429_with_headers_and_recovers(api: Api, tenant: str, tight: None) -> None:
    answers = [_complete(api, tenant) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]  # type: ignore[attr-defined]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]  # type: ignore[attr-defined]
    assert answers[0].headers["RateLimit-Limit"] == "3"  # type: ignore[attr-defined]
    assert answers[0].headers["RateLimit-Policy"].startswith(f"3;w={WINDOW_S}")  # type: ignore[attr-defined]
    refused = _complete(api, tenant)
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert refused.get_json()["code"] == "rate_limited"  # type: ignore[attr-defined]
    retry_after = int(refused.headers["Retry-After"])  # type: ignore[attr-defined]
    assert 1 <= retry_after <= WINDOW_S
    assert refused.headers["RateLimit-Remaining"] == "0"  # type: ignore[attr-defined]
    assert refused.headers["RateLimit-Reset"] == str(retry_after)  # type: ignore[attr-defined]
    assert _complete(api, new_tenant()).status_code == 200  # type: ignore[attr-defined]  # per tenant
    time.sleep(retry_after + 0.2)
    assert _complete(api, tenant).status_code == 200  # type: ignore[attr-defined]


def test_concurrent_requests_never_pass_the_limit(tenant: str, tight: None) -> None:
    def attempt(_: int) -> bool:
        try:
            ratelimit.admit("inference", tenant)
        except Exception:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = sum(pool.map(attempt, range(12)))
    assert 1 <= admitted <= 3
