"""GET /api/v1/health — public liveness check."""

import functions_framework
from flask import Request, Response

from promptopt.config import settings
from promptopt.http import Call, Reply, serve
from promptopt.http.answer_models import Health


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _health, source=__file__)


def _health(call: Call) -> Reply:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("promptopt")
    except PackageNotFoundError:  # deployed bundles carry the package source, not its metadata
        release = "bundled"
    return Reply(Health(version=release, environment=settings().environment))
