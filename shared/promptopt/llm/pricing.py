"""Price table (USD per 1M tokens) and the cost of one call.

Defaults are Vertex AI list prices for text, standard (online) tier, prompts <= 200k tokens,
as recorded from cloud.google.com/vertex-ai/generative-ai/pricing in 2025-06. Checked again on
PRICES_CHECKED (2026-12-02) against the stored copies of the providers' published lists available
to the project: transcriptions of Google's Gemini API price list agree on gemini-2.5-flash
($0.30 / $2.50) and gemini-2.5-pro ($1.25 / $10.00 up to 200k-token prompts); Google's own Vertex
page was not among them, and Gemini 2.0 models are reported retired from 2026-06-01, so
gemini-2.0-flash stays only to price old jobs. Prices change, so treat them as configurable
defaults: `PROMPTOPT_PRICES` (JSON) overrides or adds entries, e.g.
`{"gemini:gemini-2.5-flash": {"input": 0.3, "output": 2.5}, "openai:gpt-4o-mini": {...}}`.
Simulated (`sim:*`) models and unconfigured `openai:*` models cost 0. Output prices include
thinking tokens, which Gemini bills as output.

Embedding models bill input only. Vertex's `text-embedding-*` models bill input *characters*
(entries with `"unit": "character"`, priced per 1M characters); `gemini-embedding-*` bills tokens.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Literal, NamedTuple

from promptopt.llm.types import Usage

log = logging.getLogger(__name__)

PRICES_ENV = "PROMPTOPT_PRICES"
PRICES_CHECKED = "2026-12-02"  # when DEFAULT_PRICES were last checked against the published lists


class Price(NamedTuple):
    """USD per one million input and output units (tokens, or input characters)."""

    input_per_m: float
    output_per_m: float
    unit: Literal["token", "character"] = "token"


DEFAULT_PRICES: dict[str, Price] = {
    "gemini:gemini-2.5-pro": Price(1.25, 10.00),
    "gemini:gemini-2.5-flash": Price(0.30, 2.50),
    "gemini:gemini-2.0-flash": Price(0.15, 0.60),
    # Embeddings (online): $0.15 per 1M input tokens; $0.000025 per 1,000 input characters.
    "gemini:gemini-embedding-001": Price(0.15, 0.0),
    "gemini:text-embedding-005": Price(0.025, 0.0, unit="character"),
}


@functools.lru_cache(maxsize=1)
def price_table() -> dict[str, Price]:
    """Defaults merged with `PROMPTOPT_PRICES`, read once per process (`reset` for tests)."""
    table = dict(DEFAULT_PRICES)
    raw = os.environ.get(PRICES_ENV, "").strip()
    if raw:
        try:
            overrides = json.loads(raw)
            for model, entry in overrides.items():
                unit = entry.get("unit", "token")
                if unit not in ("token", "character"):
                    raise ValueError(f"unit of {model} must be token or character, got {unit!r}")
                table[model] = Price(float(entry["input"]), float(entry.get("output", 0.0)), unit)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(
                f"{PRICES_ENV} must be JSON like {{'<model id>': {{'input': 0.3, 'output': 2.5}}}}: {exc}"
            ) from None
    return table


def price(model: str) -> Price | None:
    """The price of a model id; versioned Gemini names fall back to their family.

    `gemini:gemini-2.5-flash-001` is priced as `gemini:gemini-2.5-flash` (longest matching prefix).
    """
    table = price_table()
    if model in table:
        return table[model]
    if model.startswith("gemini:"):
        matches = [key for key in table if model.startswith(key + "-")]
        if matches:
            return table[max(matches, key=len)]
    return None


def cost(model: str, usage: Usage) -> float:
    """USD cost of `usage` on `model`; 0.0 for sim, unconfigured openai and unknown models."""
    entry = price(model)
    if entry is None:
        if not model.startswith(("sim:", "openai:")):
            log.warning("no price configured for %s; counting its cost as 0", model)
        return 0.0
    billed_input = usage.input_characters if entry.unit == "character" else usage.input_tokens
    return (billed_input * entry.input_per_m + usage.output_tokens * entry.output_per_m) / 1_000_000


def reset() -> None:
    """Forget the cached price table (tests change PROMPTOPT_PRICES)."""
    price_table.cache_clear()
