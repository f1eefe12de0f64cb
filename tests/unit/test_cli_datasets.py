"""`promptopt datasets ...` without the API: usage errors, the upload bar and the wait line.

The commands against the real functions are in tests/integration/cli/test_cli_datasets.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from promptopt.cli.core.waiting import StatusLine
from promptopt.cli.datasets.upload import UploadProgress
from promptopt.cli.main import main


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


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


def qa_file(path: Path, rows: int = 20, *, bad_lines: tuple[int, ...] = ()) -> Path:
    lines = []
    for i in range(1, rows + 1):
        if i in bad_lines:
            lines.append(json.dumps({"q": f"question {i}"}))  # no "answer"
        else:
            lines.append(json.dumps({"q": f"question {i}", "answer": str(i % 7)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--bundled", "bbh/nope"], "choose one of: bbh/boolean_expressions"),
        (["--bundled", "bbh/navigate", "--input", "x"], "come with their file, format and mapping"),
        (["--name", "x", "--input", "q"], "give a FILE"),
        (["{file}", "--input", "q"], "--name is required"),
        (["{file}", "--name", "x"], "--input COLUMN is required"),
        (
            ["{file}", "--name", "x", "--input", "q", "--max-bad-fraction", "0.2"],
            "applies with --skip-bad-rows",
        ),
        (["{file}", "--name", "x", "--input", "q", "--splits", "0.5,0.5"], "expected three shares"),
        (["{file}", "--name", "x", "--input", "q", "--splits", "0.5,0.3,0.3"], "must sum to 1"),
        (["{txt}", "--name", "x", "--input", "q"], "pass --format"),
        (["{missing}", "--name", "x", "--input", "q"], "no such file"),
        (["{empty}", "--name", "x", "--input", "q"], "the file is empty"),
    ],
)
def test_usage_errors_send_nothing(cli: Offline, tmp_path: Path, argv: list[str], words: str) -> None:
    files = {
        "{file}": str(qa_file(tmp_path / "qa.jsonl")),
        "{txt}": str(qa_file(tmp_path / "qa.txt")),
        "{missing}": str(tmp_path / "missing.jsonl"),
        "{empty}": str(tmp_path / "empty.jsonl"),
    }
    (tmp_path / "empty.jsonl").write_bytes(b"")
    code, _, err = cli("datasets", "create", *[files.get(a, a) for a in argv])
    assert code == 2
    assert words in err
    assert cli.requests == []


def test_the_upload_bar_is_drawn_by_rich_on_a_terminal() -> None:
    stream = Tty()
    progress = UploadProgress(4 * 1024 * 1024, stream=stream)
    progress.restart()
    progress.update(1024 * 1024)
    progress.update(4 * 1024 * 1024)
    progress.finish()
    text = stream.getvalue()
    assert "uploading" in text
    assert "4.0/4.0 MiB" in text
    assert "100%" in text
    assert "━" in text  # rich's bar


def test_off_a_terminal_the_upload_ends_with_one_plain_line() -> None:
    ticks = iter([0.0, 0.0, 2.0, 2.0])
    stream = io.StringIO()
    progress = UploadProgress(4 * 1024 * 1024, stream=stream, clock=lambda: next(ticks))
    progress.restart()
    progress.update(4 * 1024 * 1024)
    progress.finish(ok=False)
    assert stream.getvalue() == "uploading 4.0 MiB / 4.0 MiB  100%  2.0 MiB/s  failed\n"


def test_the_wait_line_is_live_on_a_terminal_and_prints_changes_otherwise() -> None:
    tty = Tty()
    line = StatusLine(tty)
    line.show("version 1: pending")
    line.show("version 1: processing")
    line.finish()
    assert "version 1: processing" in tty.getvalue()
    plain = io.StringIO()
    line = StatusLine(plain)
    for status in ("pending", "pending", "processing", "processing"):
        line.show(f"version 1: {status}")
    line.finish()
    assert plain.getvalue() == "version 1: pending\nversion 1: processing\n"
