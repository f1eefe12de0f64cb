"""GET /api/v1/datasets/{dataset_id}/sample — n rows chosen by a seed."""

import functions_framework
from flask import Request, Response

from promptopt.datasets import rows as dataset_rows
from promptopt.datasets.models import SampleQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _sample, source=__file__)


def _sample(call: Call) -> Reply:
    query = call.query(SampleQuery)
    return Reply(
        dataset_rows.sample_rows(tenant=call.user.tenant, dataset_id=call.path["dataset_id"], query=query)
    )
