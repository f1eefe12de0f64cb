"""Pub/Sub (batch-completed): evaluate the finished job once, however often the message arrives."""

import functions_framework
from cloudevents.http import CloudEvent

from promptopt import logs
from promptopt.batch import evaluation_step


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    # No blanket except: an exception (EvaluationInProgress included) makes Pub/Sub redeliver.
    logs.configure()
    logs.bind(function="batch_score", event=str(event["id"]))
    try:
        evaluation_step.handle_event(event.data)
    finally:
        logs.clear()
