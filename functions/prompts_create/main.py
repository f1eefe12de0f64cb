"""POST /api/v1/prompts — create a prompt (version 1)."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts
from promptopt.prompts.models import PromptCreate


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    created = prompts.create_prompt(
        principal=call.user, body=call.body(PromptCreate), idempotency_key=call.idempotency_key
    )
    return Reply(
        created,
        status=201,
        headers={"ETag": prompts.etag(created.version), "Location": f"/api/v1/prompts/{created.prompt_id}"},
    )
