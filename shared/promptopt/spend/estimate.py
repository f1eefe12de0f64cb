"""Upper bounds of what work may cost, for admission against the spending cap.

A call's input is counted at 3 characters per token (as the experiment estimate counts it) and its
output at the request's max_tokens, or DEFAULT_OUTPUT_TOKENS when it sets none; an embedding has
no output. Simulated models and models without a price cost nothing.
"""

from __future__ import annotations

from promptopt.llm import pricing
from promptopt.llm.types import Usage

CHARS_PER_TOKEN = 3
DEFAULT_OUTPUT_TOKENS = 2048
DEFAULT_INPUT_CHARS = 4000  # a dataset row's prompt when the request does not show it
MAX_CHARS_PER_TOKEN = 8  # the other way round: a generous bound on the characters of an answer's tokens


def call_upper_usd(model: str, input_chars: int, max_output_tokens: int | None) -> float:
    """The most one call of `model` may cost."""
    output = max_output_tokens or DEFAULT_OUTPUT_TOKENS
    usage = Usage(
        input_tokens=-(-input_chars // CHARS_PER_TOKEN), output_tokens=output, input_characters=input_chars
    )
    return pricing.cost(model, usage)


def embed_upper_usd(model: str, input_chars: int) -> float:
    """The most embedding `input_chars` characters with `model` may cost (input only)."""
    usage = Usage(input_tokens=-(-input_chars // CHARS_PER_TOKEN), input_characters=input_chars)
    return pricing.cost(model, usage)
