"""One completion: resolve the prompt, render it, call the model, map failures to API errors.

- The prompt is a stored version (this tenant's, through `prompts.get_prompt_view`, so another
  tenant's id is a 404) or inline. Only `output_prompt` is a template; the system prompt is sent
  as written.
- The model id defaults to `PROMPTOPT_DEFAULT_MODEL` (`sim:default` when unset, so an
  unconfigured deployment never spends money by default and says `simulated: true`).
- The whole call runs under a deadline shorter than the function's own timeout, so a slow or
  retrying provider ends as a 503 `model_busy` problem rather than a killed instance.
- Provider SDKs are imported by the registry only when a model of their kind is called; the
  Firestore client only when a stored prompt is named.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from promptopt.errors import InvalidRequest
from promptopt.inference.errors import RETRY_AFTER_S, MissingVariables, ModelBusy, UnknownModel, api_error
from promptopt.inference.models import CompletionCreate
from promptopt.llm import registry
from promptopt.llm.errors import classify
from promptopt.llm.registry import default_model
from promptopt.llm.types import Completion, CompletionRequest, ModelConfigError, deadline_for
from promptopt.prompts import source
from promptopt.prompts.templates import TemplateError, placeholders, render

if TYPE_CHECKING:
    from promptopt.auth import Principal
    from promptopt.llm.registry import ModelId

__all__ = ["complete", "deadline_for", "default_model"]

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 25.0
_MAX_WORKERS = 64  # above any endpoint concurrency: calls never queue behind each other

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def complete(
    *, principal: Principal, body: CompletionCreate, deadline_s: float = DEFAULT_DEADLINE_S
) -> dict[str, Any]:
    """Render the request's prompt and call its model once, within `deadline_s` seconds.

    Answers CompletionResult's fields as a plain dict (`result_dict`).
    """
    started = time.monotonic()
    model = _parse_model(body.model or default_model())
    system_prompt, template, ref = _resolve_prompt(principal, body)
    user_prompt = _render(template, body.template_variables())
    remaining = deadline_s - (time.monotonic() - started)
    if remaining <= 0:
        raise ModelBusy("the deadline passed before the model was called; retry", retry_after_s=RETRY_AFTER_S)
    request = CompletionRequest(
        user_prompt=user_prompt,
        system_prompt=system_prompt,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        response_schema=body.response_schema,
        timeout_s=remaining,
    )
    _admit_spend(principal.tenant, str(model), system_prompt + user_prompt, body.max_tokens)
    completion = _call_mapped(model, request, remaining)
    _record_spend(principal.tenant, completion)
    result = result_dict(completion, ref, simulated=model.provider == "sim")
    log.info(
        "model call %s",
        model,
        extra={
            "fields": {
                "model": str(model),
                "input_tokens": completion.usage.input_tokens,
                "output_tokens": completion.usage.output_tokens,
                "cost_usd": result["cost_usd"],
                "latency_ms": result["latency_ms"],
                "finish_reason": result["finish_reason"],
                "simulated": result["simulated"],
                "prompt_id": ref["prompt_id"] if ref else None,
            }
        },
    )
    return result


def result_dict(completion: Completion, ref: dict[str, Any] | None, *, simulated: bool) -> dict[str, Any]:
    """The answer: CompletionResult's fields as a plain dict.

    The function builds no response schema at cold start; tests/unit/test_views.py ties the dict
    to the model.
    """
    return {
        "text": completion.text,
        "model": completion.model,
        "usage": {
            "input_tokens": completion.usage.input_tokens,
            "output_tokens": completion.usage.output_tokens,
        },
        "cost_usd": round(completion.cost_usd, 8),
        "latency_ms": round(completion.latency_s * 1000),
        "finish_reason": completion.finish_reason,
        "prompt": ref,
        "simulated": simulated,
    }


def _admit_spend(tenant: str, model: str, prompt: str, max_tokens: int | None) -> None:
    """402 when this call could pass the tenant's monthly cap (an unpriced model costs nothing)."""
    from promptopt.spend import caps, estimate

    upper = estimate.call_upper_usd(model, len(prompt), max_tokens)
    if upper > 0:
        caps.admit(tenant, upper, "this call")


def _record_spend(tenant: str, completion: Completion) -> None:
    from promptopt.spend import ledger

    ledger.record_sync(
        tenant,
        model=completion.model,
        input_tokens=completion.usage.input_tokens,
        output_tokens=completion.usage.output_tokens,
        cost_usd=completion.cost_usd,
    )


def _parse_model(model_id: str) -> ModelId:
    try:
        return registry.parse_model_id(model_id)
    except ModelConfigError as exc:
        raise UnknownModel(str(exc)) from None


def _resolve_prompt(principal: Principal, body: CompletionCreate) -> tuple[str, str, dict[str, Any] | None]:
    found = source.resolve(principal, body)
    ref = {"prompt_id": found.prompt_id, "version": found.version} if found.prompt_id else None  # PromptRef
    return found.system_prompt, found.output_prompt, ref


def _render(template: str, variables: dict[str, str]) -> str:
    try:
        missing = [name for name in placeholders(template) if name not in variables]
        if missing:
            raise MissingVariables(
                f"the prompt needs values for: {', '.join(missing)} (give them in variables)",
                missing=missing,
            )
        return render(template, variables)
    except TemplateError as exc:
        raise InvalidRequest(str(exc), code="invalid_template") from None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="model-call")
    return _pool


def _call(model: ModelId, request: CompletionRequest, timeout_s: float) -> Completion:
    """The provider's answer, or ModelBusy once the deadline passes (the call is abandoned)."""
    provider = registry.provider(str(model))
    context = contextvars.copy_context()  # the worker logs with this request's trace and labels
    future = _executor().submit(context.run, provider.complete, request)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:  # the deadline, or a provider's own bare TimeoutError: both mean "busy"
        future.cancel()
        raise ModelBusy(
            f"{model} did not answer within {timeout_s:.0f} s; retry later", retry_after_s=RETRY_AFTER_S
        ) from None


def _call_mapped(model: ModelId, request: CompletionRequest, timeout_s: float) -> Completion:
    try:
        return _call(model, request, timeout_s)
    except Exception as exc:
        failure = classify(exc, model=str(model))
        if failure is None:
            raise
        _log_failure(model, exc)
        error = api_error(failure)
        if failure.kind == "rejected":
            error.detail += "; check max_tokens, response_schema and the prompt"
        raise error from exc


def _log_failure(model: ModelId, exc: Exception) -> None:
    # The provider's message may quote the request; log only what identifies the failure.
    log.warning(
        "model call %s failed: %s",
        model,
        type(exc).__name__,
        extra={
            "fields": {
                "model": str(model),
                "error": type(exc).__name__,
                "status": getattr(exc, "status", None),
            }
        },
    )
