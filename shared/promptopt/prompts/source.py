"""A prompt given by reference or inline: the request fields, their rule, and resolving them.

Requests that run a prompt (a single completion, a batch job) name a stored prompt (`prompt_id`,
optionally `version` or `label`; the latest version otherwise) or give one inline (`output_prompt`
and optionally `system_prompt`), never both.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from typing import TYPE_CHECKING, Annotated, NamedTuple, Self

from pydantic import Field, StringConstraints, model_validator

from promptopt.http.models import MAX_VERSION, RequestModel
from promptopt.prompts.fields import Label, SystemPrompt, Template

if TYPE_CHECKING:
    from promptopt.auth import Principal


class PromptSource(RequestModel):
    """The prompt fields of a request; subclasses add their own (and may add validators)."""

    prompt_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="a stored prompt (this tenant's); excludes system_prompt/output_prompt"
    )
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="with prompt_id: this version (default: latest)"
    )
    label: Label | None = Field(None, description="with prompt_id: the version this label points at")
    system_prompt: SystemPrompt | None = Field(None, description="inline prompt: the system instruction")
    output_prompt: Template | None = Field(
        None, description="inline prompt: a template with {placeholders}, e.g. 'Q: {input}'"
    )

    @model_validator(mode="after")
    def _one_prompt_form(self) -> Self:
        stored = self.prompt_id is not None
        inline = self.output_prompt is not None or self.system_prompt is not None
        if stored == inline:
            raise ValueError("give either prompt_id or an inline output_prompt (with optional system_prompt)")
        if inline and self.output_prompt is None:
            raise ValueError("an inline prompt needs output_prompt")
        if not stored and (self.version is not None or self.label is not None):
            raise ValueError("version and label select a stored prompt; give them only with prompt_id")
        if self.version is not None and self.label is not None:
            raise ValueError("give version or label, not both")
        return self


class ResolvedPrompt(NamedTuple):
    """The texts to run, and which stored version they came from (None: inline)."""

    system_prompt: str
    output_prompt: str
    prompt_id: str | None = None
    version: int | None = None


def resolve(principal: "Principal", source: PromptSource) -> "ResolvedPrompt":
    """The prompt's texts: inline as given, or the stored version (404s as GET /prompts/{id})."""
    if source.prompt_id is None:
        return ResolvedPrompt(source.system_prompt or "", source.output_prompt or "")
    from promptopt.prompts import service as prompts  # Firestore only when a stored prompt is named

    # The plain view, not a PromptVersion: no prompt schemas on the cold start of a job or completion.
    found = prompts.get_prompt_view(
        principal=principal, prompt_id=source.prompt_id, version=source.version, label=source.label
    )
    return ResolvedPrompt(
        found["system_prompt"], found["output_prompt"], found["prompt_id"], found["version"]
    )
