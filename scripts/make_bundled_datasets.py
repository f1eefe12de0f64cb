"""Regenerate shared/datasets/ (the datasets the product ships) from ../shared/data, deterministically.

Every output is a pure function of the source files: running it twice, or on another machine,
writes the same bytes. The files it writes:

    shared/datasets/bbh/<task>.jsonl       whole BIG-Bench Hard tasks: {"input", "target", "canary"}
    shared/datasets/gsm8k/test-300.jsonl   300 GSM8K test problems:
                                           {"question", "answer", "solution", "index"}
    shared/datasets/LICENSE-BBH, LICENSE-GSM8K   the upstream MIT licences, verbatim
    shared/datasets/manifest.json          what the CLI reads (`promptopt datasets create --bundled`)
    shared/datasets/README.md              sources, licences, row counts, fields, mappings

Usage: scripts/make-bundled-datasets [--source DIR] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from promptopt.datasets.files.splits import sample

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "shared" / "datasets"

BBH_REPO = "https://github.com/suzgunmirac/BIG-Bench-Hard"
GSM8K_REPO = "https://github.com/openai/grade-school-math"
BBH_MAPPING = {"inputs": ["input"], "reference": "target"}
GSM8K_MAPPING = {"inputs": ["question"], "reference": "answer"}

# Whole tasks with one short, unambiguous answer per example (BBH rows are ~250 per task).
BBH_TASKS: dict[str, tuple[str, str]] = {
    "boolean_expressions": ("evaluate a Boolean expression", "exact_match"),
    "date_understanding": ("date arithmetic, multiple choice (A)-(F)", "multiple_choice"),
    "navigate": ("does a list of moves return to the start? Yes/No", "exact_match"),
    "object_counting": ("count the objects of a kind in a list", "numeric"),
    "sports_understanding": ("is a sports sentence plausible? yes/no", "exact_match"),
    "web_of_lies": ("who tells the truth in a chain of statements? Yes/No", "exact_match"),
}

GSM8K_NAME = "gsm8k/test-300"
GSM8K_SAMPLE_ROWS = 300
GSM8K_SAMPLE_SEED = 42
FIELDS = {"bbh": ("input", "target", "canary"), "gsm8k": ("question", "answer", "solution", "index")}
_FINAL = re.compile(r"^-?\d+(\.\d+)?$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def final_answer(solution: str, where: str) -> str:
    """The number after GSM8K's `####` marker, thousands separators removed ("2,125" -> "2125")."""
    marker = solution.rsplit("####", 1)
    if len(marker) != 2:
        raise SystemExit(f"{where}: no '####' final answer")
    number = marker[1].strip().replace(",", "")
    if not _FINAL.match(number):
        raise SystemExit(f"{where}: final answer {marker[1].strip()!r} is not a number")
    return number


def bbh(source: Path) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    files: dict[str, bytes] = {}
    entries: list[dict[str, Any]] = []
    for task, (what, metric) in sorted(BBH_TASKS.items()):
        path = source / "bbh" / f"{task}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        canary = document["canary"]
        rows = [
            {"input": ex["input"], "target": ex["target"], "canary": canary} for ex in document["examples"]
        ]
        name = f"bbh/{task}"
        files[f"{name}.jsonl"] = jsonl(rows)
        entries.append(
            {
                "name": name,
                "file": f"{name}.jsonl",
                "format": "jsonl",
                "mapping": BBH_MAPPING,
                "rows": len(rows),
                "description": f"BIG-Bench Hard: {what}",
                "suggested_metric": metric,
                "licence": "LICENSE-BBH",
                "source": f"{BBH_REPO}/blob/main/bbh/{task}.json",
                "source_sha256": sha256(path),
            }
        )
    return files, entries


def gsm8k(source: Path) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    path = source / "gsm8k" / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    problems = [(index, json.loads(line)) for index, line in enumerate(lines) if line.strip()]
    # The library's seeded sample: the rows with the smallest sha256(f"{seed}:{question}"),
    # kept in file order; independent of Python's version and of the file's row order.
    chosen = sample(problems, GSM8K_SAMPLE_ROWS, GSM8K_SAMPLE_SEED, key=lambda item: item[1]["question"])
    rows = [
        {
            "question": problem["question"],
            "answer": final_answer(problem["answer"], f"{path}:{index + 1}"),
            "solution": problem["answer"],
            "index": index,
        }
        for index, problem in chosen
    ]
    entry = {
        "name": GSM8K_NAME,
        "file": f"{GSM8K_NAME}.jsonl",
        "format": "jsonl",
        "mapping": GSM8K_MAPPING,
        "rows": len(rows),
        "description": (
            f"GSM8K: {len(rows)} of the {len(problems)} test math word problems; the answer is a number"
        ),
        "suggested_metric": "numeric",
        "licence": "LICENSE-GSM8K",
        "source": f"{GSM8K_REPO}/blob/master/grade_school_math/data/test.jsonl",
        "source_sha256": sha256(path),
        "sample": {"of_rows": len(problems), "seed": GSM8K_SAMPLE_SEED, "key": "question"},
    }
    return {f"{GSM8K_NAME}.jsonl": jsonl(rows)}, [entry]


