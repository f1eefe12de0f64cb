"""Rendering for the CLI: JSON documents for scripts, concise aligned text for people.

Results go to stdout; errors, hints and notes go to stderr so that piping stdout stays clean.
Tables are drawn by rich: with a header rule, styles and the terminal's width on a terminal, and as
plain columns separated by two spaces anywhere else (files, pipes, `grep`), so output that scripts
or logs read stays the same on every terminal. rich is imported only when a table is drawn.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

MAX_CELL = 60


def emit_json(document: Any, stream: TextIO | None = None) -> None:
    """Print one JSON document (pretty, UTF-8 kept readable)."""
    out = stream or sys.stdout
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def emit(text: str) -> None:
    """Print human output to stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def note(text: str) -> None:
    """Print a hint or note for people to stderr."""
    sys.stderr.write(text + "\n")


def timestamp(value: Any) -> str:
    """An API timestamp as `YYYY-MM-DD HH:MM:SSZ` in UTC; anything unparsable is shown as is."""
    if not isinstance(value, str):
        return "-" if value is None else str(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%SZ")


def cell(value: Any, limit: int = MAX_CELL) -> str:
    """One table cell: single line, shortened with an ellipsis past `limit` characters."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table of `rows` under `headers`, each cell one line (see `cell`), as text to emit."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    tty = sys.stdout.isatty()
    grid = Table(
        box=box.SIMPLE_HEAD if tty else None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold" if tty else "",
    )
    for header in headers:
        grid.add_column(header, no_wrap=not tty, overflow="fold")
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
    # Off a terminal the table takes the room it needs (never wrapped at a guessed width).
    console = Console(
        file=io.StringIO(),
        force_terminal=tty,
        width=None if tty else 100_000,
        no_color=not tty,
        highlight=False,
    )
    console.print(grid)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`key:  value` lines with the values aligned."""
    width = max((len(k) for k, _ in pairs), default=0) + 1
    return "\n".join(f"{(k + ':').ljust(width)}  {v}" for k, v in pairs)


def labels_text(labels: Mapping[str, int] | Sequence[str]) -> str:
    """Labels as `a, b` (a list) or `production=3, staging=4` (a map)."""
    if isinstance(labels, Mapping):
        return ", ".join(f"{name}={version}" for name, version in sorted(labels.items())) or "-"
    return ", ".join(labels) or "-"


def metadata_text(metadata: Mapping[str, Any] | None) -> str:
    """Metadata as `k=v` pairs, JSON-typed values shown as JSON (so 3 and "3" differ)."""
    if not metadata:
        return "-"
    return ", ".join(
        f"{k}={v}" if isinstance(v, str) else f"{k}={json.dumps(v)}" for k, v in sorted(metadata.items())
    )


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
