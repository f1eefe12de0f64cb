"""POST /api/v1/datasets/{dataset_id}/versions — add the next version of a dataset."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import uploads as dataset_uploads
from promptopt.datasets.models import DatasetVersionCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    created = dataset_uploads.create_version(
        principal=call.user,
        dataset_id=call.path["dataset_id"],
        body=call.body(DatasetVersionCreate),
        idempotency_key=call.idempotency_key,
    )
    location = f"/api/v1/datasets/{created['dataset']['dataset_id']}"
    return Reply(created, status=201, headers={"Location": location})
