"""Property-based fuzzing of every operation in the generated OpenAPI document, through the gateway.

Schemathesis generates valid and invalid requests from the same document API Gateway is given;
whatever it sends, the answer must never be a 5xx and must match the documented responses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from promptopt.local.stack import Stack
from promptopt.tooling.openapi import build_spec, render_spec, sample_values

pytestmark = pytest.mark.e2e


# Generation needs only the document; requests go to the running gateway via base_url below.
_SPEC = build_spec()
_RENDERED = render_spec(_SPEC, sample_values(_SPEC))
# API Gateway's `{name=**}` (the rest of the path) is fuzzed as the plain `{name}` it declares.
_RENDERED["paths"] = {re.sub(r"=\*\*\}", "}", path): ops for path, ops in _RENDERED["paths"].items()}
schema = schemathesis.openapi.from_dict(_RENDERED)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any, stack: Stack, token_for: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {token_for('fuzz', 'admin')}"}
    response = case.call(base_url=stack.gateway_url, headers=headers, timeout=30)
    case.validate_response(
        response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )
