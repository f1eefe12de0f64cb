"""Stage one deployable bundle per function: `build/<name>/`, which Terraform zips by content hash.

A bundle holds the function's own files, a copy of the `promptopt` package (without `local/` and
`cli/`, which never run in the cloud) and a `requirements.txt` pinning only the distributions the
function's manifest names plus their transitive closure, at the versions in `uv.lock`. Output is
deterministic (sorted, no timestamps), so a bundle's hash changes only when its content does.

    python -m promptopt.tooling.build [NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import Marker

from promptopt.manifest import BUNDLED_SPEC_FILE, MANIFEST_FILE, FunctionSpec, load_manifest, repo_root

log = logging.getLogger("promptopt.tooling.build")

PACKAGE = "promptopt"
# Developer tooling inside the package: the local stack, the Python client and the CLI over it, the
# bundler and the spec generator (the client needs httpx and tenacity, which functions do not).
NEVER_BUNDLED = ("local", "cli", "client", "tooling")
REQUIREMENTS = "requirements.txt"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
# The Python versions a Cloud Functions python3xx runtime may run; markers are judged against them.
TARGET_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
_REQUIREMENT_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*$")


class BuildError(RuntimeError):
    """The manifest and the lock file disagree, or a bundle cannot be staged."""


def normalize(name: str) -> str:
    """PEP 503 name normalization (how uv.lock spells names)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _target_env(python: str) -> dict[str, str]:
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


_TARGETS = {python: _target_env(python) for python in TARGET_PYTHONS}
_ALL = frozenset(TARGET_PYTHONS)


def _applies(marker: str | None) -> frozenset[str]:
    """The target Pythons on which a dependency edge with this marker is installed."""
    if not marker:
        return _ALL
    parsed = Marker(marker)
    return frozenset(p for p, env in _TARGETS.items() if parsed.evaluate(env))


def _marker_for(pythons: frozenset[str]) -> str | None:
    """A marker selecting exactly these target Pythons (None when it is all of them)."""
    if pythons == _ALL:
        return None
    ordered = [p for p in TARGET_PYTHONS if p in pythons]
    first, last = TARGET_PYTHONS.index(ordered[0]), TARGET_PYTHONS.index(ordered[-1])
    if last - first + 1 == len(ordered):  # a contiguous range reads as a comparison
        if first == 0:
            return f"python_version < '{TARGET_PYTHONS[last + 1]}'"
        if last == len(TARGET_PYTHONS) - 1:
            return f"python_version >= '{ordered[0]}'"
    return " or ".join(f"python_version == '{p}'" for p in ordered)


@dataclass(frozen=True)
class _Edge:
    name: str
    extras: tuple[str, ...]
    marker: str | None


@dataclass
class _Locked:
    name: str
    version: str
    deps: list[_Edge] = field(default_factory=list)
    optional: dict[str, list[_Edge]] = field(default_factory=dict)


def _edges(items: Sequence[dict[str, Any]]) -> list[_Edge]:
    return [_Edge(normalize(d["name"]), tuple(d.get("extra", ())), d.get("marker")) for d in items]


class Lock:
    """The packages of `uv.lock` and the project's runtime (non-dev) dependencies."""

    def __init__(self, path: Path, project: str = PACKAGE) -> None:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        self.packages: dict[str, _Locked] = {}
        for pkg in data.get("package", []):
            name = normalize(pkg["name"])
            if name in self.packages:
                # uv forks a resolution per Python range only when it must; we do not (yet).
                raise BuildError(f"{path}: {name} is locked at several versions; bundling cannot pick one")
            optional = {k: _edges(v) for k, v in pkg.get("optional-dependencies", {}).items()}
            deps = _edges(pkg.get("dependencies", []))
            self.packages[name] = _Locked(name, str(pkg.get("version", "")), deps, optional)
        root = self.packages.get(normalize(project))
        if root is None:
            raise BuildError(f"{path} has no entry for the project {project!r}")
        self.project = root.name
        self.runtime = {edge.name: edge for edge in root.deps}  # [project].dependencies only

    def closure(self, requirements: Sequence[str]) -> dict[str, frozenset[str]]:
        """Every distribution needed by `requirements`, with the target Pythons that need it.

        Raises BuildError for a name that is not a runtime dependency of the project, so a
        dev-only package can never reach a bundle.
        """
        needed: dict[str, frozenset[str]] = {}
        extras_seen: dict[str, set[str]] = {}
        stack: list[tuple[_Edge, frozenset[str]]] = []
        for requirement in requirements:
            match = _REQUIREMENT_RE.match(requirement)
            if not match:
                raise BuildError(f"{requirement!r} is not a distribution name (versions come from uv.lock)")
            name = normalize(match.group(1))
            if name not in self.runtime:
                raise BuildError(
                    f"{requirement!r} is not a runtime dependency of {self.project}; "
                    "add it to [project].dependencies in pyproject.toml and run `uv lock`"
                )
            extras = tuple(e.strip() for e in (match.group(2) or "").split(",") if e.strip())
            declared = self.runtime[name]  # the project's own extras and marker apply too
            stack.append((_Edge(name, declared.extras + extras, declared.marker), _ALL))
        while stack:
            edge, pythons = stack.pop()
            pythons = pythons & _applies(edge.marker)
            if not pythons or edge.name == self.project:
                continue
            pkg = self.packages.get(edge.name)
            if pkg is None:
                raise BuildError(f"uv.lock has no package {edge.name!r}")
            before = needed.get(edge.name, frozenset())
            new_extras = set(edge.extras) - extras_seen.get(edge.name, set())
            if pythons <= before and not new_extras:
                continue  # nothing new to learn through this path
            needed[edge.name] = before | pythons
            extras_seen.setdefault(edge.name, set()).update(edge.extras)
            reach = needed[edge.name]
            stack.extend((dep, reach) for dep in pkg.deps)
            for extra in sorted(extras_seen[edge.name]):
                stack.extend((dep, reach) for dep in pkg.optional.get(extra, []))
        return needed

    def requirements_txt(self, requirements: Sequence[str]) -> str:
        """The pinned, sorted requirements file for these distributions."""
        lines = [
            "# Generated by promptopt.tooling.build from uv.lock for this function's manifest; do not edit.",
        ]
        for name, pythons in sorted(self.closure(requirements).items()):
            marker = _marker_for(pythons)
            pin = f"{name}=={self.packages[name].version}"
            lines.append(f"{pin} ; {marker}" if marker else pin)
        return "\n".join(lines) + "\n"


