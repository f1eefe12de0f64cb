"""The event handlers that drive runs: a step message, an owned job's evaluation, the schedule tick."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from promptopt import logs
from promptopt.experiments import engine, paths
from promptopt.http.events import Delivery

log = logging.getLogger(__name__)


class StepMessage(BaseModel):
    """`experiment-step`: advance this run."""

    model_config = ConfigDict(extra="ignore")

    tenant: str = Field(min_length=1, max_length=128)
    experiment_id: str = Field(pattern=paths.EXPERIMENT_ID_RE.pattern)
    run_id: str = Field(pattern=paths.RUN_ID_RE.pattern)


class EvaluationCompleted(BaseModel):
    """`evaluation-completed`: a job was scored; jobs a run owns name it."""

    model_config = ConfigDict(extra="ignore")

    tenant: str = Field(min_length=1, max_length=128)
    job_id: str = Field(min_length=1, max_length=64)
    status: str = ""
    experiment_id: str | None = Field(None, pattern=paths.EXPERIMENT_ID_RE.pattern)
    run_id: str | None = Field(None, pattern=paths.RUN_ID_RE.pattern)


def on_step(message: StepMessage, _delivery: Delivery) -> str:
    """Advance the run the message names (safe to deliver any number of times, in any order)."""
    logs.bind(tenant=message.tenant, experiment_id=message.experiment_id, run_id=message.run_id)
    return engine.advance(message.tenant, message.experiment_id, message.run_id)


def on_evaluation(message: EvaluationCompleted, _delivery: Delivery) -> str:
    """A run's job was scored: advance that run; jobs no run owns are not ours."""
    if message.run_id is None or message.experiment_id is None:
        return "not a run's job"
    logs.bind(tenant=message.tenant, experiment_id=message.experiment_id, run_id=message.run_id)
    return engine.advance(message.tenant, message.experiment_id, message.run_id)


def give_up(message: StepMessage | EvaluationCompleted, delivery: Delivery, error: Exception) -> None:
    """The step failed on every delivery: the run ends failed with the reason (not dead-lettered silently)."""
    if message.run_id is None or message.experiment_id is None:
        return
    try:
        run, _ = engine.load(message.tenant, message.experiment_id, message.run_id)
    except engine.RunGone:
        return
    engine.fail(
        run, f"its step failed on all {delivery.attempt} deliveries ({type(error).__name__}); see the logs"
    )
