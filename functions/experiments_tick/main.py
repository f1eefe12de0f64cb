"""Cloud Scheduler (schedule-tick): start due scheduled runs and re-drive idle ones."""

import functions_framework
from cloudevents.http import CloudEvent

from promptopt.experiments import tick
from promptopt.http import serve_event


@functions_framework.cloud_event
def handle(event: CloudEvent) -> None:
    serve_event(event, tick.on_tick, model=tick.Tick, source=__file__)
