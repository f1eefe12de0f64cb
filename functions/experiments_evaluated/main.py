"""Pub/Sub (evaluation-completed): a job a run owns was scored; advance that run."""

import functions_framework
from cloudevents.http import CloudEvent

from promptopt.experiments import steps
from promptopt.http import serve_event


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    serve_event(
        event, steps.on_evaluation, model=steps.EvaluationCompleted, source=__file__, on_give_up=steps.give_up
    )
