"""POST /api/v1/prompts/{prompt_id}/archive — hide a prompt no label or experiment uses (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.experiments.prompt_users import prompt_users
from promptopt.http import Call, Reply, serve
from promptopt.prompts import lifecycle


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _archive, source=__file__)


def _archive(call: Call) -> Reply:
    return Reply(
        lifecycle.archive_prompt(principal=call.user, prompt_id=call.path["prompt_id"], users=prompt_users)
    )