def readme(entries: list[dict[str, Any]]) -> str:
    table = [
        "| bundled name | file | rows | fields | mapping | suggested metric |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        fields = ", ".join(FIELDS["bbh" if e["name"].startswith("bbh/") else "gsm8k"])
        mapping = f"inputs: [{', '.join(e['mapping']['inputs'])}], reference: {e['mapping']['reference']}"
        cells = [f"`{e['name']}`", f"`{e['file']}`", str(e["rows"]), fields, f"`{mapping}`"]
        table.append(f"| {' | '.join(cells)} | {e['suggested_metric']} |")
    sources = [f"| `{e['file']}` | {e['source']} | `{e['source_sha256']}` |" for e in entries]
    gsm = next(e for e in entries if e["name"] == GSM8K_NAME)
    of_rows, rows, seed = gsm["sample"]["of_rows"], gsm["rows"], gsm["sample"]["seed"]
    return f"""# Bundled datasets

Small public datasets the product ships, so the demo and new users can create a dataset without
files of their own:

```bash
promptopt datasets bundled                                   # what is here
promptopt datasets create --bundled bbh/boolean_expressions --wait
promptopt datasets create shared/datasets/gsm8k/test-300.jsonl --name gsm8k \\
    --input question --reference answer --wait               # any file: name its columns
```

They live outside the `promptopt` package, so they are never bundled into a function.
**Generated** by `scripts/make-bundled-datasets` from `../shared/data` (a deterministic script:
running it again writes the same bytes; edit the script, not these files). `manifest.json` holds
the same facts as this page for programs (the CLI reads it); `tests/unit/test_bundled_datasets.py`
checks that every file parses with the library using the mapping below, with zero bad rows, and
that the row counts here are right.

## Files

Every file is JSONL (UTF-8, one JSON object per line); every value is a string except `index`.

{chr(10).join(table)}

- **BIG-Bench Hard** (`bbh/`): each task is copied whole, examples in their original order.
  `input` is the question as given to the model (multiple-choice tasks list their options inside
  it), `target` the exact expected answer (`True`, `(B)`, `Yes`, `7`, …). `canary` repeats on
  every row the task file's canary string (BIG-Bench's request that benchmark data stay out of
  training corpora; upstream asks that it be kept with every copy); it is not mapped, so it never
  reaches a prompt.
- **GSM8K** (`gsm8k/test-300.jsonl`): `question` is the problem, `answer` the final number as
  text (the part after `####` in upstream's answer, with thousands separators removed: `2,125` ->
  `2125`), `solution` upstream's full worked solution verbatim (with its `<<calculator>>`
  annotations and the `#### N` line), `index` the problem's 0-based line in upstream `test.jsonl`.

## How the GSM8K sample was drawn

Of the {of_rows} problems in upstream `test.jsonl`, the {rows} whose `sha256(f"{seed}:{{question}}")`
is smallest (seed {seed}, keyed by the question text), written in their original file order:
`promptopt.datasets.files.splits.sample(problems, {rows}, seed={seed}, key=question)`. The choice depends
only on the seed and the question texts, not on Python's version or the order of the file.

## Sources and licences

| file | source | sha256 of the source file used |
|---|---|---|
{chr(10).join(sources)}

- BIG-Bench Hard: Suzgun et al., "Challenging BIG-Bench Tasks and Whether Chain-of-Thought Can
  Solve Them" (2022), {BBH_REPO}.
  MIT licence, Copyright (c) 2022 suzgunmirac: [LICENSE-BBH](LICENSE-BBH).
- GSM8K: Cobbe et al., "Training Verifiers to Solve Math Word Problems" (2021),
  {GSM8K_REPO}.
  MIT licence, Copyright (c) 2021 OpenAI: [LICENSE-GSM8K](LICENSE-GSM8K).

The upstream commit the copies in `../shared/data` came from is not recorded there; the sha256
column identifies the exact source files used.
"""


def build(source: Path) -> dict[str, bytes]:
    """Every output file, relative path -> bytes."""
    missing = [p for p in ("bbh/LICENSE", "gsm8k/LICENSE", "gsm8k/test.jsonl") if not (source / p).is_file()]
    if missing:
        raise SystemExit(f"{source}: missing {', '.join(missing)} (is this ../shared/data?)")
    bbh_files, bbh_entries = bbh(source)
    gsm_files, gsm_entries = gsm8k(source)
    entries = bbh_entries + gsm_entries
    manifest = {
        "generated_by": "scripts/make-bundled-datasets",
        "datasets": entries,
    }
    return {
        **bbh_files,
        **gsm_files,
        "LICENSE-BBH": (source / "bbh" / "LICENSE").read_bytes(),
        "LICENSE-GSM8K": (source / "gsm8k" / "LICENSE").read_bytes(),
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "README.md": readme(entries).encode("utf-8"),
    }


def _current(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="default: ../shared/data")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: shared/datasets")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out is stale")
    args = parser.parse_args(argv)
    files = build(args.source)
    stale = [name for name, data in files.items() if _current(args.out / name) != data]
    if args.check:
        for name in stale:
            print(f"stale: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data := files[name])
        print(f"wrote {path} ({len(data)} bytes)")
    if not stale:
        print(f"{args.out}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
