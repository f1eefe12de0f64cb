"""The signed-URL upload: a PUT straight to Cloud Storage with exactly the headers it was signed with.

Not the API: no Authorization header and no base URL. Connection errors and 408/429/5xx answers
are retried (the whole file again); Cloud Storage's XML error becomes an `UploadFailed` saying why.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from promptopt.backoff import TRANSIENT_STATUSES
from promptopt.client import retries
from promptopt.client.errors import UploadFailed

#: Bytes read and sent per step (one progress report each).
CHUNK_BYTES = 256 * 1024
_XML_FIELD = re.compile(r"<(Code|Message|Details)>(.*?)</\1>", re.DOTALL)

#: Called with (bytes sent, total bytes) as the upload goes.
UploadProgress = Callable[[int, int], None]


def _storage_error(response: httpx.Response) -> tuple[str, str]:
    text = response.text[:4000]
    found = {name: html.unescape(" ".join(value.split())) for name, value in _XML_FIELD.findall(text)}
    code = found.get("Code") or f"HTTP {response.status_code}"
    words = found.get("Details") or found.get("Message") or " ".join(text.split())[:200]
    return code, words or response.reason_phrase


class _NoAnswer(Exception):
    def __init__(self, reason: str, attempt: int) -> None:
        super().__init__(reason)
        self.reason, self.attempt = reason, attempt


def put_signed(
    upload: dict[str, Any],
    content: bytes | Path,
    *,
    timeout_s: float = 300.0,
    retries_left: int = 3,
    on_progress: UploadProgress | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """PUT `content` (bytes, or a file streamed from disk) to the signed URL the API handed out."""
    size = len(content) if isinstance(content, bytes) else content.stat().st_size
    max_bytes = upload.get("max_bytes")
    if isinstance(max_bytes, int) and size > max_bytes:
        raise UploadFailed(f"the file is {size} bytes, above the {max_bytes} bytes the upload URL accepts")
    headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
    if not any(k.lower() == "content-length" for k in headers):
        headers["Content-Length"] = str(size)

    def chunks() -> Iterator[bytes]:
        sent = 0
        if isinstance(content, bytes):
            for start in range(0, size, CHUNK_BYTES):
                piece = content[start : start + CHUNK_BYTES]
                yield piece
                sent += len(piece)
                if on_progress is not None:
                    on_progress(sent, size)
            return
        with content.open("rb") as handle:
            while piece := handle.read(CHUNK_BYTES):
                yield piece
                sent += len(piece)
                if on_progress is not None:
                    on_progress(sent, size)

    with httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport) as http:

        def attempt(number: int) -> tuple[httpx.Response, int]:
            try:
                response = http.request(
                    str(upload.get("method") or "PUT"), str(upload["url"]), headers=headers, content=chunks()
                )
            except httpx.TransportError as exc:
                raise _NoAnswer(str(exc) or type(exc).__name__, number) from None
            return response, number

        try:
            response, attempts = retries.call_with_retries(
                attempt,
                retries=retries_left,
                retry_result=lambda answer: answer[0].status_code in TRANSIENT_STATUSES,
                retry_error=_NoAnswer,
            )
        except _NoAnswer as failure:
            raise UploadFailed(
                f"no answer from Cloud Storage ({failure.reason}; {failure.attempt} attempts)"
            ) from None
    if not response.is_success:
        code, words = _storage_error(response)
        raise UploadFailed(
            f"Cloud Storage refused the upload: HTTP {response.status_code} {code}: {words} "
            f"(after {attempts} attempt{'s' if attempts != 1 else ''})",
            status=response.status_code,
            code=code,
        )
