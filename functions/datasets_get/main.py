"""GET /api/v1/datasets/{dataset_id} — a dataset with its newest versions."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import catalog as dataset_catalog
from promptopt.datasets.models import DatasetGetQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    query = call.query(DatasetGetQuery)
    return Reply(
        dataset_catalog.get_dataset(principal=call.user, dataset_id=call.path["dataset_id"], query=query)
    )
