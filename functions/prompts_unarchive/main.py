"""POST /api/v1/prompts/{prompt_id}/unarchive — list an archived prompt again (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import lifecycle


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _unarchive, source=__file__)


def _unarchive(call: Call) -> Reply:
    return Reply(lifecycle.unarchive_prompt(principal=call.user, prompt_id=call.path["prompt_id"]))
