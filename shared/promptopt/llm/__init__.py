"""Model calls behind one interface: `provider("gemini:gemini-2.5-flash").complete(request)`.

`provider(...).embed(texts)` embeds texts (the provider's default embedding model unless one is named).

Provider SDKs are imported only when a provider of that kind is first used (cold start). The names
below are loaded on first use, so importing promptopt.llm.errors or .types (as the API's error
mapping does) does not import the registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptopt.llm.registry import ModelId, parse_model_id, provider
    from promptopt.llm.types import (
        Completion,
        CompletionRequest,
        EmbeddingResult,
        EmptyResponseError,
        MalformedResponseError,
        ModelBlockedError,
        ModelConfigError,
        ModelError,
        ModelRequestError,
        Provider,
        RetryableModelError,
        Usage,
    )

__all__ = [
    "Completion",
    "CompletionRequest",
    "EmbeddingResult",
    "EmptyResponseError",
    "MalformedResponseError",
    "ModelBlockedError",
    "ModelConfigError",
    "ModelError",
    "ModelId",
    "ModelRequestError",
    "Provider",
    "RetryableModelError",
    "Usage",
    "parse_model_id",
    "provider",
]
_REGISTRY = frozenset({"ModelId", "parse_model_id", "provider"})


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = "registry" if name in _REGISTRY else "types"
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
