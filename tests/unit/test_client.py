"""The Python client's pure parts: lazy import, credentials, errors, paging, the gate's rule, reports."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from promptopt.client import errors
from promptopt.client.auth import ApiKey, BearerToken
from promptopt.client.client import credentials_from
from promptopt.client.gate import GateResult, Score, judge
from promptopt.client.paging import pages
from promptopt.client.report import junit_xml, markdown, text
from promptopt.tooling.build import NEVER_BUNDLED


def test_importing_the_package_does_not_load_the_client() -> None:
    code = (
        "import sys, promptopt\n"
        "assert 'promptopt.client' not in sys.modules and 'httpx' not in sys.modules\n"
        "from promptopt import Client\n"
        "assert Client.__module__ == 'promptopt.client.client'\n"
        "try:\n    promptopt.Nope\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "client" in NEVER_BUNDLED  # functions never carry it (nor its httpx and tenacity)


def test_credentials_prefer_explicit_then_token_then_key() -> None:
    assert isinstance(credentials_from(token="t", api_key="k", env={}), BearerToken)
    assert isinstance(credentials_from(token=None, api_key="k", env={"PROMPTOPT_TOKEN": "t"}), ApiKey)
    env = {"PROMPTOPT_TOKEN": "Bearer t", "PROMPTOPT_API_KEY": "k"}
    found = credentials_from(token=None, api_key=None, env=env)
    assert isinstance(found, BearerToken)
    assert found.token == "t"  # a pasted "Bearer ..." is tolerated
    assert isinstance(credentials_from(token=None, api_key=None, env={"PROMPTOPT_API_KEY": "k"}), ApiKey)
    assert credentials_from(token=None, api_key=None, env={"PROMPTOPT_TOKEN": "  "}) is None
    assert "k" not in repr(ApiKey("k-secret-value"))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.InvalidRequest),
        (401, errors.AuthenticationFailed),
        (403, errors.PermissionDenied),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (412, errors.VersionConflict),
        (422, errors.Unprocessable),
        (429, errors.RateLimited),
        (503, errors.ServerError),
        (418, errors.ApiError),
    ],
)
def test_an_error_class_per_status(status: int, kind: type[errors.ApiError]) -> None:
    error = errors.error_class(status)(status, {"code": "some_code", "detail": "why"}, "GET", "u")
    assert type(error) is kind
    assert isinstance(error, errors.PromptoptError)
    assert (error.code, error.detail, str(error)) == ("some_code", "why", f"why (some_code, HTTP {status})")


@dataclass
class _Page:
    items: list[int]
    next_page_token: str | None


def test_pages_follow_tokens_and_stop_on_a_repeat() -> None:
    book = {None: _Page([1], "a"), "a": _Page([2], "b"), "b": _Page([3], "a")}
    assert [i for p in pages(lambda token: book[token]) for i in p.items] == [1, 2, 3]


def _score(mean: float, low: float, high: float, n: int = 30) -> Score:
    return Score(mean, low, high, n)


def test_the_rule_needs_a_significant_drop_unless_told_otherwise() -> None:
    same = _score(0.8, 0.7, 0.9)
    noisy = _score(-0.05, -0.12, 0.02)  # dropped, but the CI reaches above zero
    assert judge("m", same, same, noisy, max_drop=0.02, floor=None, rule="ci").passed
    assert not judge("m", same, same, noisy, max_drop=0.02, floor=None, rule="mean").passed
    real = _score(-0.3, -0.45, -0.15)
    assert not judge("m", same, same, real, max_drop=0.02, floor=None, rule="ci").passed
    assert judge("m", same, same, real, max_drop=0.5, floor=None, rule="ci").passed  # within the allowance
    floored = judge("m", same, same, _score(0, 0, 0), max_drop=0.02, floor=0.85, rule="ci")
    assert floored.failures == ["mean 0.800 is under its floor 0.85"]


def test_reports_say_the_same_thing_three_ways() -> None:
    base = _score(0.9, 0.8, 1.0)
    verdicts = [
        judge("exact_match", _score(0.2, 0.1, 0.3), base, _score(-0.7, -0.85, -0.55), max_drop=0.02,
              floor=None, rule="ci"),
        judge("contains|x", base, base, _score(0, 0, 0), max_drop=0.02, floor=0.5, rule="ci"),
    ]  # fmt: skip
    result = GateResult(
        passed=False, metrics=verdicts, candidate="inline prompt", baseline="pr_1 label production",
        dataset_id="ds_1", dataset_version=2, split="test", model="sim:default", simulated=True,
    )  # fmt: skip
    table = text(result)
    assert "gate FAILED" in table
    assert "exact_match: dropped -0.700" in table
    md = markdown(result)
    assert md.startswith("### ❌ promptopt gate failed")
    assert "contains\\|x" in md  # a pipe cannot break the table
    suite = ET.fromstring(junit_xml(result)).find("testsuite")  # noqa: S314 - our own output
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["exact_match"].find("failure") is not None
    assert cases["contains|x"].find("failure") is None
    assert result.as_dict()["failures"] == result.failures
