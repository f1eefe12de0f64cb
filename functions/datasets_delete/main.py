"""DELETE /api/v1/datasets/{dataset_id} — remove a dataset's records and files (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import catalog as dataset_catalog
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _delete, source=__file__)


def _delete(call: Call) -> Reply:
    dataset_catalog.delete_dataset(principal=call.user, dataset_id=call.path["dataset_id"])
    return Reply(None, status=204)
