"""The datasets the repository ships (shared/datasets/): they parse, and their README tells the truth."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from promptopt.datasets.files import ColumnMapping, parse

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "shared" / "datasets"
SOURCE = ROOT.parent / "shared" / "data"  # present on the maintainers' machines, not in a user's clone
README_ROW = re.compile(
    r"^\| `(?P<name>[^`]+)` \| `(?P<file>[^`]+)` \| (?P<rows>\d+) \| (?P<fields>[^|]+) \| "
    r"`inputs: \[(?P<inputs>[^\]]*)\], reference: (?P<reference>[^`]+)` \|"
)


def manifest() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((BUNDLED / "manifest.json").read_text(encoding="utf-8"))[
        "datasets"
    ]
    return entries


def readme_rows() -> dict[str, dict[str, Any]]:
    rows = {}
    for line in (BUNDLED / "README.md").read_text(encoding="utf-8").splitlines():
        if m := README_ROW.match(line):
            rows[m["name"]] = {
                "file": m["file"],
                "rows": int(m["rows"]),
                "fields": [f.strip() for f in m["fields"].split(",")],
                "mapping": {
                    "inputs": [i.strip() for i in m["inputs"].split(",")],
                    "reference": m["reference"],
                },
            }
    return rows


def test_every_data_file_is_in_the_manifest_and_the_readme() -> None:
    files = sorted(str(p.relative_to(BUNDLED)) for p in BUNDLED.rglob("*.jsonl"))
    assert files, "no bundled datasets"
    assert sorted(e["file"] for e in manifest()) == files
    assert sorted(r["file"] for r in readme_rows().values()) == files
    assert {e["name"] for e in manifest()} == set(readme_rows())
    assert {"bbh/boolean_expressions", "gsm8k/test-300"} <= set(readme_rows())


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: e["name"])
def test_bundled_file_parses_with_its_documented_mapping(entry: dict[str, Any]) -> None:
    documented = readme_rows()[entry["name"]]
    assert documented["mapping"] == entry["mapping"]
    mapping = ColumnMapping.model_validate(documented["mapping"])
    with (BUNDLED / entry["file"]).open("rb") as stream:
        parsed = parse(stream, fmt=entry["format"], mapping=mapping)
        rows = list(parsed)
    outcome = parsed.outcome
    assert not outcome.failed, outcome.failure_reason
    assert outcome.rows_bad == 0
    assert outcome.bad_rows == []
    assert outcome.rows_ok == len(rows) == documented["rows"] == entry["rows"]
    assert all(row["reference"] for row in rows), "every row has an answer"
    lines = (BUNDLED / entry["file"]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == documented["rows"]
    assert all(sorted(json.loads(line)) == sorted(documented["fields"]) for line in lines)


def test_licences_sit_next_to_the_data() -> None:
    for entry in manifest():
        licence = (BUNDLED / entry["licence"]).read_text(encoding="utf-8")
        assert licence.startswith("MIT License")
        assert "Copyright (c)" in licence
        assert entry["source"].startswith("https://github.com/")
    assert "suzgunmirac" in (BUNDLED / "LICENSE-BBH").read_text(encoding="utf-8")
    assert "OpenAI" in (BUNDLED / "LICENSE-GSM8K").read_text(encoding="utf-8")


def test_bbh_rows_keep_the_canary() -> None:
    for entry in manifest():
        if entry["name"].startswith("bbh/"):
            first = json.loads((BUNDLED / entry["file"]).read_text(encoding="utf-8").splitlines()[0])
            assert "canary GUID" in first["canary"]


def test_gsm8k_answer_is_the_final_number_of_the_solution() -> None:
    lines = (BUNDLED / "gsm8k" / "test-300.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    indexes = [r["index"] for r in rows]
    assert indexes == sorted(set(indexes)), "file order, no duplicates"
    for row in rows:
        assert re.fullmatch(r"-?\d+(\.\d+)?", row["answer"])
        assert row["solution"].rsplit("####", 1)[1].strip().replace(",", "") == row["answer"]


@pytest.mark.skipif(not SOURCE.is_dir(), reason="../shared/data is not here (a user's clone)")
def test_the_script_regenerates_the_same_bytes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_bundled_datasets", ROOT / "scripts" / "make_bundled_datasets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.build(SOURCE)
    shipped = {str(p.relative_to(BUNDLED)): p.read_bytes() for p in BUNDLED.rglob("*") if p.is_file()}
    assert files == shipped, "shared/datasets is stale: run scripts/make-bundled-datasets"
    assert module.main(["--source", str(SOURCE), "--out", str(tmp_path)]) == 0
    assert module.main(["--source", str(SOURCE), "--out", str(tmp_path), "--check"]) == 0
