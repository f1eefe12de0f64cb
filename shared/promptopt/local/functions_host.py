"""Run every manifest function as its own functions-framework process, exactly as bundled.

Each process runs from `build/<name>/` with that folder first on PYTHONPATH, so the bundled copy of
`promptopt` is what it imports (not the editable install): what works here is what gets deployed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from promptopt.local.ports import free_ports
from promptopt.local.process import ManagedProcess, http_probe, start_all, stop_all, wait_all
from promptopt.manifest import RUNTIME_ENV, FunctionSpec

log = logging.getLogger("promptopt.local.functions_host")


class FunctionHost:
    """One functions-framework process per function; `urls` maps names to their base URLs."""

    def __init__(
        self,
        specs: Sequence[FunctionSpec],
        build_dir: Path,
        *,
        env: Mapping[str, str],
        state_dir: Path,
        host: str = "127.0.0.1",
        base_port: int = 0,
        timeout_s: float = 60.0,
    ) -> None:
        """Describe the processes; nothing starts before `start()` (or `launch()`).

        Args:
            specs: the functions to run (their bundles must already be staged).
            build_dir: the folder holding `<name>/` bundles.
            env: emulator variables and anything else every function should see.
            state_dir: where `logs/<name>.log` and the bytecode cache go.
            host: interface to bind.
            base_port: the first function's port, the next ones follow in manifest order;
                0 gives each a free port.
            timeout_s: how long all of them together may take to answer HTTP.
        """
        self.specs = list(specs)
        self.build_dir = build_dir
        self.host = host
        self.state_dir = state_dir
        self.timeout_s = timeout_s
        if base_port:
            self.ports = {s.name: base_port + i for i, s in enumerate(self.specs)}
        else:
            names = [s.name for s in self.specs]
            self.ports = dict(zip(names, free_ports(len(names), host), strict=True))
        self._env = dict(env)
        self._processes = [self._process(spec) for spec in self.specs]

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each function, by name."""
        return {name: f"http://{self.host}:{port}" for name, port in self.ports.items()}

    @property
    def processes(self) -> list[ManagedProcess]:
        """The managed processes, in manifest order."""
        return list(self._processes)

    def _process(self, spec: FunctionSpec) -> ManagedProcess:
        bundle = self.build_dir / spec.name
        # Same precedence as Terraform: the manifest's env first, platform wiring over it.
        env = {
            **os.environ,
            **spec.env,
            **self._env,
            # Where every function listens, so code that enqueues a Cloud Task can target one.
            "PROMPTOPT_FUNCTION_URLS": json.dumps(self.urls, sort_keys=True),
            "PROMPTOPT_ENVIRONMENT": "local",
            "THREADS": str(spec.resources.concurrency),
            **RUNTIME_ENV,
            "PYTHONPATH": str(bundle),
            # Keep bytecode out of the bundle: Terraform hashes that folder.
            "PYTHONPYCACHEPREFIX": str(self.state_dir / "pycache"),
            "PYTHONUNBUFFERED": "1",
            "K_SERVICE": spec.deploy_name,  # as Cloud Run names the service, for log labels
        }
        # A deployed image has its bytecode compiled; recompiling every module on every start
        # (PYTHONDONTWRITEBYTECODE) would make the local stack start several times slower.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        framework = Path(sys.executable).with_name("functions-framework")
        argv = [
            str(framework),
            "--target", spec.entry_point,
            "--source", "main.py",
            "--signature-type", spec.signature_type,
            "--host", self.host,
            "--port", str(self.ports[spec.name]),
        ]  # fmt: skip
        return ManagedProcess(
            f"function {spec.name}",
            argv,
            log_path=self.state_dir / "logs" / f"{spec.name}.log",
            probe=http_probe(f"http://{self.host}:{self.ports[spec.name]}/"),
            env=env,
            cwd=bundle,
        )

    def launch(self) -> None:
        """Start every process without waiting (see `wait`)."""
        for proc in self._processes:
            proc.start()

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait until every function answers HTTP (StartupError otherwise)."""
        wait_all(self._processes, self.timeout_s if timeout_s is None else timeout_s)

    def start(self) -> FunctionHost:
        """Start every function in parallel and wait until all answer."""
        started = time.perf_counter()
        start_all(self._processes, self.timeout_s)
        log.info("%d functions ready in %.2fs", len(self._processes), time.perf_counter() - started)
        return self

    def stop(self) -> None:
        """Stop every function; idempotent."""
        stop_all(self._processes)
