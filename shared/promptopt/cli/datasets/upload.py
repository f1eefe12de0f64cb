"""The signed-URL upload: a PUT straight to Cloud Storage, with a progress bar and retries.

A plain httpx client: not the API's base URL, no Authorization header, exactly the headers the URL
was signed with. Cloud Storage's XML errors become messages that say what went wrong and what to do.
"""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from promptopt.backoff import TRANSIENT_STATUSES
from promptopt.cli import output
from promptopt.cli.core.context import EXIT_FAILURE, EXIT_USAGE, CliError
from promptopt.cli.core.waiting import is_terminal

if TYPE_CHECKING:
    import httpx
    from rich.progress import Progress

#: Bytes read and sent per step of a signed-URL upload (one progress update each).
UPLOAD_CHUNK_BYTES = 256 * 1024
#: Statuses of the signed-URL PUT worth another attempt (with the whole file again).


class UploadProgress:
    """An upload's progress on stderr: a rich progress bar on a terminal, one final line otherwise."""

    def __init__(
        self,
        total: int,
        *,
        label: str = "uploading",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.label, self.stream = total, label, stream or sys.stderr
        self.tty = is_terminal(self.stream)
        self.clock = clock
        self.sent = 0
        self.started = clock()
        self._bar: Progress | None = None

    def restart(self) -> None:
        """A retry sends the file again from the start."""
        self.sent, self.started = 0, self.clock()
        if self.tty:
            self._draw(reset=True)

    def update(self, sent: int) -> None:
        """`sent` bytes are out so far."""
        self.sent = sent
        if self.tty:
            self._draw()

    def finish(self, *, ok: bool = True) -> None:
        """End the bar: it stays with the totals (and, on failure, says where it stopped)."""
        if self.tty:
            self._draw(description=self.label if ok else f"{self.label} failed")
            assert self._bar is not None
            self._bar.stop()
            self._bar = None
            return
        line = self.line(self.clock())
        self.stream.write(line + ("" if ok else "  failed") + "\n")
        self.stream.flush()

    def line(self, now: float) -> str:
        """`uploading 1.5 MiB / 3.0 MiB   50%  2.1 MiB/s`."""
        fraction = 1.0 if self.total <= 0 else min(self.sent / self.total, 1.0)
        elapsed = max(now - self.started, 1e-6)
        rate = output.human_bytes(self.sent / elapsed) + "/s"
        return (
            f"{self.label} {output.human_bytes(self.sent)} / {output.human_bytes(self.total)}"
            f"  {fraction * 100:3.0f}%  {rate}"
        )

    def _draw(self, *, description: str | None = None, reset: bool = False) -> None:
        bar = self._bar or self._start()
        task = bar.task_ids[0]
        if reset:
            bar.reset(task, total=self.total)
        bar.update(task, completed=self.sent, description=description)

    def _start(self) -> Progress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TaskProgressColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._bar.add_task(self.label, total=self.total)
        self._bar.start()
        return self._bar


_XML_FIELD = re.compile(r"<(Code|Message|Details)>(.*?)</\1>", re.DOTALL)
_GCS_HINTS = {
    "ExpiredToken": "the signed upload URL expired{expiry} before the upload started",
    "SignatureDoesNotMatch": (
        "Cloud Storage refused the upload URL's signature: the request differs from what the URL was "
        "signed for (a header was changed or dropped, or the URL was altered)"
    ),
    "MalformedSecurityHeader": "a header the upload URL was signed with was missing or malformed",
    "MissingSecurityHeader": "a header the upload URL was signed with was missing",
    "EntityTooLarge": "the file is larger than the upload URL allows ({max_bytes})",
    "EntityTooSmall": "the file is smaller than the upload URL allows",
    "AccessDenied": "Cloud Storage denied the upload (the URL is invalid or its signer may not write there)",
    "PreconditionFailed": "the file of this version was already uploaded (an upload URL works once)",
    "RequestNotYetValid": "the upload URL is not valid yet (is this machine's clock right?)",
    "NoSuchBucket": "the datasets bucket does not exist (a deployment problem)",
}


def storage_error(response: httpx.Response) -> tuple[str, str]:
    """(code, words) from a Cloud Storage XML error body, or from the status when it is not XML."""
    text = response.text[:4000]
    found = {name: html.unescape(" ".join(value.split())) for name, value in _XML_FIELD.findall(text)}
    code = found.get("Code") or f"HTTP {response.status_code}"
    words = found.get("Details") or found.get("Message") or " ".join(text.split())[:200]
    return code, words or response.reason_phrase


def _upload_failure(
    response: httpx.Response, upload: dict[str, Any], retry_hint: str, attempts: int
) -> CliError:
    code, words = storage_error(response)
    expiry = f" at {output.timestamp(upload.get('expires_at'))}" if upload.get("expires_at") else ""
    max_bytes = f"{upload['max_bytes']} bytes" if isinstance(upload.get("max_bytes"), int) else "its limit"
    if code in _GCS_HINTS:
        headline = _GCS_HINTS[code].format(expiry=expiry, max_bytes=max_bytes)
    elif response.status_code == 413:
        headline = _GCS_HINTS["EntityTooLarge"].format(max_bytes=max_bytes)
    else:
        headline = "Cloud Storage refused the upload"
    tries = f", after {attempts} attempts" if attempts > 1 else ""
    message = (
        f"upload failed: {headline}.\n"
        f"  Cloud Storage said: HTTP {response.status_code} {code}: {words}{tries}\n"
        f"  Nothing was stored; {retry_hint}"
    )
    exit_code = EXIT_USAGE if 400 <= response.status_code < 500 else EXIT_FAILURE
    return CliError(message, exit_code)


def _chunks(path: Path, progress: UploadProgress) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK_BYTES):
            yield chunk
            sent += len(chunk)
            progress.update(sent)


