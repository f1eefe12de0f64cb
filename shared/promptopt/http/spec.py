"""What `serve` needs of its function's manifest entry, read at run time without pydantic.

A bundle carries the builder's `function.json`, already validated against
`promptopt.manifest.FunctionSpec` at build time; parsing it again with that model would cost
every cold start the pydantic build of the whole manifest schema. A source folder (tests, the
local stack run from the tree) has only `function.yaml` and goes through the full model.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt import routes
from promptopt.auth import Role

if TYPE_CHECKING:
    from promptopt.manifest import FunctionSpec

BUNDLED_SPEC_FILE = "function.json"  # written into each bundle by the builder


class EndpointSpec(NamedTuple):
    """One HTTP function: its route, who may call it, its caps and its timeout."""

    name: str
    method: str
    path: str
    auth_mode: str
    min_role: Role | None
    query_model: str | None
    max_body_bytes: int | None
    headers: tuple[str, ...]
    rate_limit: str | None
    audited: bool
    timeout_s: int

    @property
    def path_regex(self) -> re.Pattern[str]:
        """A regex matching concrete paths of this route, capturing each parameter."""
        return routes.path_regex(self.path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointSpec:
        """From a `FunctionSpec` dumped to JSON (every field present, defaults included)."""
        trigger, auth = data["trigger"], data["auth"]
        if trigger["type"] != "http":
            raise TypeError(f"{data['name']} is not an HTTP function")
        audit = trigger.get("audit")
        return cls(
            name=data["name"],
            method=trigger["method"],
            path=trigger["path"],
            auth_mode=auth["mode"],
            min_role=Role[auth["min_role"]] if auth.get("min_role") else None,
            query_model=trigger.get("query_model"),
            max_body_bytes=trigger.get("max_body_bytes"),
            headers=tuple(trigger.get("headers") or ()),
            rate_limit=trigger.get("rate_limit"),
            audited=audit if audit is not None else trigger["method"] != "GET",
            timeout_s=data["resources"]["timeout_s"],
        )

    @classmethod
    def from_spec(cls, spec: FunctionSpec) -> EndpointSpec:
        """From the validated manifest model."""
        return cls.from_dict(spec.model_dump(mode="json"))


@functools.lru_cache(maxsize=8)
def endpoint_for_main(source: str) -> EndpointSpec:
    """The endpoint whose entry point is the file `source` (a main.py's `__file__`)."""
    folder = Path(source).resolve().parent
    bundled = folder / BUNDLED_SPEC_FILE
    if bundled.is_file():
        return EndpointSpec.from_dict(json.loads(bundled.read_bytes()))
    from promptopt.manifest import read_spec  # a source folder: validate its YAML

    return EndpointSpec.from_spec(read_spec(folder))
