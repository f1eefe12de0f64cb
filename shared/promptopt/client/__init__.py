r"""The promptopt Python client: the whole API from code, typed with the API's own models.

    from promptopt import Client

    with Client() as client:            # PROMPTOPT_API_URL, PROMPTOPT_TOKEN or PROMPTOPT_API_KEY
        prompt = client.prompts.create(name="qa", output_prompt="Q: {input}\\nA:")
        for summary in client.prompts.iterate():
            print(summary.prompt_id, summary.latest_version)

Resources: `client.prompts`, `client.datasets`, `client.batch`, `client.experiments`; calls:
`client.complete`, `client.evaluate`, `client.gate`, `client.me`, `client.usage`, `client.models`.
Answers are the API's pydantic models (`promptopt.prompts.models.PromptVersion`, ...); errors are
typed (`promptopt.client.errors`), each with the API's machine `code`.
"""

from promptopt.client.auth import ApiKey, BearerToken, DevToken
from promptopt.client.client import Client
from promptopt.client.errors import (
    ApiError,
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    JobFailed,
    NotFound,
    PermissionDenied,
    PromptoptError,
    RateLimited,
    ServerError,
    TransportError,
    Unprocessable,
    UploadFailed,
    VersionConflict,
    WaitTimeout,
)
from promptopt.client.gate import GateError, GateResult

__all__ = [
    "ApiError",
    "ApiKey",
    "AuthenticationFailed",
    "BearerToken",
    "Client",
    "Conflict",
    "DevToken",
    "GateError",
    "GateResult",
    "InvalidRequest",
    "JobFailed",
    "NotFound",
    "PermissionDenied",
    "PromptoptError",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unprocessable",
    "UploadFailed",
    "VersionConflict",
    "WaitTimeout",
]
