"""POST /api/v1/datasets — create a dataset and its version 1."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import uploads as dataset_uploads
from promptopt.datasets.models import DatasetCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    created = dataset_uploads.create_dataset(
        principal=call.user, body=call.body(DatasetCreate), idempotency_key=call.idempotency_key
    )
    return Reply(
        created, status=201, headers={"Location": f"/api/v1/datasets/{created['dataset']['dataset_id']}"}
    )
