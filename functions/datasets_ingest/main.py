"""Storage trigger: a finalized object in the datasets bucket becomes a dataset version."""

import functions_framework
from cloudevents.http import CloudEvent

from promptopt import logs
from promptopt.datasets import ingest as dataset_ingest


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    # No blanket except: data problems end as a failed version inside the library; anything
    # raised here is an infrastructure fault, and raising makes Eventarc redeliver.
    logs.configure()
    obj = dataset_ingest.FinalizedObject.from_event(event.data)
    logs.bind(function="datasets_ingest", object=f"gs://{obj.bucket}/{obj.name}")
    try:
        dataset_ingest.handle_finalized(obj)
    finally:
        logs.clear()
