"""Where dataset files live in the datasets bucket, and what an object name means.

    tenants/{tenant}/datasets/{dataset_id}/v{n}/source.{csv|jsonl}   uploaded file (API)
    tenants/{tenant}/datasets/{dataset_id}/v{n}/{split}.jsonl         canonical rows per split
    tenants/{tenant}/drop/{name}.{csv|jsonl|ndjson}                   bucket drop: ingested as
                                                                      dataset `name`, a new version
                                                                      per file written

Every object of the bucket lands on the ingest trigger (Eventarc cannot filter by prefix), so
`classify` sorts each name into one of these kinds, or says why it is ignored.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from promptopt.datasets.files.models import Format  # a pydantic module; layout needs none

SPLITS = ("train", "validation", "test")
DATASET_ID_RE = re.compile(r"^ds_[0-9a-f]{20}$")
_TENANT = r"(?P<tenant>[a-z0-9][a-z0-9-]{0,62})"


@functools.cache
def _object_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The patterns `classify` sorts object names by: source, derived, dropped, drop prefix.

    Compiled on first use, not at import: only the ingest trigger classifies names, and most
    functions that import this module (for its paths) would pay the compile on their cold start.
    """
    return (
        re.compile(
            rf"^tenants/{_TENANT}/datasets/(?P<dataset>ds_[0-9a-f]{{20}})/v(?P<version>[1-9][0-9]{{0,8}})/source\.(?P<ext>csv|jsonl)$"
        ),
        re.compile(rf"^tenants/{_TENANT}/datasets/ds_[0-9a-f]{{20}}/v[0-9]+/[a-z]+\.jsonl$"),
        re.compile(rf"^tenants/{_TENANT}/drop/(?P<name>[^/]+)\.(?P<ext>csv|jsonl|ndjson)$", re.IGNORECASE),
        re.compile(rf"^tenants/{_TENANT}/drop/"),
    )


_EXT_FORMAT: dict[str, Format] = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}


def dataset_prefix(tenant: str, dataset_id: str) -> str:
    """Every object of one dataset (all versions) starts with this."""
    return f"tenants/{tenant}/datasets/{dataset_id}/"


def source_object(tenant: str, dataset_id: str, version: int, fmt: Format) -> str:
    """The object an API upload of `version` is written to."""
    return f"{dataset_prefix(tenant, dataset_id)}v{version}/source.{fmt}"


def split_object(tenant: str, dataset_id: str, version: int, split: str) -> str:
    """The canonical JSONL rows of one split of one version."""
    return f"{dataset_prefix(tenant, dataset_id)}v{version}/{split}.jsonl"


def drop_prefix(tenant: str) -> str:
    """Files copied under this prefix are ingested without the API."""
    return f"tenants/{tenant}/drop/"


class SourceUpload(NamedTuple):
    """An API upload of a version whose record already exists."""

    tenant: str
    dataset_id: str
    version: int
    format: Format


class DroppedFile(NamedTuple):
    """A file dropped into a tenant's drop prefix; `name` becomes the dataset's name."""

    tenant: str
    name: str
    format: Format


class Ignored(NamedTuple):
    """An object the ingest step does not ingest, and why (a derived file is expected, not odd)."""

    reason: str
    expected: bool = False


def classify(name: str) -> SourceUpload | DroppedFile | Ignored:
    """What the ingest step should do with the object called `name`."""
    source_re, derived_re, drop_re, drop_prefix_re = _object_patterns()
    if m := source_re.match(name):
        ext = m["ext"]
        return SourceUpload(m["tenant"], m["dataset"], int(m["version"]), _EXT_FORMAT[ext])
    if derived_re.match(name):
        return Ignored("a canonical file written by the ingest step", expected=True)
    if m := drop_re.match(name):
        dataset_name = m["name"].strip()
        if not dataset_name:
            return Ignored("the dropped file has no name before its extension")
        return DroppedFile(m["tenant"], dataset_name, _EXT_FORMAT[m["ext"].lower()])
    if drop_prefix_re.match(name):
        return Ignored(
            "files in a drop folder must be named <dataset name>.csv, .jsonl or .ndjson, directly "
            "under tenants/<tenant>/drop/"
        )
    return Ignored("the object is outside every tenant's dataset and drop prefixes (tenants/<tenant>/drop/)")
