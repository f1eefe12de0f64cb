"""POST /api/v1/inference/complete — render a stored or inline prompt and call a model once."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.inference import complete as inference
from promptopt.inference.models import CompletionCreate


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _complete, source=__file__)


def _complete(call: Call) -> Reply:
    result = inference.complete(
        principal=call.user,
        body=call.body(CompletionCreate),
        deadline_s=inference.deadline_for(call.spec.timeout_s),
    )
    return Reply(result)
