"""GET /api/v1/prompts/{prompt_id} — the latest version, or ?version=N, or ?label=L."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    # A plainly valid selector (none, ?version=N or ?label=L) is read without the query model,
    # which keeps pydantic off this function's cold start; anything else goes through it.
    selector = prompts.simple_selector(call.request.args)
    if selector is None:
        from promptopt.prompts.models import PromptGetQuery

        query = call.query(PromptGetQuery)
        selector = query.version, query.label
    version, label = selector
    found = prompts.get_prompt_view(
        principal=call.user, prompt_id=call.path["prompt_id"], version=version, label=label
    )
    return Reply(found, headers={"ETag": prompts.etag(found["version"])})
