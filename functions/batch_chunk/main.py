"""Cloud Tasks target: run one chunk of a batch job (200 done, 503 retry later)."""

import functions_framework
from flask import Request, Response

from promptopt.batch import delivery


@functions_framework.http
def handle(request: Request) -> Response:
    return delivery.handle(request)
