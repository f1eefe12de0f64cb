"""The datasets shipped with the repository (shared/datasets/manifest.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promptopt.cli.core.context import CliError


def bundled_dir() -> Path:
    """shared/datasets/ of the repository the package runs from (an editable install)."""
    import promptopt

    return Path(promptopt.__file__).resolve().parent.parent / "datasets"


def bundled_catalog() -> list[dict[str, Any]]:
    """The datasets the repository ships (shared/datasets/manifest.json)."""
    manifest = bundled_dir() / "manifest.json"
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["datasets"]
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(
            f"the bundled datasets are not here ({manifest}: {exc}); they ship in a clone of the "
            "repository (shared/datasets/), with promptopt installed from it (scripts/bootstrap)"
        ) from None
    return [e for e in entries if isinstance(e, dict)]


def bundled(name: str) -> dict[str, Any]:
    """One bundled dataset's manifest entry, with `path` resolved."""
    catalog = bundled_catalog()
    for entry in catalog:
        if entry.get("name") == name:
            return {**entry, "path": str(bundled_dir() / str(entry["file"]))}
    names = ", ".join(str(e.get("name")) for e in catalog)
    raise CliError(f"--bundled {name!r}: no such bundled dataset; choose one of: {names}")
