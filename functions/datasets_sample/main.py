"""GET /api/v1/datasets/{dataset_id}/sample — n rows chosen by a seed."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import rows as dataset_rows
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _sample, source=__file__)


def _sample(call: Call) -> Reply:
    tenant, dataset_id = call.user.tenant, call.path["dataset_id"]
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        defaults = dataset_rows.SampleDefaults()
        return Reply(dataset_rows.sample_rows(tenant=tenant, dataset_id=dataset_id, query=defaults))
    from promptopt.datasets.models import SampleQuery

    query = call.query(SampleQuery)
    return Reply(dataset_rows.sample_rows(tenant=tenant, dataset_id=dataset_id, query=query))
