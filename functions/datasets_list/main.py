"""GET /api/v1/datasets — the tenant's datasets, newest first, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import catalog as dataset_catalog
from promptopt.datasets.models import DatasetListQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(dataset_catalog.list_datasets(principal=call.user, query=call.query(DatasetListQuery)))
