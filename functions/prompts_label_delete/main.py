"""DELETE /api/v1/prompts/{prompt_id}/labels/{label} — remove a label."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _remove_label, source=__file__)


def _remove_label(call: Call) -> Reply:
    result = prompts.remove_label(
        principal=call.user, prompt_id=call.path["prompt_id"], label=prompts.parse_label(call.path["label"])
    )
    return Reply(result)
