"""Inference: render a prompt and call a model (`complete`), errors mapped to API errors.

`promptopt.inference.complete` is imported by the endpoint; provider SDKs load only when a model
of their kind is called (google-genai for `gemini:*`, httpx for `openai:*`).
"""

from promptopt.inference.errors import (
    MissingVariables,
    ModelBadResponse,
    ModelBlocked,
    ModelBusy,
    ModelNotConfigured,
    ModelRejectedRequest,
    UnknownModel,
)

__all__ = [
    "MissingVariables",
    "ModelBadResponse",
    "ModelBlocked",
    "ModelBusy",
    "ModelNotConfigured",
    "ModelRejectedRequest",
    "UnknownModel",
]
