"""GET /api/v1/prompts — the tenant's prompts, newest first, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts
from promptopt.prompts.models import PromptListQuery


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(prompts.list_prompts(principal=call.user, query=call.query(PromptListQuery)))
