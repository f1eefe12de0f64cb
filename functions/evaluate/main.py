"""POST /api/v1/evaluate — score predictions against references (pure computation, stores nothing)."""

import functions_framework
from flask import Request, Response

from promptopt.evaluation.service import score
from promptopt.http import Call, Reply, serve
from promptopt.models.evaluation import EvaluateRequest


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _evaluate, source=__file__)


def _evaluate(call: Call) -> Reply:
    return Reply(score(body=call.body(EvaluateRequest)))
