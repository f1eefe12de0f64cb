"""The field types of prompt requests (templates, labels, metadata, tags) and their limits.

Apart from promptopt.prompts.models so that the request models of other resources (a batch job's or
an experiment's prompt, named or inline) use them without building every prompt schema (cold start).
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from promptopt.json_values import check_json_value
from promptopt.prompts.names import LABEL_PATTERN
from promptopt.prompts.templates import TemplateError, placeholders

MAX_PROMPT_CHARS = 50_000
MAX_METADATA_BYTES = 16_384
MAX_METADATA_KEYS = 50
MAX_DESCRIPTION_CHARS = 2_000
MAX_TAGS = 20

Label = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
MetadataValue = str | int | float | bool | None


def _check_template(value: str) -> str:
    try:
        names = placeholders(value)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    if not names:
        raise ValueError("output_prompt needs at least one placeholder, e.g. {input}")
    return value


Template = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS), AfterValidator(_check_template)
]
SystemPrompt = Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS)]


def _check_metadata(value: dict[str, MetadataValue] | None) -> dict[str, MetadataValue] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata holds at most {MAX_METADATA_KEYS} keys")
    for key in value:
        if not 1 <= len(key) <= 64 or key.startswith("__"):
            raise ValueError("metadata keys must be 1-64 characters and not start with __")
    check_json_value(value, what="metadata", max_depth=1)
    if len(json.dumps(value).encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
    return value


Metadata = Annotated[dict[str, MetadataValue], AfterValidator(_check_metadata)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_CHARS)]
Tag = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]


def _check_tags(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("tags must be distinct")
    return value


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_check_tags)]
