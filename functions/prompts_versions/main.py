"""GET /api/v1/prompts/{prompt_id}/versions — the lineage, newest first."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _versions, source=__file__)


def _versions(call: Call) -> Reply:
    prompt_id = call.path["prompt_id"]
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(
            prompts.list_versions(principal=call.user, prompt_id=prompt_id, query=prompts.VersionsDefaults())
        )
    from promptopt.prompts.models import VersionsQuery

    query = call.query(VersionsQuery)
    return Reply(prompts.list_versions(principal=call.user, prompt_id=prompt_id, query=query))
