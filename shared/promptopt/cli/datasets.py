"""`promptopt datasets ...`: create, upload a new version, get, list, sample, rows, delete, bundled.

A file of at most `INLINE_MAX_BYTES` travels inside the JSON body of the create call; a larger one
is PUT to the signed URL the API answers with (straight to Cloud Storage: not through the API's
base URL and without the bearer token), with a progress bar on stderr. `--wait` then polls the
dataset until the new version is ready or failed.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from promptopt.cli import argtypes, output
from promptopt.cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, Context
from promptopt.cli.prompts import _add_paging, _collect, _more_hint

if TYPE_CHECKING:
    import httpx

    from promptopt.cli.client import ApiClient, ApiResponse

#: Files up to this size are sent inline (as `content`); larger ones go through the signed URL.
#: The API takes up to 5 MB inline, but JSON escaping can grow text several-fold: 1 MiB leaves headroom.
INLINE_MAX_BYTES = 1024 * 1024
#: Bytes read and sent per step of a signed-URL upload (one progress update each).
UPLOAD_CHUNK_BYTES = 256 * 1024
#: Seconds between polls of `--wait` (the last value repeats).
POLL_INTERVALS_S: tuple[float, ...] = (0.5, 1.0, 1.0, 2.0)
DEFAULT_WAIT_TIMEOUT_S = 600.0
#: Bad rows printed for a failed version (the API keeps the first 20).
BAD_ROWS_SHOWN = 10
#: Statuses of the signed-URL PUT worth another attempt (with the whole file again).
UPLOAD_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SPLITS = ("train", "validation", "test")
EXTENSION_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DONE_STATUSES = frozenset({"ready", "failed"})


# -- the dataset endpoints -----------------------------------------------------------------------


def _segment(value: str) -> str:
    return quote(value, safe="")


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class DatasetApi:
    """The /api/v1/datasets endpoints, over the CLI's ApiClient (its retries, token and errors)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def create(self, body: dict[str, Any], *, idempotency_key: str) -> ApiResponse:
        """POST /datasets: the dataset and its version 1; one key across retries."""
        headers = {"Idempotency-Key": idempotency_key}
        return self._api.request("POST", "/datasets", json=body, headers=headers)

    def create_version(self, dataset_id: str, body: dict[str, Any], *, idempotency_key: str) -> ApiResponse:
        """POST /datasets/{id}/versions: a new version of an existing dataset."""
        headers = {"Idempotency-Key": idempotency_key}
        path = f"/datasets/{_segment(dataset_id)}/versions"
        return self._api.request("POST", path, json=body, headers=headers)

    def get(self, dataset_id: str, *, versions: int | None = None) -> ApiResponse:
        """GET /datasets/{id}: the dataset with its newest versions."""
        params = _clean({"versions": versions})
        return self._api.request("GET", f"/datasets/{_segment(dataset_id)}", params=params)

    def list(
        self, *, name: str | None = None, page_size: int | None = None, page_token: str | None = None
    ) -> ApiResponse:
        """GET /datasets: one page, newest first."""
        params = _clean({"name": name, "page_size": page_size, "page_token": page_token})
        return self._api.request("GET", "/datasets", params=params)

    def sample(self, dataset_id: str, **query: Any) -> ApiResponse:
        """GET /datasets/{id}/sample (n, split, seed, version)."""
        return self._api.request("GET", f"/datasets/{_segment(dataset_id)}/sample", params=_clean(query))

    def rows(self, dataset_id: str, **query: Any) -> ApiResponse:
        """GET /datasets/{id}/rows (split, version, page_size, page_token)."""
        return self._api.request("GET", f"/datasets/{_segment(dataset_id)}/rows", params=_clean(query))

    def delete(self, dataset_id: str) -> ApiResponse:
        """DELETE /datasets/{id} (admin)."""
        return self._api.request("DELETE", f"/datasets/{_segment(dataset_id)}")


