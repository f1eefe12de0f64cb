"""The file a command sends: checks, its format, inline content, and the split shares."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptopt.cli.core.context import CliError

#: Files up to this size are sent inline (as `content`); larger ones go through the signed URL.
#: The API takes up to 5 MB inline, but JSON escaping can grow text several-fold: 1 MiB leaves headroom.
INLINE_MAX_BYTES = 1024 * 1024
SPLITS = ("train", "validation", "test")
EXTENSION_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Source:
    """The file to send, and what to call it in messages."""

    path: Path
    size: int


def read_source(path_text: str) -> Source:
    """A readable, non-empty regular file."""
    path = Path(path_text)
    try:
        if not path.is_file():
            raise CliError(f"{path_text}: no such file")
        size = path.stat().st_size
    except OSError as exc:
        raise CliError(f"{path_text}: cannot read it ({exc})") from None
    if size == 0:
        raise CliError(f"{path_text}: the file is empty")
    return Source(path, size)


def format_of(path: Path, given: str | None) -> str:
    """--format, or the format the extension names."""
    if given:
        return given
    fmt = EXTENSION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CliError(
            f"{path}: cannot tell the format from the extension; pass --format csv or --format jsonl"
        )
    return fmt


def inline_content(source: Source) -> dict[str, str]:
    """`content` (the text, when it is UTF-8) or `content_base64` (any other bytes)."""
    data = source.path.read_bytes()
    try:
        return {"content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"content_base64": base64.b64encode(data).decode("ascii")}


def parse_splits(text: str) -> dict[str, float]:
    """'0.6,0.2,0.2' -> train/validation/test shares (each >= 0, summing to 1)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        shares = [float(p) for p in parts]
    except ValueError:
        shares = []
    if len(shares) != 3 or any(not 0.0 <= s <= 1.0 for s in shares):
        raise CliError(f"--splits {text!r}: expected three shares TRAIN,VALIDATION,TEST, e.g. 0.6,0.2,0.2")
    if abs(sum(shares) - 1.0) > 1e-9:
        raise CliError(f"--splits {text!r}: the shares must sum to 1 (they sum to {sum(shares):g})")
    return dict(zip(SPLITS, shares, strict=True))


def add_content(body: dict[str, Any], source: Source, via: str) -> bool:
    """Put the file inline into `body`, or ask for an upload URL; True when inline."""
    inline = via == "inline" or (via == "auto" and source.size <= INLINE_MAX_BYTES)
    if inline:
        body.update(inline_content(source))
    else:
        body["upload_max_bytes"] = source.size
    return inline
