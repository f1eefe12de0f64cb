"""A template's variables against a dataset version's columns, checked when a job is admitted.

Inline rows are checked row by row (`admission.check_rows`); a dataset version's rows all carry
the same input fields (its column mapping when it was ingested, recorded in its statistics), so
one check of the template's placeholders against them refuses a job whose every row would fail.
"""

from __future__ import annotations

from typing import Any

from promptopt.prompts.templates import placeholders


def dataset_fields(tenant: str, info: dict[str, Any]) -> list[str] | None:
    """The input fields of the pinned dataset version's rows; None when they cannot be known."""
    from promptopt.datasets import records

    version = records.load_version(tenant, str(info["dataset_id"]), int(info["dataset_version"]))
    recorded = ((version.get("stats") or {}).get("inputs") or {}).keys()
    if recorded:
        return sorted(recorded)
    head = records.load_dataset(tenant, str(info["dataset_id"])).to_dict() or {}
    inputs = (head.get("mapping") or {}).get("inputs")
    return list(inputs) if inputs else None


def check_dataset(tenant: str, template: str, info: dict[str, Any]) -> None:
    """400 `missing_variables` naming each placeholder the dataset's rows do not fill."""
    fields = dataset_fields(tenant, info)
    if fields is None:
        return
    missing = [name for name in placeholders(template) if name not in fields]
    if missing:
        from promptopt.inference.errors import MissingVariables

        raise MissingVariables(
            f"the template needs {', '.join(missing)}, which version {info['dataset_version']} of dataset "
            f"{info['dataset_id']!r} does not have (its input fields: {', '.join(fields)})",
            missing=missing,
            fields=fields,
        )
