"""`Client`: the whole promptopt API from Python, typed with the API's own models."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from promptopt.client.auth import ApiKey, BearerToken, Credentials, DevToken
from promptopt.client.batch import Batch, Metric, metric_requests
from promptopt.client.datasets import Datasets
from promptopt.client.experiments import Experiments
from promptopt.client.http import ApiResponse, HttpClient
from promptopt.client.prompts import Prompts

if TYPE_CHECKING:
    import httpx

    from promptopt.client.gate import GateResult
    from promptopt.evaluation.models import EvaluateResult
    from promptopt.http.answer_models import Health
    from promptopt.inference.models import CompletionResult

DEFAULT_API_URL = "http://127.0.0.1:8080"
API_URL_ENV = "PROMPTOPT_API_URL"
TOKEN_ENV = "PROMPTOPT_TOKEN"  # noqa: S105 - the variable's name, not a secret
API_KEY_ENV = "PROMPTOPT_API_KEY"


def credentials_from(
    *, token: str | None, api_key: str | None, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials to use: `token`, else `api_key`, else PROMPTOPT_TOKEN, else PROMPTOPT_API_KEY."""
    env = os.environ if env is None else env
    if token:
        return BearerToken(token)
    if api_key:
        return ApiKey(api_key)
    if (found := env.get(TOKEN_ENV, "").strip()) != "":
        return BearerToken(found)
    if (found := env.get(API_KEY_ENV, "").strip()) != "":
        return ApiKey(found)
    return None


class Client:
    """A client of the promptopt API, configured like the CLI.

    Args:
        api_url: the API's base URL (the gateway); default PROMPTOPT_API_URL, else the local stack.
        token: a bearer token (an ID token, or a dev token); default PROMPTOPT_TOKEN.
        api_key: an API key, exchanged for a short-lived token when needed; default PROMPTOPT_API_KEY.
        credentials: any `promptopt.client.auth` credentials (e.g. `DevToken("acme", "editor")`);
            they win over `token` and `api_key`.
        timeout_s: seconds to wait for each request.
        retries: retries on connection errors, timeouts and 429/502/503/504 (POSTs keep their
            Idempotency-Key across them, so nothing is created twice).
        transport: an httpx transport for every request (the API and signed-URL uploads).

    Resources: `prompts`, `datasets`, `batch`, `experiments`; calls: `complete`, `evaluate`,
    `health`, `me`, `usage`, `models`, and `gate` (the CI check). Use it as a context manager,
    or call `close`.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        token: str | None = None,
        api_key: str | None = None,
        credentials: Credentials | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        user_agent: str = "promptopt-python",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = HttpClient(
            api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL,
            credentials=credentials or credentials_from(token=token, api_key=api_key),
            timeout_s=timeout_s,
            retries=retries,
            user_agent=user_agent,
            transport=transport,
        )
        self.prompts = Prompts(self.http)
        self.datasets = Datasets(self.http)
        self.batch = Batch(self.http)
        self.experiments = Experiments(self.http)

    @classmethod
    def dev(cls, tenant: str, role: str = "editor", **kw: Any) -> Client:
        """A client of the local stack with a token from the local dev issuer (re-minted as needed)."""
        return cls(credentials=DevToken(tenant, role), **kw)

    @property
    def api_url(self) -> str:
        """The base URL requests go to."""
        return self.http.base_url

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.api_url!r})"

    # -- single calls ---------------------------------------------------------------------------------

    def health(self) -> Health:
        """Is the API up (public)."""
        from promptopt.http.answer_models import Health

        return Health.model_validate(self.http.request("GET", "/health", authenticate=False).body)

    def complete(
        self,
        *,
        prompt_id: str | None = None,
        version: int | None = None,
        label: str | None = None,
        output_prompt: str | None = None,
        system_prompt: str | None = None,
        user_input: str | None = None,
        variables: Mapping[str, str] | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_schema: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> CompletionResult:
        """Run a stored or inline prompt once: `user_input` fills {input}, `variables` the rest."""
        from promptopt.client._base import body_of
        from promptopt.inference.models import CompletionCreate, CompletionResult

        body = body_of(
            CompletionCreate,
            {
                "prompt_id": prompt_id,
                "version": version,
                "label": label,
                "output_prompt": output_prompt,
                "system_prompt": system_prompt,
                "user_input": user_input,
                "variables": dict(variables) if variables is not None else None,
                "model": model,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "response_schema": dict(response_schema) if response_schema is not None else None,
            },
        )
        reply = self.http.post("/inference/complete", body, idempotency_key=idempotency_key)
        return CompletionResult.model_validate(reply.body)

    def evaluate(
        self,
        predictions: Sequence[str],
        references: Sequence[str | None],
        *,
        metrics: Sequence[Metric],
        inputs: Sequence[str] | None = None,
        include_rows: bool = True,
    ) -> EvaluateResult:
        """Score predictions against references (means with 95% CIs, per-row scores); stores nothing."""
        from promptopt.client._base import body_of
        from promptopt.evaluation.models import EvaluateRequest, EvaluateResult

        body = body_of(
            EvaluateRequest,
            {
                "predictions": list(predictions),
                "references": list(references),
                "metrics": metric_requests(metrics),
                "inputs": list(inputs) if inputs is not None else None,
                "include_rows": include_rows,
            },
        )
        return EvaluateResult.model_validate(self.http.post("/evaluate", body).body)

    # -- the caller and the tenant (GET /me, /usage, /models) -----------------------------------------

    def me(self) -> dict[str, Any]:
        """Who the API takes the caller to be: subject, tenant, role, credential."""
        return self._json("/me")

    def usage(self, **query: Any) -> dict[str, Any]:
        """The tenant's usage (calls, tokens, cost) as GET /usage reports it."""
        return self._json("/usage", query)

    def models(self) -> dict[str, Any]:
        """The models this deployment can call, with their prices."""
        return self._json("/models")

    def _json(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from promptopt.client.http import clean

        body = self.http.request("GET", path, params=clean(query or {})).body
        return body if isinstance(body, dict) else {"items": body}

    # -- the CI gate ------------------------------------------------------------------------------------

    def gate(self, **options: Any) -> GateResult:
        """Evaluate a candidate prompt and its baseline on the same rows and judge them.

        The options and the rule are those of `promptopt.client.gate.run_gate`.
        """
        from promptopt.client.gate import run_gate

        return run_gate(self, **options)

    # -- the escape hatch -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kw: Any) -> ApiResponse:
        """Any call under /api/v1 with this client's credentials and retries (raw JSON answer)."""
        return self.http.request(method, path, **kw)
