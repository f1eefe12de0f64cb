"""GET /api/v1/datasets/{dataset_id} — a dataset with its newest versions."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import catalog as dataset_catalog
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    dataset_id = call.path["dataset_id"]
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        defaults = dataset_catalog.GetDefaults()
        return Reply(dataset_catalog.get_dataset(principal=call.user, dataset_id=dataset_id, query=defaults))
    from promptopt.datasets.models import DatasetGetQuery

    query = call.query(DatasetGetQuery)
    return Reply(dataset_catalog.get_dataset(principal=call.user, dataset_id=dataset_id, query=query))
