"""`promptopt batch ...` without the API: request checks, usage errors, the progress line, help.

The commands against the real functions are in tests/integration/cli/test_cli_batch.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptopt.batch.models import MAX_INLINE_ROWS
from promptopt.cli import batch as cli_batch
from promptopt.cli.core.waiting import StatusLine
from promptopt.cli.main import main


class Offline:
    """Runs the CLI on a transport that records each request and answers none."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(lambda r: self.requests.append(r) or httpx.Response(503))

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--api-url", "http://api.test", "--retries", "0", *argv], transport=self.transport)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Offline:
    return Offline(capsys)


def rows_file(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["not json"], "rows.jsonl:1: not JSON"),
        ([[1, 2]], "rows.jsonl:1: expected a JSON object"),
        ([{"inputs": {"q": "x"}, "answer": "y"}], "unexpected field(s) answer"),
        ([{"reference": "only"}], "rows.jsonl:1: the row has no template variables"),
    ],
)
def test_bad_inputs_files_are_refused_before_any_request(
    cli: Offline, tmp_path: Path, lines: list[Any], message: str
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--inputs", str(path))
    assert code == 2
    assert message in err
    assert cli.requests == []


def test_too_many_inline_rows_point_at_datasets(cli: Offline, tmp_path: Path) -> None:
    assert cli_batch.MAX_INLINE_ROWS == MAX_INLINE_ROWS
    source = rows_file(tmp_path / "big.jsonl", [{"q": str(i)} for i in range(MAX_INLINE_ROWS + 1)])
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--inputs", str(source))
    assert code == 2
    assert f"at most {MAX_INLINE_ROWS}" in err
    assert "promptopt datasets create" in err
    assert cli.requests == []


def test_a_body_above_the_api_cap_is_refused_locally(cli: Offline, tmp_path: Path) -> None:
    from promptopt.config import Settings

    assert Settings().max_body_bytes == cli_batch.MAX_BODY_BYTES
    source = rows_file(tmp_path / "long.jsonl", [{"q": "x" * 40_000} for _ in range(30)])
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--inputs", str(source))
    assert code == 2
    assert "above the API's" in err
    assert cli.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prompt-id", "pr_1", "--output-prompt", "Q: {q}", "--dataset", "ds_ready"], "not both"),
        (
            ["--output-prompt", "Q: {q}", "--version", "2", "--dataset", "ds_ready"],
            "give them with --prompt-id",
        ),
        (["--dataset", "ds_ready"], "give --prompt-id ID or an inline --output-prompt"),
        (["--output-prompt", "Q: {q}", "--inputs", "x.jsonl", "--split", "test"], "apply with --dataset"),
    ],
)
def test_usage_errors(cli: Offline, argv: list[str], message: str) -> None:
    code, _, err = cli("batch", "run", *argv)
    assert code == 2
    assert message in err
    assert cli.requests == []


def test_argparse_refuses_what_it_can(cli: Offline) -> None:
    assert cli("batch", "run", "--output-prompt", "Q: {q}")[0] == 2  # no rows
    assert cli("batch", "run", "--output-prompt", "Q", "--dataset", "d", "--inputs", "f")[0] == 2
    assert cli("batch", "run", "--output-prompt", "Q", "--dataset", "d", "--temperature", "3")[0] == 2
    assert cli("batch", "run", "--prompt-id", "p", "--version", "1", "--label", "x", "--dataset", "d")[0] == 2
    assert cli("batch", "evaluate", "--output-prompt", "Q", "--dataset", "d")[0] == 2  # no --metric
    assert cli.requests == []


def test_metric_help_lists_the_names_of_promptopt_evaluation(capsys: pytest.CaptureFixture[str]) -> None:
    from promptopt.evaluation import METRIC_NAMES, MODEL_METRICS

    assert {"embedding_similarity", "llm_judge"} <= set(MODEL_METRICS)
    assert main(["evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in METRIC_NAMES:
        assert name in text
    assert "calling a model: embedding_similarity, llm_judge" in text
    assert main(["batch", "evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in METRIC_NAMES:  # jobs grade rows with the model-backed metrics too
        assert name in text
    assert "calling a model: embedding_similarity, llm_judge" in text


def test_progress_is_a_live_bar_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    line = StatusLine(stream, bar=True)
    line.show("bj_1 running: 10/50 rows", key="running", completed=10, total=50)
    line.show("bj_1 running: 40/50 rows", key="running", completed=40, total=50)
    line.finish("bj_1 completed: 50/50 rows")
    text = stream.getvalue()
    assert "bj_1 running: 40/50 rows" in text
    assert "━" in text  # rich's bar
    assert "completed" not in text  # the live line goes; the summary follows on stdout


def test_progress_off_a_terminal_is_logged_now_and_then() -> None:
    now = [0.0]
    stream = io.StringIO()
    line = StatusLine(stream, every_s=5.0, clock=lambda: now[0])
    line.show("a 1/9", key="running")
    now[0] = 1.0
    line.show("a 2/9", key="running")  # too soon: not logged
    line.show("a 9/9 evaluating", key="evaluating")  # a new status: logged at once
    now[0] = 7.0
    line.show("a 9/9 evaluating", key="evaluating")  # unchanged: not repeated
    line.finish("a 9/9 completed")
    assert stream.getvalue().splitlines() == ["a 1/9", "a 9/9 evaluating", "a 9/9 completed"]