# -- sizes, progress and waiting -------------------------------------------------------------------


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """A text progress bar for an upload, on stderr.

    On a terminal it redraws one line with a carriage return (at most every `interval_s`); when
    stderr is a file or a pipe it stays quiet until the end and prints one final line.
    """

    WIDTH = 24

    def __init__(
        self,
        total: int,
        *,
        label: str = "uploading",
        stream: TextIO | None = None,
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.label, self.stream = total, label, stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s, self.clock = interval_s, clock
        self.sent = 0
        self.started = clock()
        self._drawn_at: float | None = None
        self._width = 0

    def restart(self) -> None:
        """A retry sends the file again from the start."""
        self.sent, self.started = 0, self.clock()

    def update(self, sent: int) -> None:
        """`sent` bytes are out so far."""
        self.sent = sent
        now = self.clock()
        if self.tty and (self._drawn_at is None or now - self._drawn_at >= self.interval_s):
            self._drawn_at = now
            self._draw(self.line(now), end="")

    def finish(self, *, ok: bool = True) -> None:
        """End the bar: a last line with the totals (and, on failure, where it stopped)."""
        line = self.line(self.clock())
        if not ok:
            line += "  failed"
        self._draw(line, end="\n")

    def line(self, now: float) -> str:
        """`uploading [#####-----]  1.5 MiB / 3.0 MiB   50%  2.1 MiB/s`."""
        fraction = 1.0 if self.total <= 0 else min(self.sent / self.total, 1.0)
        filled = int(fraction * self.WIDTH)
        elapsed = max(now - self.started, 1e-6)
        rate = human_bytes(self.sent / elapsed) + "/s"
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return (
            f"{self.label} [{bar}] {human_bytes(self.sent)} / {human_bytes(self.total)}"
            f"  {fraction * 100:3.0f}%  {rate}"
        )

    def _draw(self, line: str, *, end: str) -> None:
        if self.tty:
            pad = " " * max(self._width - len(line), 0)  # clear what a longer previous line left
            self.stream.write("\r" + line + pad + end)
            self._width = 0 if end else len(line)
        else:
            self.stream.write(line + end)
        self.stream.flush()


class Spinner:
    """A status line while waiting: redrawn on a terminal, one line per change otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._frame = 0
        self._last: str | None = None
        self._width = 0

    def show(self, text: str, elapsed_s: float) -> None:
        """Show `text` (a status), with the elapsed time on a terminal."""
        if self.tty:
            frame = self.FRAMES[self._frame % len(self.FRAMES)]
            self._frame += 1
            line = f"{frame} {text}  {elapsed_s:.0f}s"
            self.stream.write("\r" + line + " " * max(self._width - len(line), 0))
            self._width = len(line)
            self.stream.flush()
        elif text != self._last:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last = text

    def done(self) -> None:
        """Leave the line (on a terminal) so what follows starts clean."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def find_version(dataset: dict[str, Any], number: int) -> dict[str, Any] | None:
    """Version `number` among the dataset's listed versions."""
    for version in dataset.get("versions") or []:
        if isinstance(version, dict) and version.get("version") == number:
            return version
    return None


def wait_for_version(
    datasets: DatasetApi, dataset_id: str, number: int, *, timeout_s: float, spinner: Spinner | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Poll until version `number` is ready or failed; return (dataset, version)."""
    spinner = spinner or Spinner()
    started = time.monotonic()
    polls = 0
    try:
        while True:
            dataset: dict[str, Any] = datasets.get(dataset_id).body or {}
            version = find_version(dataset, number)
            if version is None:
                raise CliError(
                    f"version {number} is not among the versions of {dataset_id} the API lists",
                    EXIT_FAILURE,
                )
            status = str(version.get("status"))
            elapsed = time.monotonic() - started
            if status in DONE_STATUSES:
                return dataset, version
            spinner.show(f"waiting for {dataset_id} version {number}: {status}", elapsed)
            if elapsed >= timeout_s:
                raise CliError(
                    f"{dataset_id} version {number} is still {status} after {elapsed:.0f}s; look again "
                    f"later with: promptopt datasets get {dataset_id}",
                    EXIT_FAILURE,
                )
            time.sleep(POLL_INTERVALS_S[min(polls, len(POLL_INTERVALS_S) - 1)] if POLL_INTERVALS_S else 0)
            polls += 1
    finally:
        spinner.done()


# -- the signed-URL upload ------------------------------------------------------------------------


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


def _chunks(path: Path, progress: Progress) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK_BYTES):
            yield chunk
            sent += len(chunk)
            progress.update(sent)


def put_file(
    upload: dict[str, Any],
    path: Path,
    size: int,
    *,
    timeout_s: float,
    retries: int,
    retry_hint: str,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """PUT the file to the signed URL with exactly the headers it was signed with (plus its length).

    A plain httpx client: not the API's base URL, no Authorization header. Connection errors and
    408/429/5xx answers are retried (the whole file again) up to `retries` times.
    """
    import httpx

    from promptopt.cli import client as api_client

    max_bytes = upload.get("max_bytes")
    if isinstance(max_bytes, int) and size > max_bytes:
        raise CliError(
            f"{path} is {size} bytes ({human_bytes(size)}), above the {max_bytes} bytes "
            f"({human_bytes(max_bytes)}) the upload URL accepts; nothing was uploaded (split the file, or "
            "raise the deployment's dataset size limit)"
        )
    headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
    if not any(k.lower() == "content-length" for k in headers):
        headers["Content-Length"] = str(size)  # a known length, not chunked transfer encoding
    progress = progress or Progress(size)
    attempt = 0
    with httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport) as http:
        while True:
            attempt += 1
            progress.restart()
            response: httpx.Response | None = None
            reason = ""
            try:
                response = http.request(
                    str(upload.get("method") or "PUT"),
                    str(upload["url"]),
                    headers=headers,
                    content=_chunks(path, progress),
                )
            except httpx.TransportError as exc:
                reason = str(exc) or type(exc).__name__
            except OSError as exc:
                progress.finish(ok=False)
                raise CliError(f"{path}: cannot read it ({exc})") from None
            except KeyboardInterrupt:
                progress.finish(ok=False)  # end the bar's line before "interrupted"
                raise
            if response is not None and response.is_success:
                progress.finish()
                return
            if attempt > retries or (
                response is not None and response.status_code not in UPLOAD_RETRY_STATUSES
            ):
                progress.finish(ok=False)
                if response is None:
                    raise CliError(
                        f"upload failed: no answer from Cloud Storage ({reason}; {attempt} attempt"
                        f"{'s' if attempt != 1 else ''}).\n  {retry_hint}",
                        EXIT_FAILURE,
                    )
                raise _upload_failure(response, upload, retry_hint, attempt)
            backoff = api_client.RETRY_BACKOFF_S
            time.sleep(backoff[min(attempt - 1, len(backoff) - 1)] if backoff else 0.0)


# -- files, bundled datasets, request bodies ------------------------------------------------------


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


def _idempotency_key(args: argparse.Namespace) -> str:
    return str(args.idempotency_key or uuid.uuid4())


def _add_content(body: dict[str, Any], source: Source, via: str) -> bool:
    """Put the file inline into `body`, or ask for an upload URL; True when inline."""
    inline = via == "inline" or (via == "auto" and source.size <= INLINE_MAX_BYTES)
    if inline:
        body.update(inline_content(source))
    else:
        body["upload_max_bytes"] = source.size
    return inline


# -- human views -----------------------------------------------------------------------------------


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
                human_bytes(v["bytes"]) if isinstance(v.get("bytes"), int) else "-",
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


def _show_created(created: dict[str, Any], inline: bool) -> None:
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


def _rows_table(rows: Sequence[dict[str, Any]]) -> str:
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


# -- commands --------------------------------------------------------------------------------------


def _send(
    args: argparse.Namespace,
    ctx: Context,
    source: Source,
    *,
    request: Callable[[DatasetApi, dict[str, Any]], ApiResponse],
    body: dict[str, Any],
    retry_hint: Callable[[str], str],
) -> int:
    """Create the version (inline or with an upload URL), upload, then maybe wait; print the result."""
    inline = _add_content(body, source, args.via)
    with ctx.client() as api:
        datasets = DatasetApi(api)
        reply = request(datasets, body)
        created: dict[str, Any] = reply.body or {}
        dataset_id = str((created.get("dataset") or {}).get("dataset_id"))
        number = int((created.get("version") or {}).get("version") or 0)
        if not ctx.json:
            _show_created(created, inline)
        upload = created.get("upload")
        needs_upload = not inline
        if needs_upload and reply.headers.get("idempotent-replayed") == "true":
            # A replayed create: the first run may have uploaded the file already.
            current = find_version(datasets.get(dataset_id).body or {}, number) or {}
            if current.get("status", "pending") != "pending":
                output.note(
                    f"note: this Idempotency-Key was used before; {dataset_id} version {number} has its file"
                )
                needs_upload = False
        if needs_upload:
            if not isinstance(upload, dict) or not upload.get("url"):
                raise CliError("the API gave no upload URL for the file", EXIT_FAILURE)
            put_file(
                upload,
                source.path,
                source.size,
                timeout_s=ctx.timeout_s,
                retries=ctx.retries,
                retry_hint=retry_hint(dataset_id),
            )
        if not args.wait:
            if ctx.json:
                output.emit_json(created)
            else:
                output.note(
                    f"{dataset_id} version {number} is being ingested; see it with: promptopt datasets get "
                    f"{dataset_id} (or pass --wait)"
                )
            return EXIT_OK
        dataset, version = wait_for_version(datasets, dataset_id, number, timeout_s=args.wait_timeout)
    if ctx.json:
        output.emit_json({**created, "dataset": dataset, "version": version})
    else:
        output.emit("\n".join(outcome_lines(dataset_id, version)))
    if version.get("status") == "ready":
        return EXIT_OK
    reason = str((version.get("failure") or {}).get("reason") or "")
    if args.command == "create" and "skip_bad_rows" in reason and not args.skip_bad_rows:
        output.note("hint: to ingest the good rows and skip the bad ones, create it with --skip-bad-rows")
    return EXIT_FAILURE


def _create(args: argparse.Namespace, ctx: Context) -> int:
    if args.bundled:
        if args.file or args.input or args.reference or args.format:
            raise CliError(
                "--bundled datasets come with their file, format and mapping; give FILE or --bundled"
            )
        entry = bundled(args.bundled)
        source = read_source(entry["path"])
        fmt, mapping = str(entry["format"]), dict(entry["mapping"])
        name = args.name or str(entry["name"])
        description = args.description if args.description is not None else str(entry.get("description", ""))
    else:
        if not args.file:
            raise CliError("give a FILE (or --bundled NAME; see promptopt datasets bundled)")
        if not args.input:
            raise CliError("--input COLUMN is required (repeat it for each template variable)")
        if not args.name:
            raise CliError("--name is required")
        source = read_source(args.file)
        fmt = format_of(source.path, args.format)
        mapping = {"inputs": args.input, "reference": args.reference}
        name, description = args.name, args.description or ""
    if args.max_bad_fraction is not None and not args.skip_bad_rows:
        raise CliError("--max-bad-fraction applies with --skip-bad-rows")
    body: dict[str, Any] = {"name": name, "format": fmt, "mapping": mapping, "description": description}
    if args.splits is not None:
        body["splits"] = parse_splits(args.splits)
    if args.split_seed is not None:
        body["split_seed"] = args.split_seed
    if args.skip_bad_rows:
        body["bad_row_policy"] = "skip_bad_rows"
        if args.max_bad_fraction is not None:
            body["max_bad_fraction"] = args.max_bad_fraction
    key = _idempotency_key(args)

    def hint(dataset_id: str) -> str:
        return (
            f"the dataset {dataset_id} exists without a file; add one with: promptopt datasets upload "
            f"{source.path} {dataset_id}"
        )

    return _send(
        args,
        ctx,
        source,
        request=lambda datasets, b: datasets.create(b, idempotency_key=key),
        body=body,
        retry_hint=hint,
    )


def _upload(args: argparse.Namespace, ctx: Context) -> int:
    source = read_source(args.file)
    with ctx.client() as api:  # the dataset must exist, and take this kind of file
        dataset: dict[str, Any] = DatasetApi(api).get(args.dataset_id, versions=1).body or {}
    fmt = EXTENSION_FORMATS.get(source.path.suffix.lower())
    if fmt is not None and dataset.get("format") and fmt != dataset["format"]:
        raise CliError(
            f"{args.file} looks like {fmt} but {args.dataset_id} holds {dataset['format']} files; every "
            "version of a dataset has its format"
        )
    key = _idempotency_key(args)

    def hint(dataset_id: str) -> str:
        return f"run the upload again for a new URL: promptopt datasets upload {source.path} {dataset_id}"

    return _send(
        args,
        ctx,
        source,
        request=lambda datasets, b: datasets.create_version(args.dataset_id, b, idempotency_key=key),
        body={},
        retry_hint=hint,
    )


def _get(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = DatasetApi(api).get(args.dataset_id, versions=args.versions)
    if ctx.json:
        output.emit_json(reply.body)
    else:
        show_dataset(reply.body or {})
    return EXIT_OK


def _list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        datasets = DatasetApi(api)
        page = _collect(
            args, lambda token: datasets.list(name=args.name, page_size=args.page_size, page_token=token)
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    items = page.get("items") or []
    if items:
        rows = [
            [
                d.get("dataset_id"),
                d.get("name"),
                d.get("format"),
                d.get("latest_version"),
                d.get("version_count"),
                output.timestamp(d.get("updated_at")),
                d.get("created_by"),
            ]
            for d in items
        ]
        header = ["DATASET_ID", "NAME", "FORMAT", "LATEST", "VERSIONS", "UPDATED", "CREATED_BY"]
        output.emit(output.table(header, rows))
    else:
        output.note("no datasets")
    command = ["promptopt", "datasets", "list"] + (["--name", args.name] if args.name is not None else [])
    _more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def _sample(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = DatasetApi(api).sample(
            args.dataset_id, n=args.n, split=args.split, seed=args.seed, version=args.version
        )
    body: dict[str, Any] = reply.body or {}
    if ctx.json:
        output.emit_json(body)
        return EXIT_OK
    rows = body.get("rows") or []
    split = f", {body['split']} split" if body.get("split") else ""
    where = f"{body.get('dataset_id')} version {body.get('version')}"
    output.emit(f"{where}: {len(rows)} rows (seed {body.get('seed')}{split})")
    if rows:
        output.emit(_rows_table(rows))
    return EXIT_OK


def _rows(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        datasets = DatasetApi(api)
        page = _collect(
            args,
            lambda token: datasets.rows(
                args.dataset_id,
                split=args.split,
                version=args.version,
                page_size=args.page_size,
                page_token=token,
            ),
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    rows = page.get("items") or []
    output.emit(f"{page.get('dataset_id')} version {page.get('version')}: {len(rows)} rows")
    if rows:
        output.emit(_rows_table(rows))
    command = ["promptopt", "datasets", "rows", args.dataset_id]
    for flag, value in (("--split", args.split), ("--version", args.version)):
        if value is not None:
            command += [flag, str(value)]
    _more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def _delete(args: argparse.Namespace, ctx: Context) -> int:
    if not args.yes:
        raise CliError(
            f"deleting {args.dataset_id} removes every version and its files for good; pass --yes to confirm"
        )
    with ctx.client() as api:
        DatasetApi(api).delete(args.dataset_id)
    if ctx.json:
        output.emit_json({"dataset_id": args.dataset_id, "deleted": True})
    else:
        output.emit(f"deleted {args.dataset_id}")
    return EXIT_OK


def _bundled(args: argparse.Namespace, ctx: Context) -> int:
    catalog = bundled_catalog()
    if ctx.json:
        output.emit_json({"directory": str(bundled_dir()), "datasets": catalog})
        return EXIT_OK
    rows = [[e.get("name"), e.get("rows"), e.get("suggested_metric"), e.get("description")] for e in catalog]
    output.emit(output.table(["NAME", "ROWS", "METRIC", "DESCRIPTION"], rows))
    output.note(f"from {bundled_dir()}; create one with: promptopt datasets create --bundled NAME --wait")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------------


def _add_sending(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", action="store_true", help="wait until the version is ready or failed (exit 1 if failed)"
    )
    parser.add_argument(
        "--wait-timeout",
        type=argtypes.positive_float,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="S",
        help=f"with --wait: give up after S seconds (default {DEFAULT_WAIT_TIMEOUT_S:g}, exit 1)",
    )
    parser.add_argument(
        "--via",
        choices=("auto", "inline", "url"),
        default="auto",
        help=f"send the file inside the request (inline, up to 5 MB) or PUT it to a signed URL (url); "
        f"default auto: inline up to {human_bytes(INLINE_MAX_BYTES)}",
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="K",
        help="use this Idempotency-Key instead of a random one (to retry the command from a script)",
    )


def register(
    groups: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the `datasets` group and its commands to the top-level subparsers."""
    group = groups.add_parser("datasets", help="upload, inspect, sample and delete datasets")
    commands = group.add_subparsers(dest="command", metavar="<command>", required=True)

    def command(
        name: str, handler: Callable[[argparse.Namespace, Context], int], **kwargs: Any
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[common], **kwargs)
        parser.set_defaults(handler=handler)
        return parser

    create = command(
        "create",
        _create,
        help="create a dataset from a CSV or JSONL file (version 1)",
        description="Create a dataset from a CSV (header row) or JSONL file, or from a dataset bundled with "
        "the repository (--bundled). Files up to 1 MiB go inline; larger ones are PUT to a signed "
        "Cloud Storage URL with a progress bar. Ingestion runs after the upload; --wait follows it. With "
        "--json, prints the API's answer (with --wait: the same document with the final dataset and "
        "version).",
    )
    create.add_argument("file", nargs="?", metavar="FILE", help="the .csv, .tsv, .jsonl or .ndjson file")
    create.add_argument(
        "--bundled", metavar="NAME", help="a bundled dataset, e.g. bbh/boolean_expressions (see `bundled`)"
    )
    create.add_argument("--name", help="the dataset's name (default with --bundled: the bundled name)")
    create.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file's extension")
    create.add_argument(
        "--input",
        action="append",
        metavar="COLUMN",
        help="a column (CSV) or field (JSONL) that fills the template variable of the same name; repeatable",
    )
    create.add_argument(
        "--reference", metavar="COLUMN", help="the column or field holding the expected answer"
    )
    create.add_argument("--description", metavar="TEXT")
    create.add_argument(
        "--splits", metavar="T,V,T", help="train,validation,test shares summing to 1 (default 0.6,0.2,0.2)"
    )
    create.add_argument(
        "--split-seed", type=argtypes.seed, metavar="N", help="seed of the split assignment (default 0)"
    )
    create.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="ingest the good rows and report the bad ones (default: any bad row fails the file)",
    )
    create.add_argument(
        "--max-bad-fraction",
        type=argtypes.fraction,
        metavar="F",
        help="with --skip-bad-rows: fail the file above this share of bad rows (default 0.05)",
    )
    _add_sending(create)

    upload = command(
        "upload",
        _upload,
        help="upload a new version of a dataset",
        description="Upload a new file as the next version of a dataset (same format and mapping).",
    )
    upload.add_argument("file", metavar="FILE", help="the new file")
    upload.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    _add_sending(upload)

    get = command("get", _get, help="show a dataset and its versions")
    get.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    get.add_argument(
        "--versions", type=int, metavar="N", help="how many of the newest versions to show (API default 20)"
    )

    listing = command("list", _list, help="list datasets, newest first")
    listing.add_argument("--name", help="only datasets with exactly this name")
    _add_paging(listing, "datasets")

    sample = command("sample", _sample, help="a deterministic sample of rows (same seed, same rows)")
    sample.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    sample.add_argument(
        "-n", type=argtypes.positive_int, default=10, metavar="N", help="rows (default 10, max 1000)"
    )
    sample.add_argument("--split", choices=SPLITS, help="only this split")
    sample.add_argument(
        "--seed", type=argtypes.seed, default=0, metavar="S", help="sampling seed (default 0)"
    )
    sample.add_argument(
        "--version", type=argtypes.positive_int, metavar="N", help="default: the newest ready version"
    )

    rows = command("rows", _rows, help="page through the rows of a version")
    rows.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    rows.add_argument("--split", choices=SPLITS, help="only this split")
    rows.add_argument(
        "--version", type=argtypes.positive_int, metavar="N", help="default: the newest ready version"
    )
    _add_paging(rows, "rows")

    delete = command("delete", _delete, help="delete a dataset, its versions and files (admin)")
    delete.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")

    command("bundled", _bundled, help="list the datasets bundled with the repository")
