"""Run a function with only the packages its deployment installs importable.

A deployed function's image holds its requirements.txt and nothing else, while the benchmark runs
from the development environment, which has more (test and tooling dependencies). Some libraries
import optional extras when they happen to be installed: google-api-core loads aiohttp (about
100 ms) for an async REST transport if aiohttp is importable, which a deployed function never
does. So each measured process gets a guard (a `sitecustomize` on its path) that refuses to import
modules from distributions outside its requirements, as the deployed image would.

`guard_dir(requirements)` writes the guard once per set of requirements; the blocked locations are
worked out here, in the parent, so the measured process only reads a small JSON list.
"""

from __future__ import annotations

import json
import re
import sysconfig
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

SITECUSTOMIZE = '''
import json, os, sys
from importlib.machinery import PathFinder

with open(os.path.join(os.path.dirname(__file__), "blocked.json")) as _file:
    _GIVEN = json.load(_file)
_SITE, _BLOCKED = _GIVEN["site"] + os.sep, frozenset(_GIVEN["blocked"])


class _NotDeployed:
    """Finds modules as usual, but refuses those of distributions the deployment does not install."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        spec = PathFinder.find_spec(name, path, target)
        where = spec and (spec.origin if spec.has_location else None)
        if where and where.startswith(_SITE):
            parts = where[len(_SITE):].split(os.sep)
            for depth in range(1, len(parts) + 1):
                if "/".join(parts[:depth]) in _BLOCKED:
                    raise ModuleNotFoundError(f"No module named {name!r} (not deployed)", name=name)
        return spec


sys.meta_path.insert(sys.meta_path.index(PathFinder), _NotDeployed)
'''


def _name(value: str) -> str:
    return re.sub(r"[-_.]+", "-", value).lower()


def closure(names: list[str]) -> set[str]:
    """The distributions `names` need, transitively, with the extras their requirements name."""
    seen: set[tuple[str, str]] = set()
    pending = [(_name(n), "") for n in names]
    while pending:
        name, extra = pending.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                pending += [(_name(req.name), wanted) for wanted in ("", *req.extras)]
    return {name for name, _ in seen}


def read_requirements(path: Path) -> set[str]:
    """Distribution names pinned in a requirements.txt."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_name(Requirement(line).name))
    return names


@cache
def _installed() -> dict[str, list[str]]:
    """Each installed distribution's files under site-packages, as relative paths."""
    site = Path(sysconfig.get_paths()["purelib"])
    found: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        files = []
        for file in dist.files or []:
            located = Path(dist.locate_file(file))
            try:
                relative = located.resolve().relative_to(site.resolve())
            except ValueError:
                continue  # scripts, data outside site-packages
            if relative.parts and not relative.parts[0].endswith((".dist-info", ".egg-info", ".pth")):
                files.append(relative.as_posix())
        found[_name(dist.metadata["Name"])] = files
    return found


def blocked_roots(allowed: set[str]) -> list[str]:
    """The shortest paths (relative to site-packages) that only distributions outside `allowed` hold."""
    installed = _installed()
    shared: set[str] = set()
    for name, files in installed.items():
        if name in allowed or name == "promptopt":
            for file in files:
                parts = file.split("/")
                shared.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    roots: set[str] = set()
    for name, files in installed.items():
        if name in allowed or name == "promptopt":
            continue
        for file in files:
            parts = file.split("/")
            for depth in range(1, len(parts) + 1):
                prefix = "/".join(parts[:depth])
                if prefix not in shared:
                    roots.add(prefix)
                    break
    return sorted(roots)


@cache
def guard_dir(allowed: frozenset[str]) -> str:
    """A folder to put on PYTHONPATH: its sitecustomize blocks what `allowed` does not install."""
    folder = Path(tempfile.mkdtemp(prefix="promptopt-bench-deployed-"))
    site = sysconfig.get_paths()["purelib"]
    (folder / "blocked.json").write_text(json.dumps({"site": site, "blocked": blocked_roots(set(allowed))}))
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return str(folder)
