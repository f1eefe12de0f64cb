"""The bundle builder: pinned closures from uv.lock, what a bundle holds, deterministic output."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from promptopt.manifest import load_manifest
from promptopt.tooling.build import BuildError, Lock, build_all, build_function
from tests.support import ROOT


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build_all(ROOT, out)
    return out


def _pins(bundle: Path) -> dict[str, str]:
    lines = (bundle / "requirements.txt").read_text().splitlines()
    pins = [line.split(" ;")[0] for line in lines if line and not line.startswith("#")]
    return dict(pin.split("==") for pin in pins)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_every_function_gets_a_bundle(bundles: Path) -> None:
    names = {spec.name for spec in load_manifest(ROOT)}
    assert {p.name for p in bundles.iterdir() if not p.name.startswith(".")} == names
    for name in names:
        assert (bundles / name / "main.py").read_bytes() == (
            ROOT / "functions" / name / "main.py"
        ).read_bytes()
        assert (bundles / name / "function.yaml").is_file()
        assert (bundles / name / "promptopt" / "manifest.py").is_file()


def test_requirements_pin_the_closure_at_locked_versions(bundles: Path) -> None:
    locked = {p["name"]: p["version"] for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    pins = _pins(bundles / "health")
    for name, version in pins.items():
        assert locked[name] == version
    # named in function.yaml, and reached only transitively through functions-framework
    assert {"functions-framework", "pydantic", "flask", "werkzeug", "gunicorn"} <= set(pins)
    assert list(pins) == sorted(pins)


def test_each_bundle_needs_only_its_own_dependencies(bundles: Path) -> None:
    health = _pins(bundles / "health")
    create = _pins(bundles / "prompts_create")
    assert "google-cloud-firestore" not in health
    assert "grpcio" not in health
    assert {"google-cloud-firestore", "grpcio", "grpcio-status"} <= set(create)  # api-core[grpc]


def test_dev_tooling_is_never_bundled(bundles: Path) -> None:
    dev = {"pytest", "ruff", "mypy", "gcp-storage-emulator", "hypothesis", "schemathesis"}
    for bundle in bundles.iterdir():
        if bundle.name.startswith("."):
            continue
        assert not (bundle / "promptopt" / "local").exists()
        assert not (bundle / "promptopt" / "cli").exists()
        assert not list(bundle.rglob("__pycache__"))
        assert not dev & set(_pins(bundle))


def test_a_dev_only_dependency_is_refused() -> None:
    lock = Lock(ROOT / "uv.lock")
    with pytest.raises(BuildError, match="not a runtime dependency"):
        lock.closure(["pytest"])


def test_rebuild_is_deterministic_and_drops_stale_files(bundles: Path, tmp_path: Path) -> None:
    spec = next(s for s in load_manifest(ROOT) if s.name == "health")
    before = _tree(bundles / "health")
    (bundles / "health" / "stale.txt").write_text("left over")
    build_function(spec, ROOT, bundles)
    assert _tree(bundles / "health") == before
    build_function(spec, ROOT, tmp_path)
    assert _tree(tmp_path / "health") == before


LOCK = """
version = 1
[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "a" }, { name = "winonly", marker = "sys_platform == 'win32'" }]

[[package]]
name = "a"
version = "1.0"
dependencies = [{ name = "b", marker = "python_full_version < '3.13'" }, { name = "c", extra = ["x"] }]

[[package]]
name = "b"
version = "2.0"
dependencies = [{ name = "d" }]

[[package]]
name = "c"
version = "3.0"
[package.optional-dependencies]
x = [{ name = "e" }]

[[package]]
name = "d"
version = "4.0"

[[package]]
name = "e"
version = "5.0"

[[package]]
name = "winonly"
version = "6.0"
"""


def test_markers_and_extras(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(LOCK)
    text = Lock(path, "app").requirements_txt(["a", "winonly"])
    assert text.splitlines()[1:] == [
        "a==1.0",
        "b==2.0 ; python_version < '3.13'",
        "c==3.0",
        "d==4.0 ; python_version < '3.13'",  # the marker follows the path that pulls it in
        "e==5.0",
    ]


def test_a_bundle_serves_from_a_folder_of_any_name(tmp_path: Path) -> None:
    """Cloud Functions unpacks the bundle into /workspace: the function must not rely on its folder name."""
    import shutil
    import sys

    import functions_framework

    spec = next(s for s in load_manifest(ROOT) if s.name == "health")
    bundle = build_function(spec, ROOT, out=tmp_path / "out")
    workspace = tmp_path / "workspace"
    shutil.copytree(bundle, workspace)
    assert (workspace / "function.json").is_file()
    try:
        app = functions_framework.create_app(target="handle", source=str(workspace / "main.py"))
    finally:
        sys.modules.pop("main", None)
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 200, response.get_data(as_text=True)
