"""GET /api/v1/datasets/{dataset_id}/rows — rows in split order, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import rows as dataset_rows
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _rows, source=__file__)


def _rows(call: Call) -> Reply:
    tenant, dataset_id = call.user.tenant, call.path["dataset_id"]
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(
            dataset_rows.rows_page(tenant=tenant, dataset_id=dataset_id, query=dataset_rows.RowsDefaults())
        )
    from promptopt.datasets.models import RowsQuery

    return Reply(dataset_rows.rows_page(tenant=tenant, dataset_id=dataset_id, query=call.query(RowsQuery)))
