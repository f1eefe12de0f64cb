"""The best prompt against the baseline: a unified diff per field, colored on a terminal."""

from __future__ import annotations

import difflib
import io
import sys
from typing import Any

FIELDS = ("system_prompt", "output_prompt")


def unified(prompt_id: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The diff lines of every prompt field that changed from `old` to `new` (versions of one prompt)."""
    lines: list[str] = []
    for name in FIELDS:
        before, after = str(old.get(name) or ""), str(new.get(name) or "")
        if before == after:
            continue
        lines += difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            fromfile=f"{prompt_id} v{old.get('version')} {name}",
            tofile=f"{prompt_id} v{new.get('version')} {name}",
            lineterm="",
        )
    return lines


def render(lines: list[str]) -> str:
    """The diff as text to emit: plain off a terminal, with rich colors on one."""
    if not sys.stdout.isatty():
        return "\n".join(lines)
    from rich.console import Console
    from rich.text import Text

    console = Console(file=io.StringIO(), force_terminal=True, highlight=False)
    for line in lines:
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = ""
        console.print(Text(line, style=style), soft_wrap=True)
    return console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]
