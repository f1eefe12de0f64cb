"""The simulator's structured answers: any response_schema shape is an answer or a model error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from promptopt.llm.sim.provider import SimProvider
from promptopt.llm.types import CompletionRequest, ModelRequestError


def _complete(schema: Any, prompt: str = "What is 2 + 3?") -> str:
    return SimProvider("t").complete(CompletionRequest(user_prompt=prompt, response_schema=schema)).text


def test_well_formed_schemas_are_filled() -> None:
    out = json.loads(
        _complete(
            {
                "type": "object",
                "properties": {
                    "answer": {"type": ["integer", "null"]},
                    "steps": {"type": "array", "items": {"type": "string"}},
                    "tags": {"type": "array", "items": [{"type": "boolean"}]},
                    "kind": {"enum": ["sum", "product"]},
                    "any": True,
                },
            }
        )
    )
    assert set(out) == {"answer", "steps", "tags", "kind", "any"}
    assert out["kind"] == "sum"
    assert out["tags"] == [True]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": 5},
        {"type": "object", "properties": ["a"]},
        {"type": "object", "properties": {"a": {"type": "array", "items": 5}}},
        {"type": "object", "properties": {"a": 5}},
        {"type": 7},
        {"enum": "abc"},
        {"type": "object", "properties": {"a": {"enum": []}}},
    ],
)
def test_malformed_schemas_are_a_rejected_request_not_a_crash(schema: dict[str, Any]) -> None:
    with pytest.raises(ModelRequestError):
        _complete(schema)


def test_deep_schemas_are_a_rejected_request() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        node = {"type": "object", "properties": {"a": node}}
    with pytest.raises(ModelRequestError):
        _complete(node)


def test_non_finite_numbers_never_reach_the_answer() -> None:
    out = json.loads(_complete({"type": "object", "properties": {"n": {"type": "number"}}}, prompt="inf"))
    assert isinstance(out["n"], float)


def test_a_grading_schema_with_odd_bounds_falls_back_to_the_prompt_scale() -> None:
    prompt = "<reference>a</reference>\n<response>a</response>\nscore from 1 to 5"
    for schema in ({"properties": ["score"]}, {"properties": {"score": {"minimum": "0", "maximum": 9}}}):
        verdict = json.loads(_complete(schema, prompt=prompt))
        assert verdict["score"] == 5
