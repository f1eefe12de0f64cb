"""GET /api/v1/prompts/{prompt_id} — the latest version, or ?version=N, or ?label=L."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts
from promptopt.prompts.models import PromptGetQuery


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    found = prompts.get_prompt(
        principal=call.user, prompt_id=call.path["prompt_id"], query=call.query(PromptGetQuery)
    )
    return Reply(found, headers={"ETag": prompts.etag(found.version)})
