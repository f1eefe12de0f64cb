"""GET /api/v1/health/ready — each backing service's reachability and latency (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import readiness
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _ready, source=__file__)


def _ready(call: Call) -> Reply:
    report = readiness.readiness()
    return Reply(report, status=200 if report["status"] == "ready" else 503)
