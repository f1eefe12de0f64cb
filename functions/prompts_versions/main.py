"""GET /api/v1/prompts/{prompt_id}/versions — the lineage, newest first."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts
from promptopt.prompts.models import VersionsQuery


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _versions, source=__file__)


def _versions(call: Call) -> Reply:
    return Reply(
        prompts.list_versions(
            principal=call.user, prompt_id=call.path["prompt_id"], query=call.query(VersionsQuery)
        )
    )
