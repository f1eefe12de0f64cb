"""Inference schemas: one completion from a stored or inline prompt."""

# Annotations are not postponed, for cold start: see promptopt.http.models.
import json
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from promptopt.http.models import ResponseModel
from promptopt.json_values import check_json_value
from promptopt.prompts.fields import MAX_PROMPT_CHARS
from promptopt.prompts.source import PromptSource
from promptopt.user_schemas import check_user_schema

MAX_VARIABLES = 100
MAX_SCHEMA_BYTES = 32_768

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS)]


def _check_variables(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is not None and len(value) > MAX_VARIABLES:
        raise ValueError(f"variables holds at most {MAX_VARIABLES} names")
    return value


def check_response_schema(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A `response_schema` is bounded JSON, a valid JSON Schema, with local references only."""
    if value is None:
        return None
    check_json_value(value, what="response_schema")
    if len(json.dumps(value).encode()) > MAX_SCHEMA_BYTES:
        raise ValueError(f"response_schema is larger than {MAX_SCHEMA_BYTES} bytes as JSON")
    check_user_schema(value)  # UserSchemaError is a ValueError: a 400 with an errors entry
    return value


class CompletionCreate(PromptSource):
    """Body of POST /api/v1/inference/complete.

    The prompt is either stored (`prompt_id`, optionally `version` or `label`; the latest version
    otherwise) or inline (`output_prompt` and optionally `system_prompt`), never both. Only
    `output_prompt` is a template; `system_prompt` is sent as written. `user_input` fills `{input}`;
    `variables` fills any placeholder (names the template does not use are ignored). Given both,
    `user_input` is taken as `variables.input` (then `variables` may not also hold `input`).
    """

    user_input: VariableValue | None = Field(None, description="fills {input}")
    variables: Annotated[dict[VariableName, VariableValue], AfterValidator(_check_variables)] | None = Field(
        None, description="fills the template's placeholders by name"
    )
    model: Annotated[str, StringConstraints(min_length=1, max_length=160)] | None = Field(
        None,
        description="<provider>:<model>, e.g. gemini:gemini-2.5-flash, openai:gpt-4o-mini, sim:default "
        "(default: the deployment's PROMPTOPT_DEFAULT_MODEL, sim:default unless configured)",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=1, le=8192, description="cap on output tokens")
    response_schema: Annotated[dict[str, Any], AfterValidator(check_response_schema)] | None = Field(
        None, description="a JSON Schema object the answer must follow (the model answers JSON)"
    )

    @model_validator(mode="after")
    def _one_input_form(self) -> Self:
        if self.user_input is not None and self.variables is not None and "input" in self.variables:
            raise ValueError("user_input is variables.input; give one of them, not both")
        return self

    def template_variables(self) -> dict[str, str]:
        """`variables` with `user_input` as `input`."""
        merged = dict(self.variables or {})
        if self.user_input is not None:
            merged["input"] = self.user_input
        return merged


class TokenUsage(ResponseModel):
    """Tokens billed for the call."""

    input_tokens: int
    output_tokens: int


class PromptRef(ResponseModel):
    """The stored prompt version that was used."""

    prompt_id: str
    version: int


class CompletionResult(ResponseModel):
    """A model's answer to one rendered prompt."""

    text: str
    model: str = Field(description="the model id that answered")
    usage: TokenUsage
    cost_usd: float = Field(description="from the price table; 0 for simulated and unpriced models")
    latency_ms: int = Field(description="time spent in the model call")
    finish_reason: str = Field(description="as the provider reports it, e.g. STOP, MAX_TOKENS, stop")
    prompt: PromptRef | None = Field(description="the stored prompt version used; null for inline prompts")
    simulated: bool = Field(description="true for sim:* models: the text is not from a language model")
