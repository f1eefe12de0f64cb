"""GET /api/v1/models: the model ids this deployment serves, with provider, price and default.

The list is what the registry can call here: the simulator (`sim:default`, the simulated target,
and `sim:optimizer`), every priced Gemini model, every `openai:` model given a price in
`PROMPTOPT_PRICES`, and the environment's default model whatever it is. Prices come from the price
table (promptopt.llm.pricing), with the date they were last checked.
"""

from __future__ import annotations

from promptopt.llm import pricing
from promptopt.usage.models import ModelCatalog, ModelInfo, ModelPrice

SIMULATED = ("sim:default", "sim:optimizer")


def catalog() -> ModelCatalog:
    """Every model id with its provider, price, whether it is simulated and whether it is the default."""
    from promptopt.llm.registry import default_model

    default = default_model()
    ids = list(dict.fromkeys([*SIMULATED, *sorted(pricing.price_table()), default]))
    items = []
    for model in ids:
        provider = model.split(":", 1)[0]
        entry = pricing.price(model)
        items.append(
            ModelInfo(
                model=model,
                provider=provider,
                kind="embed" if "embedding" in model else "generate",
                simulated=provider == "sim",
                default=model == default,
                price=None
                if entry is None
                else ModelPrice(
                    input_per_m=entry.input_per_m, output_per_m=entry.output_per_m, unit=entry.unit
                ),
            )
        )
    return ModelCatalog(default_model=default, prices_checked=pricing.PRICES_CHECKED, items=items)
