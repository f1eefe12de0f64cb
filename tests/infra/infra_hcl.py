"""Readers for the infrastructure tests: terraform/ parsed with python-hcl2."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
FUNCTIONS = REPO / "functions"


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes and adds bookkeeping keys; strip both, recursively."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    return value


@dataclass(frozen=True)
class Resource:
    """One `resource`/`data` block: its type, name, body and the file it came from."""

    kind: str
    type: str
    name: str
    body: dict[str, Any]
    path: Path

    def block(self, name: str) -> dict[str, Any] | None:
        """The first nested block called `name` (plain or dynamic; dynamic returns its content)."""
        if name in self.body:
            value = self.body[name]
            return value[0] if isinstance(value, list) else value
        for dyn in self.body.get("dynamic", []):
            if name in dyn:
                return dyn[name].get("content", [{}])[0]
        return None


@dataclass
class Module:
    """A parsed Terraform folder (all its .tf files)."""

    path: Path
    resources: list[Resource] = field(default_factory=list)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""

    def of_type(self, type_: str) -> list[Resource]:
        """Resources (and data sources) of one type."""
        return [r for r in self.resources if r.type == type_]


def load_module(folder: Path) -> Module:
    """Parse every .tf file of one folder with python-hcl2."""
    module = Module(path=folder)
    for tf in sorted(folder.glob("*.tf")):
        text = tf.read_text(encoding="utf-8")
        module.text += text
        with tf.open(encoding="utf-8") as handle:
            parsed = unquote(hcl2.load(handle))
        for kind in ("resource", "data"):
            for entry in parsed.get(kind, []):
                for type_, named in entry.items():
                    for name, body in named.items():
                        module.resources.append(Resource(kind, type_, name, body, tf))
        for entry in parsed.get("module", []):
            module.modules.update(entry)
        for entry in parsed.get("locals", []):
            module.locals.update(entry)
        for entry in parsed.get("variable", []):
            module.variables.update(entry)
    return module