class _NoAnswer(Exception):
    """An upload attempt that got no answer from Cloud Storage."""

    def __init__(self, reason: str, attempt: int) -> None:
        super().__init__(reason)
        self.reason, self.attempt = reason, attempt


def put_file(
    upload: dict[str, Any],
    path: Path,
    size: int,
    *,
    timeout_s: float,
    retries: int,
    retry_hint: str,
    progress: UploadProgress | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """PUT the file to the signed URL with exactly the headers it was signed with (plus its length).

    Connection errors and 408/429/5xx answers are retried (the whole file again) up to `retries` times.
    """
    import httpx

    from promptopt.client.retries import call_with_retries

    max_bytes = upload.get("max_bytes")
    if isinstance(max_bytes, int) and size > max_bytes:
        raise CliError(
            f"{path} is {size} bytes ({output.human_bytes(size)}), above the {max_bytes} bytes "
            f"({output.human_bytes(max_bytes)}) the upload URL accepts; nothing was uploaded (split the "
            "file, or raise the deployment's dataset size limit)"
        )
    headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
    if not any(k.lower() == "content-length" for k in headers):
        headers["Content-Length"] = str(size)  # a known length, not chunked transfer encoding
    bar = progress or UploadProgress(size)

    with httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport) as http:

        def attempt(number: int) -> tuple[httpx.Response, int]:
            bar.restart()
            try:
                response = http.request(
                    str(upload.get("method") or "PUT"),
                    str(upload["url"]),
                    headers=headers,
                    content=_chunks(path, bar),
                )
            except httpx.TransportError as exc:
                raise _NoAnswer(str(exc) or type(exc).__name__, number) from None
            return response, number

        try:
            response, attempts = call_with_retries(
                attempt,
                retries=retries,
                retry_result=lambda answer: answer[0].status_code in TRANSIENT_STATUSES,
                retry_error=_NoAnswer,
            )
        except _NoAnswer as failure:
            bar.finish(ok=False)
            raise CliError(
                f"upload failed: no answer from Cloud Storage ({failure.reason}; {failure.attempt} attempt"
                f"{'s' if failure.attempt != 1 else ''}).\n  {retry_hint}",
                EXIT_FAILURE,
            ) from None
        except OSError as exc:
            bar.finish(ok=False)
            raise CliError(f"{path}: cannot read it ({exc})") from None
        except KeyboardInterrupt:
            bar.finish(ok=False)  # end the bar's line before "interrupted"
            raise
    if response.is_success:
        bar.finish()
        return
    bar.finish(ok=False)
    raise _upload_failure(response, upload, retry_hint, attempts)
