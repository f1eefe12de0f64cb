"""Model calls behind one interface: `provider("gemini:gemini-2.5-flash").complete(request)`.

`provider(...).embed(texts)` embeds texts (the provider's default embedding model unless one is named).

Provider SDKs are imported only when a provider of that kind is first used (cold start).
"""

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
