"""GET /api/v1/datasets/{dataset_id}/rows — rows in split order, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import rows as dataset_rows
from promptopt.datasets.models import RowsQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _rows, source=__file__)


def _rows(call: Call) -> Reply:
    query = call.query(RowsQuery)
    return Reply(
        dataset_rows.rows_page(tenant=call.user.tenant, dataset_id=call.path["dataset_id"], query=query)
    )
