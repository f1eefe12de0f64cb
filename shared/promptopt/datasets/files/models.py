"""What an ingest is told (column mapping, limits) and what it reports back (bad rows, outcome).

Schemas are built on first use (defer_build): the API's functions import these with the dataset
models and most never validate one.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Format = Literal["csv", "jsonl"]
BadRowPolicy = Literal["reject_file", "skip_bad_rows"]


class ColumnMapping(BaseModel):
    """Which source columns (CSV) or fields (JSONL) feed the template and which holds the answer."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    inputs: list[str] = Field(
        min_length=1, description="template variables, each the name of a source column/field"
    )
    reference: str | None = Field(None, description="the expected-output column/field, if any")

    @field_validator("inputs")
    @classmethod
    def _distinct_names(cls, names: list[str]) -> list[str]:
        stripped = [name.strip() for name in names]
        if any(not name for name in stripped):
            raise ValueError("input names must not be empty")
        if len(set(stripped)) != len(stripped):
            raise ValueError("input names must be distinct")
        return stripped


class IngestLimits(BaseModel):
    """Caps that keep one ingest bounded in time and memory; the defaults suit a 1 GiB function."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    max_rows: int = Field(100_000, ge=1, description="data rows (good + bad) before the file fails")
    max_bytes: int = Field(200 * 1024 * 1024, ge=1, description="file size before the file fails")
    max_field_chars: int = Field(100_000, ge=1, description="characters in one mapped value")
    max_row_bytes: int = Field(1024 * 1024, ge=1, description="UTF-8 bytes of one row's source text")
    max_bad_rows_reported: int = Field(20, ge=0, description="bad rows kept in the outcome")
    bad_row_policy: BadRowPolicy = "reject_file"
    max_bad_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="with skip_bad_rows: the file fails above this bad fraction"
    )


class BadRow(BaseModel):
    """One row that was not ingested, with the reason a person can act on."""

    model_config = ConfigDict(defer_build=True)

    line: int = Field(description="1-based line of the file where the row starts")
    reason: str


class ParseOutcome(BaseModel):
    """The summary of one parse: final once the row iterator is exhausted.

    Rows yielded before `failed` became true must be discarded by the caller.
    """

    model_config = ConfigDict(defer_build=True)

    rows_ok: int = 0
    rows_bad: int = 0
    bad_rows: list[BadRow] = Field(default_factory=list, description="the first bad rows, in file order")
    failed: bool = False
    failure_reason: str | None = None
    bytes_read: int = 0
