"""Bytes to text lines, incrementally: UTF-8 (BOM accepted), byte cap, binary and encoding checks.

Memory is bounded by one read chunk plus one line (lines longer than the row cap are skipped,
not buffered), whatever the size of the file.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Protocol

CHUNK_BYTES = 64 * 1024
_BOM = codecs.BOM_UTF8


class Readable(Protocol):
    """A binary source: an open file, `io.BytesIO`, a GCS `BlobReader`."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; empty at end of stream."""
        ...


class FileFailure(Exception):
    """The whole file cannot be ingested; the message is meant for the person who uploaded it."""


class Oversize:
    """Stands in for a physical line above the cap; its text was dropped as it arrived."""


OVERSIZE = Oversize()


class ByteCounter:
    """Bytes read so far, shared with the caller so the outcome can report them."""

    def __init__(self) -> None:
        self.count = 0


def decoded_chunks(stream: Readable, *, max_bytes: int, counter: ByteCounter) -> Iterator[str]:
    """Decode `stream` as UTF-8 chunk by chunk; raise FileFailure on binary, bad UTF-8 or size cap.

    Args:
        stream: a binary file-like object (anything with `read(n) -> bytes`).
        max_bytes: the file fails as soon as more bytes than this have been read.
        counter: updated with the bytes read, also when the file fails.

    Yields:
        Decoded text, BOM removed, in arbitrary-sized pieces.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    newlines = 0
    first = True
    while True:
        data = stream.read(CHUNK_BYTES)
        if not data:
            break
        if first and b"\x00" in data:
            offset = data.index(b"\x00")
            raise FileFailure(
                f"the file looks binary (NUL byte at offset {offset}); upload a CSV or JSONL text file "
                "(a UTF-16 export also contains NUL bytes: re-save it as UTF-8)"
            )
        pending = len(decoder.getstate()[0])
        start_offset = counter.count - pending
        counter.count += len(data)
        if counter.count > max_bytes:
            raise FileFailure(
                f"limit exceeded: the file is larger than max_bytes={max_bytes} bytes; "
                "split it into smaller files or raise the max_bytes ingest limit"
            )
        try:
            text = decoder.decode(data)
        except UnicodeDecodeError as exc:
            bom = len(_BOM) if first and data.startswith(_BOM) else 0
            good = bytes(exc.object[: exc.start]).decode("utf-8", errors="replace")
            raise FileFailure(
                f"the file is not valid UTF-8: byte 0x{exc.object[exc.start]:02x} at offset "
                f"{start_offset + bom + exc.start} (line {newlines + good.count(chr(10)) + 1}); "
                "re-save the file as UTF-8 (for example 'CSV UTF-8' in Excel, or "
                "iconv -f latin1 -t utf-8)"
            ) from None
        first = False
        newlines += text.count("\n")
        if text:
            yield text
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileFailure(
            f"the file is not valid UTF-8: it ends inside a multi-byte character (line {newlines + 1}); "
            "re-save the file as UTF-8"
        ) from None
    if tail:
        yield tail


def split_lines(chunks: Iterator[str], *, max_line_bytes: int) -> Iterator[str | Oversize]:
    """Split text into physical lines, each ending in a newline (the last may lack it).

    Yields one item per line, so the n-th item is line n. A line above `max_line_bytes` UTF-8
    bytes is yielded as `Oversize` and its characters are dropped as they arrive, so one huge
    line cannot exhaust memory.
    """
    parts: list[str] = []
    held = 0  # characters in parts; characters <= bytes, so held > cap means bytes > cap
    skipping = False
    for chunk in chunks:
        start = 0
        size = len(chunk)
        while start < size:
            end = chunk.find("\n", start) + 1
            if end and not parts and not skipping:  # the common case: a whole line in one chunk
                piece = chunk[start:end]
                start = end
                yield piece if len(piece) * 4 <= max_line_bytes else _capped(piece, max_line_bytes)
                continue
            piece = chunk[start:end] if end else chunk[start:]
            start = end or size
            if not skipping:
                parts.append(piece)
                held += len(piece)
                if held > max_line_bytes:
                    parts, held, skipping = [], 0, True
            if not end:
                continue
            if skipping:
                yield OVERSIZE
                skipping = False
            else:
                yield _capped("".join(parts), max_line_bytes)
            parts, held = [], 0
    if skipping:
        yield OVERSIZE
    elif parts:
        yield _capped("".join(parts), max_line_bytes)


def _capped(text: str, max_line_bytes: int) -> str | Oversize:
    return OVERSIZE if len(text.encode("utf-8")) > max_line_bytes else text
