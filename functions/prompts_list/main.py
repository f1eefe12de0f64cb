"""GET /api/v1/prompts — the tenant's prompts, newest first, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(prompts.list_prompts(principal=call.user, query=prompts.ListDefaults()))
    from promptopt.prompts.models import PromptListQuery

    return Reply(prompts.list_prompts(principal=call.user, query=call.query(PromptListQuery)))
