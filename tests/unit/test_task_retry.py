"""Cloud Tasks' retry schedule, and the local queues' retry configs kept in step with Terraform."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

from promptopt.local import wiring
from promptopt.local.task_retry import RetryConfig, parse_duration
from promptopt.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_schedule() -> None:
    # cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues#RetryConfig
    policy = RetryConfig(max_attempts=-1, min_backoff_s=10, max_backoff_s=300, max_doublings=3)
    assert [policy.delay(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 240, 300, 300]


def test_the_inference_queue_schedule() -> None:
    policy = wiring.queue_retry_config("inference")
    assert [policy.delay(n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 192, 256, 300]


def test_a_task_is_given_up_after_both_attempts_and_duration() -> None:
    policy = RetryConfig(max_attempts=10, max_retry_duration_s=3600)
    assert not policy.gives_up(9, 4000)
    assert not policy.gives_up(10, 700)  # attempts spent, duration not: Cloud Tasks keeps trying
    assert policy.gives_up(10, 3600)
    assert RetryConfig(max_attempts=3, max_retry_duration_s=0).gives_up(3, 0.0)
    assert not RetryConfig(max_attempts=-1, max_retry_duration_s=0).gives_up(10_000, 1e9)


@pytest.mark.parametrize(("text", "seconds"), [("2s", 2.0), ("0.5s", 0.5), ("3600s", 3600.0), (7, 7.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration("5m")


def test_platform_queue_retry_matches_terraform_variables() -> None:
    with (ROOT / "terraform" / "variables.tf").open(encoding="utf-8") as handle:
        variables = {k.strip('"'): v for block in hcl2.load(handle)["variable"] for k, v in block.items()}
    settings = variables["queues"]["default"]
    fields = ("max_attempts", "max_retry_duration", "min_backoff", "max_backoff", "max_doublings")
    terraform = {
        name: {f: (v.strip('"') if isinstance(v, str) else v) for f, v in values.items() if f in fields}
        for name, values in settings.items()
        if not name.startswith("__")
    }
    assert terraform == wiring.PLATFORM_QUEUE_RETRY
    dispatch = {n: v["max_concurrent_dispatches"] for n, v in settings.items() if not n.startswith("__")}
    assert dispatch == wiring.PLATFORM_QUEUE_DISPATCH


def test_queue_retry_defaults_match_the_messaging_module() -> None:
    text = (ROOT / "terraform" / "modules" / "messaging" / "variables.tf").read_text(encoding="utf-8")
    for name, value in wiring.QUEUE_RETRY_DEFAULTS.items():
        spelled = f'"{value}"' if isinstance(value, str) else str(value)
        assert re.search(rf"{name}\s*=\s*optional\(\w+,\s*{re.escape(spelled)}\)", text), name
    spelled = str(wiring.QUEUE_DISPATCH_DEFAULT)
    assert re.search(rf"max_concurrent_dispatches\s*=\s*optional\(\w+,\s*{spelled}\)", text)


def test_the_plan_carries_each_queues_retry_config_and_the_batch_attempts() -> None:
    specs = load_manifest(ROOT)
    plan = wiring.plan(specs, project="p")
    inference = plan.queues["inference"]
    assert plan.queue_retry[inference] == wiring.queue_retry_config("inference")
    assert set(plan.queue_retry) == set(plan.queues.values())
    assert plan.queue_dispatch[inference] == wiring.PLATFORM_QUEUE_DISPATCH["inference"]
    assert plan.env()["PROMPTOPT_BATCH_MAX_ATTEMPTS"] == str(
        wiring.PLATFORM_QUEUE_RETRY["inference"]["max_attempts"]
    )
