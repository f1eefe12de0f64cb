"""PUT /api/v1/prompts/{prompt_id}/labels/{label} — point a label at a version."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.prompts import service as prompts


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _set_label, source=__file__)


def _set_label(call: Call) -> Reply:
    version = prompts.plain_label_version(call.raw_body)
    if version is None:  # anything but a plainly valid body: the model words the 400
        from promptopt.prompts.models import LabelSet

        version = call.body(LabelSet).version
    result = prompts.set_label(
        principal=call.user,
        prompt_id=call.path["prompt_id"],
        label=prompts.parse_label(call.path["label"]),
        version=version,
    )
    return Reply(result)
