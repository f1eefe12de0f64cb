"""Cloud Tasks target: run one chunk of a batch job (200 done, 503 retry later)."""

import functions_framework
from flask import Request, Response

from promptopt.batch import delivery
from promptopt.http import serve_task


@functions_framework.http
def handle(request: Request) -> Response:
    return serve_task(request, delivery.run, model=delivery.ChunkTask, source=__file__)
