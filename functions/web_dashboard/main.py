"""GET /dashboard/{path=**} — the web dashboard's page shell and static assets."""

from pathlib import Path

import functions_framework
from flask import Request, Response

from promptopt.dashboard.serve import respond

STATIC = Path(__file__).resolve().parent / "static"


@functions_framework.http
def handle(request: Request) -> Response:
    return respond(request, STATIC)
