"""POST /api/v1/evaluate — score predictions against references (stores nothing).

Deterministic metrics are pure computation; embedding_similarity and llm_judge call a model
within this request's deadline (provider SDKs load only when such a metric names a real model).
"""

import functions_framework
from flask import Request, Response

from promptopt.evaluation.models import EvaluateRequest
from promptopt.evaluation.service import score
from promptopt.http import Call, Reply, serve
from promptopt.llm.types import deadline_for


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _evaluate, source=__file__)


def _evaluate(call: Call) -> Reply:
    result = score(
        body=call.body(EvaluateRequest),
        principal=call.user,
        deadline_s=deadline_for(call.spec.timeout_s),
    )
    return Reply(result)
