"""GET /api/v1/datasets/{dataset_id} — a dataset with its newest versions."""

import functions_framework
from flask import Request, Response

from promptopt import dataset_catalog
from promptopt.http import Call, Reply, serve
from promptopt.models.datasets import DatasetGetQuery


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    query = call.query(DatasetGetQuery)
    return Reply(
        dataset_catalog.get_dataset(principal=call.user, dataset_id=call.path["dataset_id"], query=query)
    )
