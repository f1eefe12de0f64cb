"""Dataset schemas: a dataset is a name, a column mapping and a chain of immutable versions.

A version is created by the API (signed upload URL or inline content) or by a file dropped into
the bucket; the ingest step moves it from `pending` through `processing` to `ready` or `failed`.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from promptopt.datasets.files.models import BadRow, BadRowPolicy, ColumnMapping, Format
from promptopt.datasets.files.splits import Split, SplitProportions
from promptopt.datasets.files.stats import DatasetStats
from promptopt.http.models import MAX_VERSION, PageQuery, RequestModel, ResponseModel
from promptopt.store.sorting import SORT_DESCRIPTION, Sort

# Inline content travels inside the JSON body; larger files go through the signed URL.
MAX_INLINE_BYTES = 5 * 1024 * 1024
# The JSON body around inline content: base64 grows it by a third, plus the other fields.
MAX_CREATE_BODY_BYTES = 7 * 1024 * 1024 + 64 * 1024
DEFAULT_UPLOAD_MAX_BYTES = 200 * 1024 * 1024
MAX_UPLOAD_BYTES = 5 * 1024**4  # Cloud Storage's largest object

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Description = Annotated[str, StringConstraints(max_length=2000)]
# pending: waiting for the file (signed URL) or for ingestion to start; ready and failed are final.
VersionStatus = Literal["pending", "processing", "ready", "failed"]
Origin = Literal["signed_url", "inline", "bucket_drop"]


class _Content(RequestModel):
    """Inline file content: text (UTF-8 as sent) or base64 bytes (any encoding); at most one."""

    content: str | None = Field(None, description="the whole file as text (at most 5 MB)")
    content_base64: str | None = Field(None, description="the whole file, base64-encoded (at most 5 MB)")
    upload_max_bytes: int | None = Field(
        None,
        ge=1,
        le=MAX_UPLOAD_BYTES,
        description="with a signed URL: the largest file the URL accepts (default 200 MiB)",
    )

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        if self.content is not None and self.content_base64 is not None:
            raise ValueError("give content or content_base64, not both")
        if self.upload_max_bytes is not None and self.inline_bytes() is not None:
            raise ValueError("upload_max_bytes applies to signed-URL uploads, not inline content")
        data = self.inline_bytes()
        if data is not None and len(data) > MAX_INLINE_BYTES:
            raise ValueError(
                f"inline content is above {MAX_INLINE_BYTES} bytes; upload through the signed URL"
            )
        return self

    def inline_bytes(self) -> bytes | None:
        """The inline file as bytes, or None when the caller will use the signed URL."""
        if self.content is not None:
            return self.content.encode("utf-8")
        if self.content_base64 is not None:
            try:
                return base64.b64decode(self.content_base64, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("content_base64 is not valid base64") from None
        return None


class DatasetCreate(_Content):
    """Body of POST /api/v1/datasets: the dataset and its version 1."""

    name: Name
    format: Format
    mapping: ColumnMapping
    description: Description = ""
    splits: SplitProportions = Field(default_factory=SplitProportions)
    split_seed: int = Field(0, ge=0, le=2**31 - 1, description="changing it reshuffles the splits")
    bad_row_policy: BadRowPolicy = "reject_file"
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)


class DatasetVersionCreate(_Content):
    """Body of POST /api/v1/datasets/{dataset_id}/versions: a new file for an existing dataset."""


class UploadTarget(ResponseModel):
    """Where and how to PUT the file: send exactly these headers, before `expires_at`."""

    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_at: datetime
    max_bytes: int
    object: str = Field(description="gs:// path the file will have")


class VersionFailure(ResponseModel):
    """Why a version failed, in words a person can act on."""

    code: str
    reason: str


class DatasetVersion(ResponseModel):
    """One version of a dataset; immutable once ready or failed."""

    dataset_id: str
    version: int
    status: VersionStatus
    origin: Origin
    format: Format
    source: str = Field(description="gs:// path of the uploaded file")
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None = None
    bytes: int | None = None
    rows_ok: int | None = None
    rows_bad: int | None = None
    bad_rows: list[BadRow] = Field(default_factory=list, description="the first bad rows, in file order")
    failure: VersionFailure | None = None
    stats: DatasetStats | None = None


class Dataset(ResponseModel):
    """A dataset with its newest versions (newest first)."""

    dataset_id: str
    name: str
    description: str
    format: Format
    mapping: ColumnMapping
    splits: SplitProportions
    split_seed: int
    bad_row_policy: BadRowPolicy
    max_bad_fraction: float
    created_at: datetime
    updated_at: datetime
    created_by: str
    latest_version: int | None = Field(None, description="the newest ready version")
    version_count: int
    versions: list[DatasetVersion] = Field(default_factory=list)


class DatasetCreated(ResponseModel):
    """Response of the create calls: the dataset, the new version, and where to upload."""

    dataset: Dataset
    version: DatasetVersion
    upload: UploadTarget | None = Field(None, description="absent when the content was sent inline")


class DatasetPage(ResponseModel):
    """GET /api/v1/datasets."""

    items: list[Dataset]
    next_page_token: str | None = None


class DatasetListQuery(PageQuery):
    """GET /api/v1/datasets: newest first unless sorted otherwise, optionally by name."""

    name: Name | None = None
    sort: Sort = Field("-created", description=SORT_DESCRIPTION)


class DatasetGetQuery(RequestModel):
    """GET /api/v1/datasets/{dataset_id}."""

    versions: int = Field(20, ge=0, le=100, description="how many of the newest versions to include")


class DatasetRow(ResponseModel):
    """One ingested row."""

    row: int = Field(description="0-based position among the version's good rows")
    line: int = Field(description="1-based line of the source file where the row starts")
    split: Split
    inputs: dict[str, str]
    reference: str | None


class SampleQuery(RequestModel):
    """GET /api/v1/datasets/{dataset_id}/sample: the same seed gives the same rows."""

    n: int = Field(10, ge=1, le=1000)
    split: Split | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="default: the newest ready version")


class DatasetSample(ResponseModel):
    """A deterministic sample of one version."""

    dataset_id: str
    version: int
    split: Split | None
    seed: int
    rows: list[DatasetRow]


class RowsQuery(PageQuery):
    """GET /api/v1/datasets/{dataset_id}/rows: rows in split order (train, validation, test)."""

    split: Split | None = None
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="default: the newest ready version")


class RowPage(ResponseModel):
    """One page of rows."""

    items: list[DatasetRow]
    next_page_token: str | None = None
    dataset_id: str
    version: int
