"""Pub/Sub (batch-completed): score the finished job once, however often the message arrives."""

import functions_framework
from cloudevents.http import CloudEvent

from promptopt.batch import evaluation_step
from promptopt.http import serve_event


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    # EvaluationInProgress (another delivery holds the lease) propagates: Pub/Sub redelivers.
    serve_event(event, evaluation_step.handle, model=evaluation_step.BatchCompleted, source=__file__)
