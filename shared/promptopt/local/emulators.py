"""Firestore, Pub/Sub, Cloud Storage and Cloud Tasks emulators as managed child processes.

    with Emulators(which=("firestore",), project="promptopt-test") as emu:
        os.environ.update(emu.env)

All requested emulators start at once (about 2.5 s for the four on this machine, Firestore alone
about 1 s); each is ready when it answers HTTP (the Tasks emulator speaks only gRPC: TCP accept).
The Tasks emulator runs through `tasks_emulator`, which makes it back off failed tasks per queue as
Cloud Tasks does (queues given no retry config get the Cloud Tasks API's defaults).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from promptopt.local.ports import free_ports
from promptopt.local.process import (
    ManagedProcess,
    Probe,
    http_probe,
    start_all,
    stop_all,
    tcp_probe,
    wait_all,
)
from promptopt.local.task_retry import RetryConfig

log = logging.getLogger("promptopt.local.emulators")

EmulatorName = Literal["firestore", "pubsub", "storage", "tasks"]
ALL_EMULATORS: tuple[EmulatorName, ...] = ("firestore", "pubsub", "storage", "tasks")
DEFAULT_TASKS_LOCATION = "us-central1"
# C1-only JIT: the Java emulators start ~30% faster, and their steady-state load here is light.
_JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-Duser.language=en")


@dataclass(frozen=True)
class Endpoint:
    """Where one running emulator listens and the variable that points client libraries at it."""

    name: EmulatorName
    host: str
    port: int

    @property
    def env(self) -> dict[str, str]:
        """The client-library environment variable for this emulator."""
        address = f"{self.host}:{self.port}"
        return {
            "firestore": {"FIRESTORE_EMULATOR_HOST": address},
            "pubsub": {"PUBSUB_EMULATOR_HOST": address},
            "storage": {"STORAGE_EMULATOR_HOST": f"http://{address}"},
            "tasks": {"CLOUD_TASKS_EMULATOR_HOST": address},
        }[self.name]


def gcloud_sdk_root() -> Path:
    """The Google Cloud SDK folder: CLOUDSDK_ROOT_DIR, else where `gcloud` on PATH really lives."""
    env = os.environ.get("CLOUDSDK_ROOT_DIR")
    if env:
        return Path(env)
    gcloud = shutil.which("gcloud")
    if gcloud:
        return Path(gcloud).resolve().parent.parent
    return Path("/usr/lib/google-cloud-sdk")


def _venv_tool(name: str) -> str:
    """A console script installed beside the running interpreter (the project's venv)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def _command(
    name: EmulatorName,
    host: str,
    port: int,
    queues: Sequence[str],
    retry: Mapping[str, RetryConfig] | None = None,
    dispatch: Mapping[str, int] | None = None,
) -> tuple[list[str], dict[str, str], Probe]:
    """argv, extra environment and readiness probe of one emulator."""
    sdk = gcloud_sdk_root() / "platform"
    if name == "firestore":
        # The jar directly: the SDK's launcher is only a bash wrapper that adds no options we need.
        jar = sdk / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
        main = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
        argv = ["java", *_JVM_FLAGS, "-cp", str(jar), main, "start", f"--host={host}", f"--port={port}"]
        return argv, {}, http_probe(f"http://{host}:{port}/")
    if name == "pubsub":
        launcher = sdk / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        argv = [str(launcher), f"--host={host}", f"--port={port}"]
        return argv, {"JAVA_OPTS": " ".join(_JVM_FLAGS)}, http_probe(f"http://{host}:{port}/")
    if name == "storage":
        tool = _venv_tool("gcp-storage-emulator")
        argv = [tool, "start", "--host", host, "--port", str(port), "--in-memory"]
        return argv, {}, http_probe(f"http://{host}:{port}/")
    # gcloud-tasks-emulator, with backoff (see tasks_emulator); it binds every interface, speaks gRPC.
    argv = [sys.executable, "-m", "promptopt.local.tasks_emulator", "--port", str(port)]
    for queue in queues:
        argv += ["--queue", queue]
    configs = {q: c.to_json() for q, c in (retry or {}).items()}
    argv += ["--retry", json.dumps(configs, sort_keys=True)]
    argv += ["--dispatch", json.dumps(dict(dispatch or {}), sort_keys=True)]
    return argv, {"PYTHONUNBUFFERED": "1"}, tcp_probe(host, port)


