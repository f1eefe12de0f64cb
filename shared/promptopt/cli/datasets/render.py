"""Human views of datasets, versions and rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptopt.cli import output
from promptopt.cli.datasets.files import SPLITS
from promptopt.cli.datasets.waiting import find_version

#: Bad rows printed for a failed version (the API keeps the first 20).
BAD_ROWS_SHOWN = 10


def _mapping_text(mapping: dict[str, Any] | None) -> str:
    mapping = mapping or {}
    text = "inputs: " + ", ".join(mapping.get("inputs") or [])
    return text + (f"; reference: {mapping['reference']}" if mapping.get("reference") else "; no reference")


def _splits_text(dataset: dict[str, Any]) -> str:
    shares = dataset.get("splits") or {}
    parts = ", ".join(f"{name} {shares.get(name, 0):g}" for name in SPLITS)
    return f"{parts} (seed {dataset.get('split_seed', 0)})"


def _policy_text(dataset: dict[str, Any]) -> str:
    if dataset.get("bad_row_policy") == "skip_bad_rows":
        return f"skip bad rows (up to {float(dataset.get('max_bad_fraction') or 0):.0%} of the file)"
    return "reject the file on any bad row"


def _per_split(version: dict[str, Any]) -> str:
    per = ((version.get("stats") or {}).get("rows_per_split")) or {}
    return ", ".join(f"{name} {per.get(name, 0)}" for name in SPLITS)


def _dataset_fields(dataset: dict[str, Any]) -> list[tuple[str, Any]]:
    latest = dataset.get("latest_version")
    pairs: list[tuple[str, Any]] = [
        ("dataset_id", dataset.get("dataset_id")),
        ("name", dataset.get("name")),
    ]
    if dataset.get("description"):
        pairs.append(("description", dataset["description"]))
    pairs += [
        ("format", dataset.get("format")),
        ("mapping", _mapping_text(dataset.get("mapping"))),
        ("splits", _splits_text(dataset)),
        ("bad rows", _policy_text(dataset)),
        ("latest ready", f"version {latest}" if latest else "none yet"),
        ("versions", dataset.get("version_count")),
        ("created", f"{output.timestamp(dataset.get('created_at'))} by {dataset.get('created_by', '-')}"),
    ]
    return pairs


def _bad_rows_text(version: dict[str, Any], limit: int = BAD_ROWS_SHOWN) -> list[str]:
    bad = [b for b in version.get("bad_rows") or [] if isinstance(b, dict)]
    if not bad:
        return []
    total = version.get("rows_bad")
    of = f" of {total}" if isinstance(total, int) and total > len(bad[:limit]) else ""
    lines = [f"bad rows (first {len(bad[:limit])}{of}):"]
    lines += [f"  line {b.get('line', '?')}: {b.get('reason', '')}" for b in bad[:limit]]
    return lines


def outcome_lines(dataset_id: str, version: dict[str, Any]) -> list[str]:
    """What became of a version that is ready or failed, for people."""
    number = version.get("version")
    if version.get("status") == "ready":
        line = (
            f"{dataset_id} version {number} ready: {version.get('rows_ok', 0)} rows ({_per_split(version)})"
        )
        lines = [line]
        if version.get("rows_bad"):
            lines.append(f"{version['rows_bad']} bad row(s) skipped")
            lines += _bad_rows_text(version)
        return lines
    failure = version.get("failure") or {}
    code = f" ({failure['code']})" if failure.get("code") else ""
    lines = [f"{dataset_id} version {number} failed{code}: {failure.get('reason') or 'no reason given'}"]
    return lines + _bad_rows_text(version)


def _versions_table(versions: Sequence[dict[str, Any]]) -> str:
    rows = []
    for v in versions:
        per = ((v.get("stats") or {}).get("rows_per_split")) or {}
        rows.append(
            [
                v.get("version"),
                v.get("status"),
                v.get("origin"),
                output.human_bytes(v["bytes"]) if isinstance(v.get("bytes"), int) else "-",
                v.get("rows_ok"),
                v.get("rows_bad"),
                "/".join(str(per.get(name, 0)) for name in SPLITS) if per else "-",
                output.timestamp(v.get("created_at")),
            ]
        )
    header = ["VERSION", "STATUS", "ORIGIN", "SIZE", "ROWS", "BAD", "TRAIN/VAL/TEST", "CREATED"]
    return output.table(header, rows)


def _reference_text(version: dict[str, Any]) -> str | None:
    reference = (version.get("stats") or {}).get("reference")
    if not isinstance(reference, dict):
        return None
    top = ", ".join(f"{t.get('value')!r} {t.get('count')}" for t in (reference.get("top") or [])[:5])
    return f"{reference.get('distinct')} distinct" + (f"; most common: {top}" if top else "")


def show_dataset(dataset: dict[str, Any]) -> None:
    """A dataset, its versions, and what is wrong with the failed ones."""
    text = output.fields(_dataset_fields(dataset))
    versions = [v for v in dataset.get("versions") or [] if isinstance(v, dict)]
    latest = find_version(dataset, dataset["latest_version"]) if dataset.get("latest_version") else None
    if latest is not None and (reference := _reference_text(latest)):
        text += f"\n\nreference values (version {latest.get('version')}): {reference}"
    if versions:
        text += "\n\n" + _versions_table(versions)
    for version in versions:
        if version.get("status") == "failed":
            text += "\n\n" + "\n".join(outcome_lines(str(dataset.get("dataset_id")), version))
    output.emit(text)


def show_created(created: dict[str, Any], inline: bool) -> None:
    """What a create made, and how the file travels."""
    dataset, version = created.get("dataset") or {}, created.get("version") or {}
    pairs: list[tuple[str, Any]] = [
        ("dataset_id", dataset.get("dataset_id")),
        ("name", dataset.get("name")),
        ("version", version.get("version")),
        ("format", dataset.get("format")),
        ("mapping", _mapping_text(dataset.get("mapping"))),
        ("sent", "inline, in the request" if inline else "to the signed upload URL"),
    ]
    output.emit(output.fields(pairs))


def rows_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows with a column per input variable."""
    names: list[str] = []
    for row in rows:
        for name in row.get("inputs") or {}:
            if name not in names:
                names.append(name)
    header = ["ROW", "LINE", "SPLIT", *(n.upper() for n in names), "REFERENCE"]
    body = []
    for r in rows:
        inputs = r.get("inputs") or {}
        body.append(
            [r.get("row"), r.get("line"), r.get("split"), *(inputs.get(n) for n in names), r.get("reference")]
        )
    return output.table(header, body)
