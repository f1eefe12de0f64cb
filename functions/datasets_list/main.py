"""GET /api/v1/datasets — the tenant's datasets, newest first, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import catalog as dataset_catalog
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(dataset_catalog.list_datasets(principal=call.user, query=dataset_catalog.ListDefaults()))
    from promptopt.datasets.models import DatasetListQuery

    return Reply(dataset_catalog.list_datasets(principal=call.user, query=call.query(DatasetListQuery)))
