"""PATCH /api/v1/prompts/{prompt_id} — rename, describe or tag a prompt without a new version."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts
from promptopt.prompts.models import PromptPatch


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _patch, source=__file__)


def _patch(call: Call) -> Reply:
    body = call.body(PromptPatch)
    patched = prompts.patch_prompt(
        principal=call.user,
        prompt_id=call.path["prompt_id"],
        if_match=prompts.parse_if_match(call.if_match()),
        body=body,
    )
    return Reply(patched, headers={"ETag": prompts.etag(patched.version)})