def _copy_tree(src: Path, dst: Path, skip: Sequence[str] = ()) -> None:
    """Copy file contents only (no timestamps or modes), in sorted order, skipping caches."""
    dst.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(src))
    ignored = _IGNORE(str(src), names) | set(skip)
    for name in names:
        if name in ignored:
            continue
        source = src / name
        if source.is_symlink():
            raise BuildError(f"{source} is a symlink; bundles carry real files only")
        if source.is_dir():
            _copy_tree(source, dst / name)
        else:
            shutil.copyfile(source, dst / name)


@contextlib.contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    """One builder at a time per build folder (tests and scripts/dev may build concurrently)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _swap_in(staged: Path, target: Path) -> None:
    """Replace `target` by `staged` with two renames (never a half-written bundle).

    A function already running from `target` keeps working: its imported modules are in memory
    and its later imports resolve the same path, which then holds the new bundle.
    """
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.rename(target, old)
    os.rename(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def _stage(spec: FunctionSpec, root: Path, lock: Lock, out: Path) -> Path:
    source = root / "functions" / spec.name
    if (source / REQUIREMENTS).exists():
        raise BuildError(f"{source / REQUIREMENTS}: generated from {MANIFEST_FILE}; remove it")
    if (source / PACKAGE).exists():
        raise BuildError(f"{source / PACKAGE} would shadow the bundled library")
    requirements = lock.requirements_txt(spec.dependencies)  # fails before touching build/
    staged = out / f".{spec.name}.tmp-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    _copy_tree(source, staged)
    _copy_tree(root / "shared" / PACKAGE, staged / PACKAGE, skip=NEVER_BUNDLED)
    (staged / REQUIREMENTS).write_text(requirements, encoding="utf-8")
    # The validated manifest as JSON: the deployed function reads it with the stdlib (no YAML parser
    # on the cold-start path) and without relying on its folder name (/workspace in the cloud).
    (staged / BUNDLED_SPEC_FILE).write_text(spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
    target = out / spec.name
    _swap_in(staged, target)
    return target


def build_function(spec: FunctionSpec, root: Path, out: Path | None = None) -> Path:
    """Stage `build/<name>/` for one function and return its path."""
    out = out or root / "build"
    lock = Lock(root / "uv.lock", _project_name(root))
    with _build_lock(out):
        return _stage(spec, root, lock, out)


def build_all(root: Path | None = None, out: Path | None = None, names: Sequence[str] = ()) -> list[Path]:
    """Stage every function's bundle (or only `names`); return their paths in manifest order.

    A full build also removes bundles of functions that left the manifest.
    """
    root = root or repo_root()
    out = out or root / "build"
    specs = load_manifest(root)
    known = {s.name for s in specs}
    unknown = sorted(set(names) - known)
    if unknown:
        raise BuildError(f"no such function(s): {', '.join(unknown)}")
    chosen = [s for s in specs if not names or s.name in names]
    lock = Lock(root / "uv.lock", _project_name(root))
    with _build_lock(out):
        for leftover in sorted(out.glob(".*.tmp-*")) + sorted(out.glob(".*.old-*")):
            shutil.rmtree(leftover, ignore_errors=True)  # from an interrupted build; we hold the lock
        paths = [_stage(spec, root, lock, out) for spec in chosen]
        if not names:
            for stale in sorted(out.iterdir()):
                if stale.is_dir() and stale.name not in known and (stale / MANIFEST_FILE).exists():
                    log.info("removing stale bundle %s", stale)
                    shutil.rmtree(stale)
    return paths


def _project_name(root: Path) -> str:
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["name"])


def _summary(path: Path) -> str:
    files = sum(1 for p in path.rglob("*") if p.is_file())
    lines = (path / REQUIREMENTS).read_text(encoding="utf-8").splitlines()
    pins = sum(1 for line in lines if line and not line.startswith("#"))
    return f"{path.name:<28} {files:>3} files {pins:>3} pinned requirements -> {path}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build the named functions (all when none), one line per function."""
    parser = argparse.ArgumentParser(
        prog="python -m promptopt.tooling.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", help="functions to build (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="build folder (default: <repo>/build)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = build_all(repo_root(), args.out, args.names)
    except BuildError as err:
        print(f"build failed: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(_summary(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
