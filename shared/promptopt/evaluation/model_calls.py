"""What model-backed metrics share: their result type, the model they use, a deadline, a pool.

Model-backed metrics (embedding_similarity, llm_judge) score all rows at once, since one
embedding request covers many texts and judge calls run in parallel. Provider failures are
raised as `ModelError`s (the service maps them to API errors); only a row whose own answer is
unusable becomes a per-row error.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from promptopt.evaluation.errors import MetricError
from promptopt.llm.registry import ModelId, default_model, parse_model_id
from promptopt.llm.types import RetryableModelError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_TIMEOUT_S = 300.0  # library callers without a deadline still get a bound
MAX_CALL_TIMEOUT_S = 60.0


class MetricDeadlineError(RetryableModelError):
    """The metric's model calls did not finish before the request's deadline."""


@dataclass(frozen=True)
class ModelUsage:
    """What a model-backed metric's calls used, summed over its requests."""

    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            model=self.model,
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class Meter:
    """What one evaluation's model calls used, per model, added as each call returns.

    The metrics' own `ModelUsage` is only known once a metric finishes; the meter also holds
    the calls of a metric that failed part-way, so what was paid for is recorded either way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_model: dict[str, ModelUsage] = {}

    def add(self, usage: ModelUsage) -> None:
        """Count one call's (or one batch of calls') usage."""
        with self._lock:
            found = self.by_model.get(usage.model)
            self.by_model[usage.model] = usage if found is None else found + usage


_meter: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("evaluation_meter", default=None)


@contextmanager
def metering() -> Iterator[Meter]:
    """A meter for the model calls made inside the block (worker threads included)."""
    meter = Meter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def charge(usage: ModelUsage) -> None:
    """Add a finished model call's usage to the current evaluation's meter, if one is running."""
    meter = _meter.get()
    if meter is not None:
        meter.add(usage)


@dataclass(frozen=True)
class ModelScores:
    """Per-row scores of a model-backed metric, with per-row errors, reasons and the usage.

    A row in `errors` scored 0.0 because the model's answer for it could not be used (an
    unparseable or blocked judge answer); it still counts in the aggregate, so a judge that
    cannot grade never raises the mean.
    """

    scores: list[float]
    usage: ModelUsage
    errors: dict[int, str] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)


class ModelMetricFn(Protocol):
    """Scores every row of a model-backed metric."""

    def __call__(
        self,
        predictions: Sequence[str],
        references: Sequence[str],
        params: Mapping[str, Any],
        *,
        inputs: Sequence[str] | None,
        deadline: Deadline,
    ) -> ModelScores:
        """Score all rows; raises MetricError for bad params, ModelError for provider failures."""
        ...


class UpperCostFn(Protocol):
    """The most a model-backed metric's calls over these rows may cost, in USD."""

    def __call__(
        self,
        predictions: Sequence[str],
        references: Sequence[str],
        params: Mapping[str, Any],
        *,
        inputs: Sequence[str] | None,
    ) -> float:
        """An upper bound (spend.estimate's conventions); raises MetricError for bad params."""
        ...


@dataclass(frozen=True)
class ModelMetric:
    """A metric that calls a model; `params` lists the parameters it accepts."""

    name: str
    run: ModelMetricFn
    description: str
    params: frozenset[str]
    upper_usd: UpperCostFn


class Deadline:
    """An absolute monotonic deadline for all of one evaluation's model calls."""

    def __init__(self, seconds: float | None) -> None:
        self.at = time.monotonic() + (DEFAULT_TIMEOUT_S if seconds is None else seconds)

    def remaining(self) -> float:
        """Seconds left (may be negative)."""
        return self.at - time.monotonic()

    def call_timeout(self) -> float:
        """A per-call timeout: what is left, at most MAX_CALL_TIMEOUT_S; raises once it has passed."""
        left = self.remaining()
        if left <= 0:
            raise MetricDeadlineError("the evaluation deadline passed before every model call was made")
        return min(MAX_CALL_TIMEOUT_S, left)


def metric_model(params: Mapping[str, Any]) -> tuple[ModelId, bool]:
    """The model id a metric's `params["model"]` names (else the default) and whether it was named.

    Raises `ModelConfigError` for a malformed id (the service answers 400 unknown_model).
    """
    named = params.get("model")
    if named is not None and not isinstance(named, str):
        raise MetricError("params.model must be a model id string, e.g. gemini:gemini-2.5-flash")
    return parse_model_id(named or default_model()), named is not None


def run_parallel(
    fn: Callable[[T], R], items: Sequence[T], *, deadline: Deadline, concurrency: int
) -> list[R]:
    """`[fn(item) for item in items]` on up to `concurrency` threads, bounded by `deadline`.

    The first exception raised by `fn` is re-raised; past the deadline MetricDeadlineError is
    raised and unfinished calls are abandoned (not awaited), as the request must answer in time.
    """
    if not items:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(items))), thread_name_prefix="metric")
    try:
        # Each call runs in a copy of this context, so workers log with the request's trace.
        futures: list[Future[R]] = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        done, pending = wait(futures, timeout=max(0.0, deadline.remaining()), return_when=FIRST_EXCEPTION)
        for future in futures:  # the first failure in row order, not in time
            error = future.exception() if future in done else None
            if error is not None:
                raise error
        if pending:
            raise MetricDeadlineError(
                f"{len(pending)} of {len(items)} model calls had not finished by the evaluation deadline"
            )
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def check_params(metric: str, params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Refuse unknown params: a misspelt `model` must not silently fall back to a paid default."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise MetricError(
            f"{metric} does not take params {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}"
        )


def number_param(params: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    """A finite number within [low, high] from params, or None when absent."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetricError(f"params.{name} must be a number")
    if not low <= value <= high:
        raise MetricError(f"params.{name} must be within [{low:g}, {high:g}], got {value}")
    return float(value)