def queue_path(project: str, queue: str, location: str = DEFAULT_TASKS_LOCATION) -> str:
    """The full resource name of a Cloud Tasks queue (a full name passes through unchanged)."""
    if queue.startswith("projects/"):
        return queue
    return f"projects/{project}/locations/{location}/queues/{queue}"


class Emulators:
    """A set of emulators on free (or given) ports; a context manager that stops them all."""

    def __init__(
        self,
        which: Iterable[EmulatorName] = ALL_EMULATORS,
        *,
        project: str = "promptopt-local",
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        state_dir: Path | None = None,
        queues: Sequence[str] = (),
        retry: Mapping[str, RetryConfig] | None = None,
        dispatch: Mapping[str, int] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        """Describe the emulators; nothing starts before `start()` (or `with`).

        Args:
            which: emulators to run.
            project: the project id clients use (GOOGLE_CLOUD_PROJECT).
            host: interface to bind.
            ports: fixed ports by emulator name; missing ones get free ports.
            state_dir: where logs go; a temporary folder (removed on stop) when None.
            queues: Cloud Tasks queues to create, as ids or full resource names.
            retry: each queue's retry config (by id or full name); others get the API's defaults.
            dispatch: each queue's max_concurrent_dispatches (by id or full name); others get
                modules/messaging's default (tasks_emulator.DEFAULT_CONCURRENT_DISPATCHES).
            timeout_s: how long all of them together may take to become ready.
        """
        self.which: tuple[EmulatorName, ...] = tuple(dict.fromkeys(which))
        unknown = set(self.which) - set(ALL_EMULATORS)
        if unknown:
            raise ValueError(f"unknown emulators {sorted(unknown)}; choose from {ALL_EMULATORS}")
        self.project = project
        self.host = host
        given = dict(ports or {})
        missing = [n for n in self.which if not given.get(n)]
        given.update(zip(missing, free_ports(len(missing), host), strict=True))
        self.endpoints = {n: Endpoint(n, host, given[n]) for n in self.which}
        self._own_state = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="promptopt-emulators-"))
        self.queues = tuple(queue_path(project, q) for q in queues)
        self.retry = {queue_path(project, q): c for q, c in (retry or {}).items()}
        self.dispatch = {queue_path(project, q): n for q, n in (dispatch or {}).items()}
        self.timeout_s = timeout_s
        self.startup_s: float | None = None
        self._processes = self._build_processes()

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point client libraries at these emulators."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project}
        for endpoint in self.endpoints.values():
            env.update(endpoint.env)
        return env

    @property
    def processes(self) -> list[ManagedProcess]:
        """The managed processes, for callers that launch several groups at once."""
        return list(self._processes)

    def _build_processes(self) -> list[ManagedProcess]:
        base_env = {**os.environ, "GOOGLE_CLOUD_PROJECT": self.project}
        processes = []
        for name, endpoint in self.endpoints.items():
            argv, extra, probe = _command(
                name, self.host, endpoint.port, self.queues, self.retry, self.dispatch
            )
            processes.append(
                ManagedProcess(
                    f"{name} emulator",
                    argv,
                    log_path=self.state_dir / "logs" / f"{name}-emulator.log",
                    probe=probe,
                    env={**base_env, **extra},
                )
            )
        return processes

    def launch(self) -> None:
        """Start every emulator without waiting (see `wait`)."""
        for proc in self._processes:
            proc.start()

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait until every emulator is ready (StartupError otherwise)."""
        wait_all(self._processes, self.timeout_s if timeout_s is None else timeout_s)

    def start(self) -> Emulators:
        """Start every emulator in parallel and wait until all are ready (StartupError otherwise)."""
        started = time.perf_counter()
        start_all(self._processes, self.timeout_s)
        self.startup_s = time.perf_counter() - started
        log.info("emulators ready in %.2fs: %s", self.startup_s, self.env)
        return self

    def stop(self) -> None:
        """Stop every emulator (whole process groups); idempotent."""
        stop_all(self._processes)
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Emulators:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def reset_firestore(host: str, project: str) -> None:
    """Delete every document in the emulator's default database (`host` is `address:port`)."""
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (an emulator URL we built)
        pass
