"""The CI gate on the simulator: an unchanged prompt passes, a worse one fails, and the files parse."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from promptopt.client import Client
from promptopt.client.report import junit_xml, markdown
from tests.integration.cli.conftest import API_URL, Cli

pytestmark = pytest.mark.integration

BOOLEANS = Path(__file__).parents[3] / "shared" / "datasets" / "bbh" / "boolean_expressions.jsonl"
GOOD = "{input}\nAnswer with True or False."  # the simulator follows a stated answer format
WORSE = "{input}"  # without it, it rambles and exact_match never matches


def _setup(client: Client) -> tuple[str, str]:
    """A dataset of 50 Boolean expressions (30 of them in the test split) and a prompt in production."""
    rows = [json.loads(line) for line in BOOLEANS.read_text(encoding="utf-8").splitlines()[:50]]
    dataset = client.datasets.create(
        rows,
        name="booleans",
        inputs=["input"],
        reference="target",
        splits={"train": 0.2, "validation": 0.2, "test": 0.6},
        wait=True,
    )
    prompt = client.prompts.create(name="booleans", output_prompt=GOOD)
    client.prompts.set_label(prompt.prompt_id, "production", version=1)
    return dataset.dataset.dataset_id, prompt.prompt_id


def test_unchanged_passes_and_worse_fails(client: Client) -> None:
    dataset_id, prompt_id = _setup(client)
    seen: set[str] = set()
    same = client.gate(
        prompt_id=prompt_id,
        dataset_id=dataset_id,
        metrics=["exact_match"],
        model="sim:default",
        on_progress=lambda job: seen.add(job.job_id),
    )
    assert same.passed, same.failures
    (verdict,) = same.metrics
    assert verdict.lift.mean == 0.0
    assert verdict.lift.n >= 20
    assert verdict.candidate.mean > 0.3  # the simulator follows the stated format on many rows
    assert same.candidate_job is not None
    assert same.baseline_job is not None
    assert seen == {same.candidate_job.job_id, same.baseline_job.job_id}
    assert (same.split, same.simulated) == ("test", True)

    # The worse version, against the stored job of the good one (its rows and scores are reused).
    client.prompts.update(prompt_id, output_prompt=WORSE, message="drop the answer format")
    worse = client.gate(
        prompt_id=prompt_id,
        baseline_job=same.candidate_job.job_id,
        metrics=["exact_match"],
        model="sim:default",
    )
    assert not worse.passed
    (dropped,) = worse.metrics
    assert dropped.lift.mean < -0.5
    assert dropped.lift.ci_high < 0
    assert dropped.lift.n == verdict.lift.n
    assert "dropped" in dropped.failures[0]
    assert worse.baseline_job is not None
    assert worse.baseline_job.job_id == same.candidate_job.job_id

    # A floor fails even an unchanged prompt when it is set above what the prompt scores.
    floored = client.gate(
        prompt_id=prompt_id, version=1, dataset_id=dataset_id, metrics=["exact_match"], model="sim:default",
        floors={"exact_match": 1.01},
    )  # fmt: skip
    assert not floored.passed
    assert "floor" in floored.failures[0]

    root = ET.fromstring(junit_xml(worse))  # noqa: S314 - our own output
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    case = suite.find("testcase")
    assert case is not None
    assert case.get("name") == "exact_match"
    assert case.find("failure") is not None
    assert "promptopt gate failed" in markdown(worse)


def test_the_command_fails_a_worse_inline_prompt(cli: Cli, tmp_path: Path) -> None:
    with Client(API_URL, token=cli.token, transport=cli.cloud) as client:
        dataset_id, prompt_id = _setup(client)
    worse = tmp_path / "prompts" / "booleans.txt"  # the file a pull request edited
    worse.parent.mkdir()
    worse.write_text(WORSE, encoding="utf-8")
    junit, summary = tmp_path / "reports" / "gate.xml", tmp_path / "summary.md"
    common = ("--dataset", dataset_id, "--metric", "exact_match", "--model", "sim:default")
    files = ("--junit", str(junit), "--summary", str(summary))

    code, out, err = cli("gate", "--prompt-id", prompt_id, "--label", "production", *common, *files)
    assert code == 0, err
    assert "gate PASSED" in out
    assert "exact_match" in out

    code, out, err = cli(
        "gate", "--prompt-id", prompt_id, "--output-prompt-file", str(worse), *common, *files
    )
    assert code == 3, err
    assert "gate FAILED" in out
    assert "exact_match: dropped" in out
    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 - our own output
    assert suite is not None
    assert suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert "dropped" in (failure.get("message") or "")
    text = summary.read_text(encoding="utf-8")
    assert "promptopt gate passed" in text  # the first run's summary, appended to
    assert "promptopt gate failed" in text

    result = cli.json("gate", "--prompt-id", prompt_id, "--version", "1", *common)
    assert result["passed"] is True
    assert result["metrics"][0]["lift"]["mean"] == 0.0

    missing_job = ("--baseline-job", "bj_00000000000000000000")
    code, _, err = cli("gate", "--prompt-id", prompt_id, *missing_job, "--metric", "exact_match")
    assert code == 2
    assert "job_not_found" in err
