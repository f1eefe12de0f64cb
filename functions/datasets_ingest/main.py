"""Storage trigger: a finalized object in the datasets bucket becomes a dataset version."""

import functions_framework
from cloudevents.http import CloudEvent

from promptopt.datasets import ingest
from promptopt.http import Delivery, serve_event


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    # Data problems end as a failed version inside the library; anything raised is an
    # infrastructure fault, and serve_event lets it propagate so Eventarc redelivers.
    serve_event(event, _ingest, model=ingest.FinalizedObject, source=__file__, on_expired=_expired)


def _ingest(obj: ingest.FinalizedObject, _delivery: Delivery) -> str:
    return ingest.handle_finalized(obj)


def _expired(obj: ingest.FinalizedObject, _delivery: Delivery) -> None:
    ingest.expire(obj)
