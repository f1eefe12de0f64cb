"""`client.datasets`: create datasets from a file or from rows in memory, versions, rows, samples."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from promptopt.client._base import Resource, body_of, parse
from promptopt.client.errors import JobFailed
from promptopt.client.http import clean, segment
from promptopt.client.paging import pages
from promptopt.client.uploads import UploadProgress, put_signed
from promptopt.client.waiting import wait_until
from promptopt.datasets.models import (
    Dataset,
    DatasetCreate,
    DatasetCreated,
    DatasetPage,
    DatasetRow,
    DatasetSample,
    DatasetVersion,
    DatasetVersionCreate,
    RowPage,
)

#: Content up to this size goes inline in the request; larger content through the signed URL.
#: (The API takes 5 MB inline; JSON escaping can grow text several-fold, so 1 MiB leaves room.)
INLINE_MAX_BYTES = 1024 * 1024
EXTENSION_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DONE_STATUSES = frozenset({"ready", "failed"})

Content = str | Path | Iterable[Mapping[str, Any]]


def rows_to_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows (dicts of column -> value) as JSONL bytes, one object per line."""
    out = io.StringIO()
    for row in rows:
        out.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    data = out.getvalue().encode("utf-8")
    if not data:
        raise ValueError("no rows to upload")
    return data


