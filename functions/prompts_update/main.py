"""PUT /api/v1/prompts/{prompt_id} — create the next immutable version (If-Match required)."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts
from promptopt.prompts.models import PromptUpdate


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _update, source=__file__)


def _update(call: Call) -> Reply:
    body = call.body(PromptUpdate)
    updated = prompts.update_prompt(
        principal=call.user,
        prompt_id=call.path["prompt_id"],
        if_match=prompts.parse_if_match(call.if_match()),
        body=body,
    )
    return Reply(updated, headers={"ETag": prompts.etag(updated.version)})
