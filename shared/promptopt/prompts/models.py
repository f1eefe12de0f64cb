"""Prompt schemas: a prompt is a chain of immutable versions with movable labels.

The field types and limits they share with other resources' requests are in promptopt.prompts.fields.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from promptopt.http.models import MAX_VERSION, PageQuery, RequestModel, ResponseModel
from promptopt.prompts.fields import (
    Description,
    Label,
    Metadata,
    MetadataValue,
    Name,
    SystemPrompt,
    Tags,
    Template,
)
from promptopt.store.sorting import SORT_DESCRIPTION, Sort


class PromptCreate(RequestModel):
    """Body of POST /api/v1/prompts."""

    name: Name | None = None
    system_prompt: SystemPrompt = ""
    output_prompt: Template = Field(description="template with {placeholders}, e.g. 'Q: {input}'")
    metadata: Metadata = Field(default_factory=dict)
    description: Description = Field("", description="what the prompt is for (not versioned)")
    tags: Tags = Field(default_factory=list, description="short lowercase words (not versioned)")


class PromptUpdate(RequestModel):
    """Body of PUT /api/v1/prompts/{prompt_id}: fields left out are kept from the base version."""

    name: Name | None = None
    system_prompt: SystemPrompt | None = None
    output_prompt: Template | None = None
    metadata: Metadata | None = None
    message: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        None, description="why this version exists (shown in the lineage)"
    )

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        if all(v is None for v in (self.name, self.system_prompt, self.output_prompt, self.metadata)):
            raise ValueError("give at least one of name, system_prompt, output_prompt, metadata")
        return self


class PromptPatch(RequestModel):
    """Body of PATCH /api/v1/prompts/{prompt_id}: the prompt's own fields; no version is created.

    A version's texts and metadata are immutable (change them with PUT, which makes a version);
    the name, description and tags belong to the prompt and change in place.
    """

    name: Name | None = None
    description: Description | None = None
    tags: Tags | None = Field(None, description="short lowercase words, e.g. support, nightly")

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        if all(v is None for v in (self.name, self.description, self.tags)):
            raise ValueError("give at least one of name, description, tags")
        return self


class LabelSet(RequestModel):
    """Body of PUT /api/v1/prompts/{prompt_id}/labels/{label}: point the label at a version."""

    version: int = Field(ge=1, le=MAX_VERSION)


class PromptGetQuery(RequestModel):
    """GET /api/v1/prompts/{prompt_id}: the latest version, or one by number or label."""

    version: int | None = Field(None, ge=1, le=MAX_VERSION)
    label: Label | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> Self:
        if self.version is not None and self.label is not None:
            raise ValueError("give version or label, not both")
        return self


class PromptListQuery(PageQuery):
    """GET /api/v1/prompts: newest first unless sorted otherwise, optionally filtered."""

    name: Name | None = None
    label: Label | None = None
    sort: Sort = Field("-created", description=SORT_DESCRIPTION)
    include_archived: bool = Field(False, description="list archived prompts too")


class VersionsQuery(PageQuery):
    """GET /api/v1/prompts/{prompt_id}/versions: newest version first."""

    source: Literal["user", "optimizer"] | None = Field(
        None, description="only versions people wrote, or only those an optimizer proposed"
    )


class Provenance(ResponseModel):
    """Where a version came from: a person's edit or an optimizer step."""

    source: Literal["user", "optimizer"] = "user"
    message: str | None = None
    details: dict[str, Any] | None = None


class PromptVersion(ResponseModel):
    """One immutable version of a prompt."""

    prompt_id: str
    version: int
    version_id: str = Field(description="<prompt_id>@<version>")
    parent_id: str | None = Field(description="version_id this one was based on; null for version 1")
    name: str | None = Field(description="the prompt's current name (PATCH renames it in place)")
    system_prompt: str
    output_prompt: str
    variables: list[str] = Field(description="placeholders of output_prompt")
    metadata: dict[str, MetadataValue]
    labels: list[str] = Field(description="labels pointing at this version now")
    provenance: Provenance
    description: str = Field("", description="the prompt's description (not versioned)")
    tags: list[str] = Field(default_factory=list, description="the prompt's tags (not versioned)")
    archived: bool = Field(False, description="the prompt is archived (hidden from listings)")
    created_at: datetime
    created_by: str


class PromptSummary(ResponseModel):
    """A prompt in a listing."""

    prompt_id: str
    name: str | None
    latest_version: int
    labels: dict[str, int]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    archived: bool = False
    created_at: datetime
    updated_at: datetime
    created_by: str


class PromptPage(ResponseModel):
    """A page of prompts."""

    items: list[PromptSummary]
    next_page_token: str | None = None


class VersionPage(ResponseModel):
    """A page of a prompt's versions, newest first, with the current labels."""

    items: list[PromptVersion]
    next_page_token: str | None = None
    labels: dict[str, int]


class LabelResult(ResponseModel):
    """The labels of a prompt after a change."""

    prompt_id: str
    labels: dict[str, int]
