"""`promptopt health` and `promptopt prompts ...` against the real prompt functions."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.integration.cli.conftest import Cli, Fault

pytestmark = pytest.mark.integration


def create(cli: Cli, template: str = "Q: {input}", *extra: str) -> str:
    return str(cli.json("prompts", "create", "--output-prompt", template, *extra)["prompt_id"])


def test_health_human_and_json(cli: Cli) -> None:
    code, out, _ = cli("health")
    assert code == 0
    assert "status:" in out
    assert "ok" in out
    code, out, _ = cli("--json", "health")
    assert code == 0
    assert json.loads(out)["status"] == "ok"


def test_create_sends_body_and_a_fresh_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    system = tmp_path / "system.txt"
    system.write_text("You are terse.\n", encoding="utf-8")
    code, out, err = cli(
        "prompts", "create", "--output-prompt", "Q: {question}\nA:", "--system-prompt-file", str(system),
        "--name", "qa", "--metadata", "team=ml", "n=3", "--metadata", "temperature:=0.2",
    )  # fmt: skip
    assert code == 0, err
    assert "pr_" in out
    assert '"v1"' in out
    assert "question" in out
    pid = out.split()[1]
    stored = cli.json("prompts", "get", pid)
    assert stored["metadata"] == {"team": "ml", "n": "3", "temperature": 0.2}
    assert stored["system_prompt"] == "You are terse.\n"
    create(cli)
    first, second = cli.posts()
    assert first.json() == {
        "output_prompt": "Q: {question}\nA:",
        "system_prompt": "You are terse.\n",
        "name": "qa",
        "metadata": {"team": "ml", "n": "3", "temperature": 0.2},
    }
    keys = [r.headers.get("idempotency-key") for r in (first, second)]
    assert all(keys)
    assert keys[0] != keys[1]
    assert first.headers["content-type"] == "application/json"


def test_create_validation_error_lists_fields(cli: Cli) -> None:
    code, out, err = cli("prompts", "create", "--output-prompt", "x" * 70_000)
    assert code == 2
    assert out == ""
    assert "(validation_failed, HTTP 400)" in err
    assert "body.output_prompt:" in err


def test_create_retries_busy_answers_with_the_same_key(cli: Cli) -> None:
    cli.cloud.fail_next("api", 503, 502)
    pid = create(cli)
    posts = cli.posts()
    assert len(posts) == 3
    assert len({r.headers["idempotency-key"] for r in posts}) == 1
    assert [p["prompt_id"] for p in cli.json("prompts", "list")["items"]] == [pid]


def test_a_lost_create_response_is_replayed_not_repeated(cli: Cli) -> None:
    cli.cloud.fail_next("api", Fault("api", status=502, body=b"<html>bad gateway</html>", after=True))
    code, _, err = cli("prompts", "create", "--output-prompt", "{x}")
    assert code == 0, err
    assert "used before" in err
    assert len(cli.posts()) == 2
    assert len(cli.json("prompts", "list")["items"]) == 1


def test_gives_up_after_the_retries_with_exit_1(cli: Cli) -> None:
    cli.cloud.fail_next("api", *[503] * 10)
    code, _, err = cli("--retries", "2", "prompts", "get", "pr_x")
    assert code == 1
    assert "HTTP 503" in err
    assert len(cli.cloud.sent()) == 3


def test_get_human_and_json(cli: Cli) -> None:
    pid = create(cli, "Translate: {text}", "--system-prompt", "Be exact.", "--name", "tr")
    code, out, _ = cli("prompts", "get", pid)
    assert code == 0
    assert out.splitlines()[0].split() == ["prompt_id:", pid]
    assert "--- system prompt ---\nBe exact." in out
    assert "--- output prompt ---\nTranslate: {text}" in out
    code, out, _ = cli("prompts", "get", pid, "--version", "1", "--json")  # --json after the command
    assert code == 0
    assert json.loads(out)["version_id"] == f"{pid}@1"
    assert cli.cloud.sent()[-1].query == {"version": "1"}


def test_update_without_base_version_gets_the_latest_then_sends_if_match(cli: Cli) -> None:
    pid = create(cli)
    code, out, err = cli(
        "prompts", "update", pid, "--output-prompt", "Question: {input}", "--message", "clearer"
    )
    assert code == 0, err
    get, put = cli.cloud.sent()[-2:]
    assert (get.method, get.path) == ("GET", f"/api/v1/prompts/{pid}")
    assert (put.method, put.headers["if-match"]) == ("PUT", '"v1"')
    assert put.json() == {"output_prompt": "Question: {input}", "message": "clearer"}
    assert '"v2"' in out
    assert f"{pid}@1" in out


def test_update_with_a_stale_base_version_prints_the_412(cli: Cli) -> None:
    pid = create(cli)
    assert cli("prompts", "update", pid, "--base-version", "1", "--name", "a")[0] == 0
    code, out, err = cli("prompts", "update", pid, "--base-version", "1", "--name", "b")
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert "(version_mismatch, HTTP 412)" in err
    assert "hint: someone saved a newer version" in err
    assert [r.method for r in cli.cloud.sent()[-2:]] == ["PUT", "PUT"]  # no GET with --base-version


def test_update_problem_is_also_json_on_stdout_with_json(cli: Cli) -> None:
    pid = create(cli)
    code, out, _ = cli("--json", "prompts", "update", pid, "--base-version", "7", "--name", "x")
    assert code == 2
    assert json.loads(out)["code"] == "version_mismatch"


def test_list_shows_one_page_with_a_hint_and_all_follows_tokens(cli: Cli) -> None:
    ids = [create(cli) for _ in range(5)]
    code, out, err = cli("prompts", "list", "--page-size", "2")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["PROMPT_ID", "NAME", "LATEST"]
    assert len(out.splitlines()) == 3
    assert "--page-token " in err
    assert "--page-size 2" in err

    before = len(cli.cloud.sent())
    code, out, _ = cli("--json", "prompts", "list", "--page-size", "2", "--all")
    assert code == 0
    document = json.loads(out)
    assert [p["prompt_id"] for p in document["items"]] == ids[::-1]
    assert document["next_page_token"] is None
    tokens = [r.query.get("page_token") for r in cli.cloud.sent()[before:]]
    assert len(tokens) == 3
    assert tokens[0] is None
    assert all(tokens[1:])


def test_list_empty(cli: Cli) -> None:
    code, out, err = cli("prompts", "list")
    assert (code, out) == (0, "")
    assert "no prompts" in err


def test_versions_lineage(cli: Cli) -> None:
    pid = create(cli)
    cli("prompts", "update", pid, "--name", "second", "--message", "rename")
    cli("prompts", "label", pid, "production", "--version", "1")
    code, out, _ = cli("prompts", "versions", pid)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"prompt {pid}  labels: production=1"
    assert lines[1].split() == [
        "VERSION",
        "PARENT",
        "LABELS",
        "SOURCE",
        "CREATED_BY",
        "CREATED_AT",
        "MESSAGE",
    ]
    assert lines[2].split()[:4] == ["2", "1", "-", "user"]
    assert lines[2].endswith("rename")
    assert lines[3].split()[:4] == ["1", "-", "production", "user"]

    code, out, _ = cli("--json", "prompts", "versions", pid, "--page-size", "1", "--all")
    document = json.loads(out)
    assert [v["version"] for v in document["items"]] == [2, 1]
    assert document["labels"] == {"production": 1}


def test_label_set_and_remove(cli: Cli) -> None:
    pid = create(cli)
    code, out, _ = cli("prompts", "label", pid, "production", "--version", "1")
    assert code == 0
    assert "labels: production=1" in out
    put = cli.cloud.sent()[-1]
    assert (put.method, put.path, put.json()) == (
        "PUT",
        f"/api/v1/prompts/{pid}/labels/production",
        {"version": 1},
    )
    code, out, _ = cli("--json", "prompts", "label", pid, "production", "--remove")
    assert code == 0
    assert json.loads(out) == {"prompt_id": pid, "labels": {}}
    code, _, err = cli("prompts", "label", pid, "production", "--remove")
    assert code == 2
    assert "HTTP 404" in err


def test_rename_archive_sort_and_delete(cli: Cli) -> None:
    first = create(cli, "A: {input}", "--name", "first")
    second = create(cli, "B: {input}", "--name", "second")
    code, out, err = cli("prompts", "rename", second, "alpha")
    assert code == 0, err
    assert "alpha" in out
    patch = cli.cloud.sent()[-1]
    assert (patch.method, patch.json(), patch.headers["if-match"]) == ("PATCH", {"name": "alpha"}, "*")
    edited = cli.json(
        "prompts", "edit", second, "--description", "d", "--tags", "x, y", "--base-version", "1"
    )
    assert (edited["version"], edited["description"], edited["tags"]) == (1, "d", ["x", "y"])
    names = [p["name"] for p in cli.json("prompts", "list", "--sort", "name")["items"]]
    assert names == ["alpha", "first"]
    cli("prompts", "label", first, "production", "--version", "1")
    code, _, err = cli("prompts", "archive", first)
    assert code == 2
    assert "HTTP 409" in err
    assert "label 'production'" in err
    code, out, err = cli("prompts", "archive", second)
    assert (code, "archived" in out) == (0, True), err
    assert [p["prompt_id"] for p in cli.json("prompts", "list")["items"]] == [first]
    assert len(cli.json("prompts", "list", "--archived")["items"]) == 2
    assert cli.json("prompts", "unarchive", second)["archived"] is False
    code, _, err = cli("prompts", "delete", second)
    assert code != 0
    assert "--yes" in err
    assert cli.json("prompts", "delete", second, "--yes") == {"prompt_id": second, "deleted": True}
    assert [p["prompt_id"] for p in cli.json("prompts", "list", "--archived")["items"]] == [first]


def test_path_segments_are_escaped(cli: Cli) -> None:
    code, _, _ = cli("prompts", "get", "../../health")
    assert code == 2
    assert cli.cloud.sent()[-1].path == "/api/v1/prompts/..%2F..%2Fhealth"


def test_without_a_token_a_401_hints_and_a_pasted_bearer_works(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli("prompts", "list", token=None)
    assert code == 2
    assert "hint: no token was sent" in err
    assert cli.token is not None
    monkeypatch.setenv("PROMPTOPT_TOKEN", cli.token)
    assert cli("prompts", "list", token=None)[0] == 0
    assert cli.cloud.sent()[-1].headers["authorization"] == f"Bearer {cli.token}"
    assert cli("prompts", "list", token=f"Bearer {cli.token}")[0] == 0
    assert cli.cloud.sent()[-1].headers["authorization"] == f"Bearer {cli.token}"


def test_a_viewer_cannot_create(cli: Cli) -> None:
    code, _, err = cli(
        "prompts", "create", "--output-prompt", "{x}", token=cli.cloud.token(cli.tenant, "viewer")
    )
    assert code == 2
    assert "HTTP 403" in err


def test_a_timeout_is_retried_then_reported(cli: Cli) -> None:
    timeout = httpx.ReadTimeout("timed out")
    cli.cloud.fail_next("api", Fault("api", error=timeout), Fault("api", error=timeout))
    code, _, err = cli("--timeout", "0.2", "--retries", "1", "health")
    assert code == 1
    assert "did not answer within 0.2s (2 attempts)" in err
    cli.cloud.fail_next("api", Fault("api", error=timeout))
    assert cli("--timeout", "0.2", "health")[0] == 0


def test_api_url_from_env(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from promptopt.cli.main import main
    from tests.integration.cli.conftest import API_URL

    monkeypatch.setenv("PROMPTOPT_API_URL", API_URL + "/")
    assert main(["health"], transport=cli.cloud) == 0
    assert cli.cloud.sent()[-1].path == "/api/v1/health"