def _content(source: Content, fmt: str | None) -> tuple[bytes | Path, str]:
    """(bytes or a file path, format) for a file path or rows."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        found = fmt or EXTENSION_FORMATS.get(path.suffix.lower())
        if found is None:
            raise ValueError(
                f"{path}: cannot tell the format from the extension; pass format='csv' or 'jsonl'"
            )
        return path, found
    if fmt not in (None, "jsonl"):
        raise ValueError("rows in memory are sent as JSONL")
    return rows_to_jsonl(source), "jsonl"


def _inline(data: bytes | Path) -> dict[str, Any] | None:
    raw = data if isinstance(data, bytes) else None
    if raw is None and isinstance(data, Path) and data.stat().st_size <= INLINE_MAX_BYTES:
        raw = data.read_bytes()
    if raw is None or len(raw) > INLINE_MAX_BYTES:
        return None
    try:
        return {"content": raw.decode("utf-8")}
    except UnicodeDecodeError:
        import base64

        return {"content_base64": base64.b64encode(raw).decode("ascii")}


def _size(data: bytes | Path) -> int:
    return len(data) if isinstance(data, bytes) else data.stat().st_size


class Datasets(Resource):
    """The /api/v1/datasets endpoints, and uploads of their files."""

    def create(
        self,
        source: Content,
        *,
        name: str,
        inputs: list[str],
        reference: str | None = None,
        format: str | None = None,
        description: str | None = None,
        splits: Mapping[str, float] | None = None,
        split_seed: int | None = None,
        bad_row_policy: str | None = None,
        max_bad_fraction: float | None = None,
        wait: bool = False,
        timeout_s: float | None = 600.0,
        on_progress: Callable[[DatasetVersion], None] | None = None,
        on_upload: UploadProgress | None = None,
        idempotency_key: str | None = None,
    ) -> DatasetCreated:
        """A dataset and its version 1 from a CSV/JSONL file or from rows (a list of dicts).

        `inputs` name the columns that fill the template's variables, `reference` the expected
        output. Small content goes inline, larger content through the signed upload URL. With
        `wait`, returns once the version is ready (JobFailed when ingestion fails).
        """
        data, fmt = _content(source, format)
        fields: dict[str, Any] = {
            "name": name,
            "format": fmt,
            "mapping": {"inputs": inputs, "reference": reference},
            "description": description,
            "splits": splits,
            "split_seed": split_seed,
            "bad_row_policy": bad_row_policy,
            "max_bad_fraction": max_bad_fraction,
        }
        return self._send(DatasetCreate, "/datasets", fields, data, wait, timeout_s, on_progress, on_upload,
                          idempotency_key)  # fmt: skip

    def upload(
        self,
        dataset_id: str,
        source: Content,
        *,
        wait: bool = False,
        timeout_s: float | None = 600.0,
        on_progress: Callable[[DatasetVersion], None] | None = None,
        on_upload: UploadProgress | None = None,
        idempotency_key: str | None = None,
    ) -> DatasetCreated:
        """The next version of a dataset, from a file or rows (in the dataset's format)."""
        data, _ = _content(source, None if isinstance(source, str | Path) else "jsonl")
        path = f"/datasets/{segment(dataset_id)}/versions"
        return self._send(DatasetVersionCreate, path, {}, data, wait, timeout_s, on_progress, on_upload,
                          idempotency_key)  # fmt: skip

    def _send(
        self,
        model: type[DatasetCreate] | type[DatasetVersionCreate],
        path: str,
        fields: dict[str, Any],
        data: bytes | Path,
        wait: bool,
        timeout_s: float | None,
        on_progress: Callable[[DatasetVersion], None] | None,
        on_upload: UploadProgress | None,
        idempotency_key: str | None,
    ) -> DatasetCreated:
        inline = _inline(data)
        fields = {**fields, **(inline or {"upload_max_bytes": _size(data)})}
        reply = self._http.post(path, body_of(model, fields), idempotency_key=idempotency_key)
        created = parse(DatasetCreated, reply.body)
        upload = created.upload
        if inline is None and upload is not None:
            if reply.replayed:  # the first attempt may have uploaded already
                current = self._find_version(created.dataset.dataset_id, created.version.version)
                if current is not None and current.status != "pending":
                    upload = None
            if upload is not None:
                put_signed(
                    upload.model_dump(mode="json"),
                    data,
                    timeout_s=max(self._http.timeout_s, 300.0),
                    retries_left=self._http.retries,
                    on_progress=on_upload,
                    transport=self._http.transport,
                )
        if not wait:
            return created
        version = self.wait(
            created.dataset.dataset_id, created.version.version, timeout_s=timeout_s, on_progress=on_progress
        )
        dataset = self.get(created.dataset.dataset_id)
        return created.model_copy(update={"dataset": dataset, "version": version})

    def _find_version(self, dataset_id: str, number: int) -> DatasetVersion | None:
        return next((v for v in self.get(dataset_id).versions if v.version == number), None)

    def wait(
        self,
        dataset_id: str,
        version: int,
        *,
        timeout_s: float | None = 600.0,
        on_progress: Callable[[DatasetVersion], None] | None = None,
        raise_on_failure: bool = True,
    ) -> DatasetVersion:
        """Poll until version `version` is ready or failed (JobFailed for failed, unless told not to)."""

        def fetch() -> DatasetVersion:
            found = self._find_version(dataset_id, version)
            if found is None:
                raise JobFailed(f"{dataset_id} version {version}", "the API does not list this version")
            return found

        done = wait_until(
            fetch,
            settled=lambda v: v.status in DONE_STATUSES,
            what=f"{dataset_id} version {version}",
            timeout_s=timeout_s,
            on_progress=on_progress,
        )
        if done.status == "failed" and raise_on_failure:
            reason = done.failure.reason if done.failure else "no reason given"
            raise JobFailed(f"{dataset_id} version {version}", reason, done)
        return done

    def get(self, dataset_id: str, *, versions: int | None = None) -> Dataset:
        """The dataset with its newest versions (status, row counts, bad rows, statistics)."""
        reply = self._http.request(
            "GET", f"/datasets/{segment(dataset_id)}", params=clean({"versions": versions})
        )
        return parse(Dataset, reply.body)

    def list(
        self, *, name: str | None = None, page_size: int | None = None, page_token: str | None = None
    ) -> DatasetPage:
        """One page of datasets, newest first."""
        params = clean({"name": name, "page_size": page_size, "page_token": page_token})
        return parse(DatasetPage, self._http.request("GET", "/datasets", params=params).body)

    def iterate(self, *, name: str | None = None, page_size: int | None = None) -> Iterator[Dataset]:
        """Every dataset, newest first."""
        for page in pages(lambda token: self.list(name=name, page_size=page_size, page_token=token)):
            yield from page.items

    def rows(
        self,
        dataset_id: str,
        *,
        split: str | None = None,
        version: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> RowPage:
        """One page of rows, in split order."""
        params = clean({"split": split, "version": version, "page_size": page_size, "page_token": page_token})
        reply = self._http.request("GET", f"/datasets/{segment(dataset_id)}/rows", params=params)
        return parse(RowPage, reply.body)

    def iterate_rows(
        self,
        dataset_id: str,
        *,
        split: str | None = None,
        version: int | None = None,
        page_size: int | None = 100,
    ) -> Iterator[DatasetRow]:
        """Every row of a version (or of one split), in split order."""

        def fetch(token: str | None) -> RowPage:
            return self.rows(dataset_id, split=split, version=version, page_size=page_size, page_token=token)

        for page in pages(fetch):
            yield from page.items

    def sample(
        self,
        dataset_id: str,
        *,
        n: int | None = None,
        split: str | None = None,
        seed: int | None = None,
        version: int | None = None,
    ) -> DatasetSample:
        """A deterministic sample: the same seed gives the same rows."""
        params = clean({"n": n, "split": split, "seed": seed, "version": version})
        reply = self._http.request("GET", f"/datasets/{segment(dataset_id)}/sample", params=params)
        return parse(DatasetSample, reply.body)

    def delete(self, dataset_id: str) -> None:
        """Remove the dataset and every file of it (admin)."""
        self._http.request("DELETE", f"/datasets/{segment(dataset_id)}")
