"""Datasets, versions and rows as the API shows them, built as plain dicts.

Reading a dataset (GET, the listing, rows, a sample) loads no pydantic on its cold start;
tests/unit/test_views.py checks each dict against its response model (Dataset, DatasetVersion,
DatasetRow and the statistics inside), field by field and as JSON.
"""

from __future__ import annotations

from typing import Any


def _field_stats(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "min_chars": int(data["min_chars"]),
        "max_chars": int(data["max_chars"]),
        "mean_chars": float(data["mean_chars"]),
        "empty": int(data["empty"]),
    }


def _reference_stats(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    distinct = data["distinct"]
    return {
        "distinct": distinct if distinct == "many" else int(distinct),
        "top": [{"value": str(t["value"]), "count": int(t["count"])} for t in data.get("top") or []],
        "missing": int(data.get("missing") or 0),
        "empty": int(data.get("empty") or 0),
    }


def stats_dict(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A DatasetStats (None until the version is ingested)."""
    if data is None:
        return None
    return {
        "rows": int(data["rows"]),
        "rows_per_split": {str(k): int(v) for k, v in data["rows_per_split"].items()},
        "inputs": {str(k): _field_stats(v) for k, v in data["inputs"].items()},
        "reference": _reference_stats(data.get("reference")),
        "total_chars": int(data["total_chars"]),
    }


def version_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A DatasetVersion from its document."""
    failure, bad = data.get("failure"), data.get("bad_rows") or ()
    return {
        "dataset_id": str(data["dataset_id"]),
        "version": int(data["version"]),
        "status": data["status"],
        "origin": data["origin"],
        "format": data["format"],
        "source": str(data["source"]),
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "ready_at": data.get("ready_at"),
        "bytes": data.get("bytes"),
        "rows_ok": data.get("rows_ok"),
        "rows_bad": data.get("rows_bad"),
        "bad_rows": [{"line": int(b["line"]), "reason": str(b["reason"])} for b in bad],
        "failure": {"code": str(failure["code"]), "reason": str(failure["reason"])} if failure else None,
        "stats": stats_dict(data.get("stats")),
    }


def dataset_dict(data: dict[str, Any], versions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Dataset from its document and the version documents to show (newest first)."""
    mapping, splits = data["mapping"], data["splits"]
    return {
        "dataset_id": str(data["dataset_id"]),
        "name": str(data["name"]),
        "description": str(data["description"]),
        "format": data["format"],
        "mapping": {"inputs": [str(n) for n in mapping["inputs"]], "reference": mapping.get("reference")},
        "splits": {
            "train": float(splits.get("train", 0.6)),
            "validation": float(splits.get("validation", 0.2)),
            "test": float(splits.get("test", 0.2)),
        },
        "split_seed": int(data["split_seed"]),
        "bad_row_policy": data["bad_row_policy"],
        "max_bad_fraction": float(data["max_bad_fraction"]),
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "created_by": str(data["created_by"]),
        "latest_version": data.get("latest_version"),
        "version_count": int(data["version_count"]),
        "versions": [version_dict(v) for v in versions or []],
    }


def row_dict(data: dict[str, Any], split: str) -> dict[str, Any]:
    """A DatasetRow from its line in a split file."""
    return {
        "row": int(data["row"]),
        "line": int(data["line"]),
        "split": split,
        "inputs": {str(k): str(v) for k, v in data["inputs"].items()},
        "reference": data["reference"],
    }
