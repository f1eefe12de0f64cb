"""The run-time endpoint spec (plain JSON, no pydantic) agrees with the validated manifest."""

from __future__ import annotations

import json
from pathlib import Path

from promptopt.http import spec as endpoint_spec
from promptopt.manifest import BUNDLED_SPEC_FILE, load_manifest


def test_bundled_file_name_agrees() -> None:
    assert endpoint_spec.BUNDLED_SPEC_FILE == BUNDLED_SPEC_FILE


def test_every_endpoint_reads_the_same_from_its_bundle_json() -> None:
    for spec in load_manifest():
        if not spec.is_http:
            continue
        from_json = endpoint_spec.EndpointSpec.from_dict(json.loads(spec.model_dump_json()))
        assert from_json == endpoint_spec.EndpointSpec.from_spec(spec)
        assert from_json.name == spec.name
        assert (from_json.method, from_json.path) == (spec.http.method, spec.http.path)
        assert (from_json.auth_mode, from_json.min_role) == (spec.auth.mode, spec.auth.role)
        assert from_json.query_model == spec.http.query_model
        assert from_json.max_body_bytes == spec.http.max_body_bytes
        assert list(from_json.headers) == spec.http.headers
        assert from_json.rate_limit == spec.http.rate_limit
        assert from_json.audited == spec.http.audited
        assert from_json.timeout_s == spec.resources.timeout_s
        assert from_json.path_regex.pattern == spec.http.path_regex.pattern


def test_a_bundle_is_read_from_its_json(tmp_path: Path) -> None:
    spec = next(s for s in load_manifest() if s.is_http and s.auth.mode == "user")
    (tmp_path / BUNDLED_SPEC_FILE).write_text(spec.model_dump_json(), encoding="utf-8")
    found = endpoint_spec.endpoint_for_main(str(tmp_path / "main.py"))
    assert found == endpoint_spec.EndpointSpec.from_spec(spec)
