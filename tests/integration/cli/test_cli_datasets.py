"""`promptopt datasets ...` against the real dataset functions, the storage emulator and ingestion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptopt.cli import output
from promptopt.cli.datasets.bundled import bundled_dir
from promptopt.cli.datasets.files import INLINE_MAX_BYTES
from tests.integration.cli.conftest import Cli, Fault

pytestmark = pytest.mark.integration

EXPIRED_XML = (
    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code><Message>Invalid argument."
    "</Message><Details>The provided token has expired. Request signature expired at: "
    "2026-01-02T03:19:05+00:00</Details></Error>"
)


def newest(cli: Cli) -> str:
    """The id of the tenant's newest dataset."""
    return str(cli.json("datasets", "list")["items"][0]["dataset_id"])


def qa_file(path: Path, rows: int = 20, *, bad_lines: tuple[int, ...] = ()) -> Path:
    lines = []
    for i in range(1, rows + 1):
        if i in bad_lines:
            lines.append(json.dumps({"q": f"question {i}"}))  # no "answer"
        else:
            lines.append(json.dumps({"q": f"question {i}", "answer": str(i % 7)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def big_file(path: Path, size: int) -> Path:
    """A valid JSONL file of at least `size` bytes."""
    line = json.dumps({"q": "x" * 1000, "answer": "y"}) + "\n"
    count = size // len(line) + 1
    path.write_text(
        "".join(json.dumps({"q": f"{i} " + "x" * 1000, "answer": "y"}) + "\n" for i in range(count))
    )
    return path


# -- create: inline or signed URL --------------------------------------------------------------------


def test_a_small_file_goes_inline_with_an_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    code, out, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--reference", "answer"
    )
    assert code == 0, err
    (post,) = cli.posts()
    assert post.path == "/api/v1/datasets"
    body = post.json()
    assert body["content"] == source.read_text(encoding="utf-8")
    assert "upload_max_bytes" not in body
    assert body["format"] == "jsonl"
    assert body["mapping"] == {"inputs": ["q"], "reference": "answer"}
    assert post.headers["idempotency-key"]
    assert post.headers["authorization"] == f"Bearer {cli.token}"
    assert cli.cloud.storage_puts() == []
    assert "ds_" in out
    assert "inline" in out
    assert "datasets get ds_" in err


def test_non_utf8_content_goes_base64(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes("q,answer\ncaf\xe9,1\n".encode("latin-1"))
    code, _, err = cli("datasets", "create", str(source), "--name", "latin", "--input", "q")
    assert code == 0, err
    body = cli.posts()[0].json()
    assert body["format"] == "csv"
    assert "content" not in body
    assert body["content_base64"] == "cSxhbnN3ZXIKY2Fm6SwxCg=="


def test_a_large_file_is_put_to_the_signed_url_with_exactly_its_headers(cli: Cli, tmp_path: Path) -> None:
    source = big_file(tmp_path / "big.jsonl", INLINE_MAX_BYTES + 10)
    size = source.stat().st_size
    code, out, err = cli(
        "datasets", "create", str(source), "--name", "big", "--input", "q", "--reference", "answer", "--wait"
    )
    assert code == 0, err
    body = cli.posts()[0].json()
    assert "content" not in body
    assert "content_base64" not in body
    assert body["upload_max_bytes"] == size
    (put,) = cli.cloud.storage_puts()
    assert put.method == "PUT"
    assert "/datasets/ds_" in put.path
    assert put.body == source.read_bytes()
    assert put.headers["content-type"] == "application/x-ndjson"
    assert put.headers["x-goog-content-length-range"] == f"0,{size}"
    assert put.headers["content-length"] == str(size)
    assert "authorization" not in put.headers  # the bearer token never goes to storage
    assert "idempotency-key" not in put.headers
    assert "transfer-encoding" not in put.headers
    assert not any(r.method == "PUT" for r in cli.cloud.sent())  # nothing PUT through the API
    # stderr is not a terminal here: one final progress line, no carriage returns
    assert "\r" not in err
    (bar,) = [line for line in err.splitlines() if line.startswith("uploading ")]
    assert "100%" in bar
    assert output.human_bytes(size) in bar
    assert "/s" in bar
    assert "ready" in out
    assert "signed upload URL" in out


def test_via_forces_the_transfer(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 0, err
    assert "upload_max_bytes" in cli.posts()[0].json()
    assert len(cli.cloud.storage_puts()) == 1


def test_a_file_above_the_url_limit_is_refused_before_uploading(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptopt import config

    monkeypatch.setenv("PROMPTOPT_DATASET_MAX_BYTES", "100")
    config.reset()
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 2
    assert "above the 100 bytes" in err
    assert cli.cloud.storage_puts() == []


# -- signed-URL failures ------------------------------------------------------------------------------


def test_an_expired_upload_url_is_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    cli.cloud.fail_next(
        "storage",
        Fault("storage", status=400, headers={"Content-Type": "application/xml"}, body=EXPIRED_XML.encode()),
    )
    source = big_file(tmp_path / "big.jsonl", INLINE_MAX_BYTES + 10)
    code, _, err = cli("datasets", "create", str(source), "--name", "big", "--input", "q")
    assert code == 2
    assert len(cli.cloud.storage_puts()) == 1  # a 400 is not retried
    assert "upload failed: the signed upload URL expired at " in err
    assert "ExpiredToken" in err
    assert "The provided token has expired" in err
    assert f"promptopt datasets upload {source} ds_" in err
    assert "Traceback" not in err
    assert "<Error>" not in err
    assert "failed" in err.splitlines()[0]  # the bar's last line says it stopped


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (403, "SignatureDoesNotMatch", "refused the upload URL's signature"),
        (400, "EntityTooLarge", "larger than the upload URL allows"),
        (400, "MalformedSecurityHeader", "header the upload URL was signed with"),
        (403, "AccessDenied", "denied the upload"),
        (418, "Teapot", "Cloud Storage refused the upload"),
    ],
)
def test_storage_errors_become_messages(cli: Cli, tmp_path: Path, status: int, code: str, words: str) -> None:
    xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>Nope.</Message></Error>"
    cli.cloud.fail_next(
        "storage",
        Fault("storage", status=status, headers={"Content-Type": "application/xml"}, body=xml.encode()),
    )
    source = qa_file(tmp_path / "qa.jsonl")
    exit_code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert exit_code == 2
    assert words in err
    assert f"HTTP {status} {code}: Nope." in err


def test_a_busy_storage_is_retried_with_the_whole_file(cli: Cli, tmp_path: Path) -> None:
    cli.cloud.fail_next(
        "storage",
        Fault("storage", status=503, headers={}, body=b"<Error><Code>ServiceUnavailable</Code></Error>"),
    )
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 0, err
    assert [p.body for p in cli.cloud.storage_puts()] == [source.read_bytes()] * 2


def test_storage_failing_every_time_is_exit_1(cli: Cli, tmp_path: Path) -> None:
    cli.cloud.fail_next("storage", *[503] * 4)
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 1
    assert len(cli.cloud.storage_puts()) == 4
    assert "after 4 attempts" in err


def test_a_replayed_create_does_not_upload_twice(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    argv = ("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    code, _, err = cli(*argv, "--idempotency-key", "k-1", "--wait")
    assert code == 0, err
    code, _, err = cli(*argv, "--idempotency-key", "k-1")
    assert code == 0, err
    assert "this Idempotency-Key was used before" in err
    assert len(cli.cloud.storage_puts()) == 1
    assert [p.headers["idempotency-key"] for p in cli.posts()] == ["k-1", "k-1"]


def test_create_retries_a_busy_api_with_the_same_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    cli.cloud.fail_next("api", 503)
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q")
    assert code == 0, err
    first, second = cli.posts()
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body


# -- waiting -----------------------------------------------------------------------------------------


def test_wait_reports_a_failed_version_with_its_bad_rows_and_exit_1(cli: Cli, tmp_path: Path) -> None:
    cli.cloud.hold_events = 2  # ingestion starts two requests after the create
    source = qa_file(tmp_path / "qa.jsonl", bad_lines=(3, 7))
    code, out, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--reference", "answer", "--wait"
    )
    assert code == 1
    assert "version 1 failed (invalid_file): 2 bad row(s) (first on line 3" in out
    assert "bad rows (first 2):" in out
    assert "  line 3: missing field 'answer' (the reference)" in out
    assert "  line 7: missing field 'answer' (the reference)" in out
    assert f"waiting for {newest(cli)} version 1: pending" in err  # the status line while waiting
    assert "hint: to ingest the good rows and skip the bad ones, create it with --skip-bad-rows" in err


def test_wait_with_json_is_one_document_with_the_final_version(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl", bad_lines=(3,))
    code, out, _ = cli(
        "--json",
        "datasets",
        "create",
        str(source),
        "--name",
        "qa",
        "--input",
        "q",
        "--reference",
        "answer",
        "--wait",
    )
    assert code == 1
    document = json.loads(out)
    assert document["version"]["status"] == "failed"
    assert document["version"]["bad_rows"] == [
        {"line": 3, "reason": "missing field 'answer' (the reference)"}
    ]
    assert document["dataset"]["versions"][0]["status"] == "failed"


def test_wait_ready_prints_rows_per_split(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl", rows=50, bad_lines=(5,))
    code, out, err = cli(
        "datasets",
        "create",
        str(source),
        "--name",
        "qa",
        "--input",
        "q",
        "--reference",
        "answer",
        "--skip-bad-rows",
        "--max-bad-fraction",
        "0.1",
        "--splits",
        "0.5,0.25,0.25",
        "--split-seed",
        "7",
        "--wait",
    )
    assert code == 0, err
    body = cli.posts()[0].json()
    assert body["bad_row_policy"] == "skip_bad_rows"
    assert body["max_bad_fraction"] == 0.1
    assert body["splits"] == {"train": 0.5, "validation": 0.25, "test": 0.25}
    assert body["split_seed"] == 7
    ready = next(line for line in out.splitlines() if "ready" in line)
    assert "version 1 ready: 49 rows (train " in ready
    assert "1 bad row(s) skipped" in out
    assert "line 5:" in out


def test_wait_gives_up_after_the_timeout(cli: Cli, tmp_path: Path) -> None:
    cli.cloud.hold_events = 10**6
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--wait", "--wait-timeout", "0.05"
    )
    assert code == 1
    assert "still pending after" in err
    assert "promptopt datasets get ds_" in err


# -- upload a new version -----------------------------------------------------------------------------


def test_upload_makes_a_new_version(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    cli("datasets", "create", str(source), "--name", "qa", "--input", "q")
    ds = newest(cli)
    second = qa_file(tmp_path / "v2.jsonl", rows=30)
    code, out, err = cli("datasets", "upload", str(second), ds, "--via", "url", "--wait")
    assert code == 0, err
    post = cli.posts()[-1]
    assert post.path == f"/api/v1/datasets/{ds}/versions"
    assert post.json() == {"upload_max_bytes": second.stat().st_size}
    assert post.headers["idempotency-key"]
    assert cli.cloud.storage_puts()[-1].path.endswith(f"/datasets/{ds}/v2/source.jsonl")
    assert "version 2 ready: 30 rows" in out


def test_upload_refuses_a_file_of_another_format_before_sending(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    cli("datasets", "create", str(source), "--name", "qa", "--input", "q")
    ds = newest(cli)
    other = tmp_path / "qa.csv"
    other.write_text("q\nx\n")
    code, _, err = cli("datasets", "upload", str(other), ds)
    assert code == 2
    assert "looks like csv" in err
    assert len(cli.posts()) == 1


def test_upload_to_a_missing_dataset_is_a_404(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("datasets", "upload", str(qa_file(tmp_path / "qa.jsonl")), "ds_missing")
    assert code == 2
    assert "dataset_not_found" in err
    assert cli.posts() == []


# -- reading ------------------------------------------------------------------------------------------


@pytest.fixture
def ready(cli: Cli, tmp_path: Path) -> str:
    source = qa_file(tmp_path / "qa.jsonl", rows=40)
    code, _, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--reference", "answer", "--wait"
    )
    assert code == 0, err
    return newest(cli)


def test_get_human_and_json(cli: Cli, ready: str) -> None:
    code, out, _ = cli("datasets", "get", ready)
    assert code == 0
    assert "dataset_id:" in out
    assert "inputs: q; reference: answer" in out
    assert "VERSION  STATUS" in out
    assert "ready" in out
    assert "distinct" in out
    code, out, _ = cli("--json", "datasets", "get", ready, "--versions", "5")
    assert json.loads(out)["dataset_id"] == ready
    assert cli.cloud.sent()[-1].query == {"versions": "5"}


def test_get_shows_why_a_version_failed(cli: Cli, tmp_path: Path) -> None:
    cli(
        "datasets",
        "create",
        str(qa_file(tmp_path / "qa.jsonl", bad_lines=(2,))),
        "--name",
        "qa",
        "--input",
        "q",
        "--reference",
        "answer",
        "--wait",
    )
    ds = newest(cli)
    code, out, _ = cli("datasets", "get", ds)
    assert code == 0
    assert "version 1 failed" in out
    assert "line 2:" in out


def test_list_pages_and_all(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    for name in ("a", "b", "c"):
        cli("datasets", "create", str(source), "--name", name, "--input", "q")
    code, out, err = cli("datasets", "list", "--page-size", "2")
    assert code == 0
    assert out.count("ds_") == 2
    assert "--page-token " in err
    code, out, _ = cli("--json", "datasets", "list", "--page-size", "2", "--all")
    page = json.loads(out)
    assert [d["name"] for d in page["items"]] == ["c", "b", "a"]
    assert page["next_page_token"] is None
    code, out, _ = cli("datasets", "list", "--name", "b")
    assert out.count("ds_") == 1
    assert cli.cloud.sent()[-1].query == {"name": "b"}


def test_sample_passes_its_options(cli: Cli, ready: str) -> None:
    code, out, err = cli(
        "datasets", "sample", ready, "-n", "3", "--split", "train", "--seed", "9", "--version", "1"
    )
    assert code == 0, err
    assert cli.cloud.sent()[-1].query == {"n": "3", "split": "train", "seed": "9", "version": "1"}
    assert "3 rows (seed 9, train split)" in out
    assert "ROW  LINE  SPLIT  Q" in out
    code, out, _ = cli("--json", "datasets", "sample", ready, "-n", "3", "--seed", "9")
    assert len(json.loads(out)["rows"]) == 3


def test_rows_pages_and_all(cli: Cli, ready: str) -> None:
    code, out, err = cli("datasets", "rows", ready, "--page-size", "5")
    assert code == 0, err
    assert "5 rows" in out
    assert "--page-token " in err
    code, out, _ = cli("--json", "datasets", "rows", ready, "--all", "--page-size", "15", "--split", "test")
    page = json.loads(out)
    assert page["items"]
    assert {r["split"] for r in page["items"]} == {"test"}
    assert page["dataset_id"] == ready
    assert page["version"] == 1


def test_delete_needs_yes(cli: Cli, ready: str) -> None:
    before = len(cli.cloud.sent())
    code, _, err = cli("datasets", "delete", ready)
    assert code == 2
    assert "--yes" in err
    assert len(cli.cloud.sent()) == before
    code, out, _ = cli("datasets", "delete", ready, "--yes")
    assert code == 0
    assert f"deleted {ready}" in out
    assert cli.cloud.sent()[-1].method == "DELETE"
    code, _, err = cli("datasets", "delete", ready, "--yes")
    assert code == 2
    assert "dataset_not_found" in err


# -- bundled datasets ---------------------------------------------------------------------------------


def test_create_from_a_bundled_dataset(cli: Cli) -> None:
    code, out, err = cli("datasets", "create", "--bundled", "bbh/boolean_expressions", "--wait")
    assert code == 0, err
    body = cli.posts()[0].json()
    path = bundled_dir() / "bbh" / "boolean_expressions.jsonl"
    assert body["content"] == path.read_text(encoding="utf-8")
    assert body["mapping"] == {"inputs": ["input"], "reference": "target"}
    assert body["name"] == "bbh/boolean_expressions"
    assert "version 1 ready: 250 rows" in out


def test_bundled_lists_the_catalog(cli: Cli) -> None:
    code, out, _ = cli("datasets", "bundled")
    assert code == 0
    assert "bbh/boolean_expressions" in out
    assert "gsm8k/test-300" in out
    code, out, _ = cli("--json", "datasets", "bundled")
    assert {"name", "file", "mapping", "rows"} <= set(json.loads(out)["datasets"][0])


def test_api_validation_errors_are_printed(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", " ", "--input", "q")
    assert code == 2
    assert "validation_failed" in err
