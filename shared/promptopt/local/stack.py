"""The whole local stack: emulators, every function as bundled, and the local API gateway.

Wired as Terraform wires the cloud (see `wiring`): every function gets the same `PROMPTOPT_*`
variables; buckets, topics, dead-letter topics and push subscriptions exist; a signed-URL proxy
stands in for storage.googleapis.com and hosts the bridge that delivers "object finalized" events
to storage-triggered functions (the storage emulator sends none).

    with Stack(StackConfig.ephemeral()) as stack:
        httpx.get(f"{stack.gateway_url}/api/v1/health")

`python -m promptopt.local.stack` (what `scripts/dev` runs) starts it on fixed ports, prints a
summary and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from promptopt.local import wiring
from promptopt.local.dev_signer import write_dev_signing_key
from promptopt.local.emulators import ALL_EMULATORS, Emulators
from promptopt.local.functions_host import FunctionHost
from promptopt.local.ports import free_ports, is_port_free
from promptopt.local.process import ManagedProcess, Probe, StartupError, http_probe, stop_all, wait_all
from promptopt.local.supervisor import Supervisor
from promptopt.local.ticker import TOPIC as TICK_TOPIC
from promptopt.local.ticker import Ticker, interval_from_env
from promptopt.local.wiring import Wiring
from promptopt.manifest import load_manifest, repo_root
from promptopt.tooling.build import BuildError, build_all

log = logging.getLogger("promptopt.local.stack")

SIGNING_KEY_FILE = "signing-key.json"
READY_PATH = "/_promptopt/ready"  # the storage proxy's readiness (signed_url_proxy.READY_PATH)

# Port fields of StackConfig, with the variable and flag that override each.
PORT_FIELDS = {
    "gateway_port": "PROMPTOPT_GATEWAY_PORT",
    "firestore_port": "PROMPTOPT_FIRESTORE_PORT",
    "pubsub_port": "PROMPTOPT_PUBSUB_PORT",
    "storage_port": "PROMPTOPT_STORAGE_PORT",
    "tasks_port": "PROMPTOPT_TASKS_PORT",
    "storage_proxy_port": "PROMPTOPT_STORAGE_PROXY_PORT",
    "functions_base_port": "PROMPTOPT_FUNCTIONS_BASE_PORT",  # keep last (see StackConfig.ephemeral)
}
OTHER_FIELDS = {
    "host": "PROMPTOPT_LOCAL_HOST",
    "project": "PROMPTOPT_LOCAL_PROJECT",
    "state_dir": "PROMPTOPT_LOCAL_STATE_DIR",
}


class StackError(RuntimeError):
    """The stack cannot start as configured (busy port, another stack on the same state dir)."""


@dataclass(frozen=True)
class StackConfig:
    """Where the local stack listens and keeps its state.

    `functions_base_port` is the first function's port (the rest follow in manifest order);
    0 gives each function a free port. `storage_proxy_port` is the signed-URL stand-in for
    storage.googleapis.com. `state_dir` (logs, JWKS, signing key, lock) defaults to
    `<repo>/.promptopt/local`, or with `temporary_state` to a fresh temporary folder removed on stop.
    """

    host: str = "127.0.0.1"
    gateway_port: int = 8080
    firestore_port: int = 8681
    pubsub_port: int = 8682
    storage_port: int = 8683
    tasks_port: int = 8684
    storage_proxy_port: int = 8685
    functions_base_port: int = 8700
    project: str = "promptopt-local"
    state_dir: Path | None = None
    root: Path | None = None
    temporary_state: bool = False
    build: bool = True
    timeout_s: float = 90.0
    tick_interval_s: float | None = None  # None: PROMPTOPT_TICK_INTERVAL_S (default 30); 0: no ticks

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> StackConfig:
        """Defaults, then PROMPTOPT_* variables (see PORT_FIELDS, OTHER_FIELDS), then `overrides`."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in PORT_FIELDS.items():
            if environ.get(var):
                try:
                    values[name] = int(environ[var])
                except ValueError:
                    raise StackError(f"{var}={environ[var]!r} is not a port number") from None
        for name, var in OTHER_FIELDS.items():
            if environ.get(var):
                values[name] = Path(environ[var]) if name == "state_dir" else environ[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def ephemeral(cls, **overrides: Any) -> StackConfig:
        """Free random ports and a temporary state dir removed on stop (for tests and demos)."""
        ports = dict(zip(list(PORT_FIELDS)[:-1], free_ports(len(PORT_FIELDS) - 1), strict=True))
        values: dict[str, Any] = {**ports, "functions_base_port": 0, "temporary_state": True}
        values.update(overrides)
        return cls(**values)


class Stack:
    """The running local stack; a context manager. Start-up refuses busy ports before touching anything."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self.root = self.config.root or repo_root()
        self.state_dir = self.config.state_dir or self.root / ".promptopt" / "local"
        self._temporary = self.config.temporary_state and self.config.state_dir is None
        self.specs = load_manifest(self.root)
        self.startup_s: float | None = None
        self.emulators: Emulators | None = None
        self.functions: FunctionHost | None = None
        self.gateway: ManagedProcess | None = None
        self.storage_proxy: ManagedProcess | None = None
        self.wiring: Wiring | None = None
        self.supervisor: Supervisor | None = None
        self.ticker: Ticker | None = None
        self._gateway_url: str | None = None
        self._lock: IO[str] | None = None
        self._api_token_trust: Path | None = None

    # -- public view -------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """Base URL of the local API gateway."""
        if self._gateway_url is None:
            raise RuntimeError("the local gateway is not running (see the warning logged at start-up)")
        return self._gateway_url

    @property
    def dashboard_url(self) -> str:
        """The web dashboard, served through the gateway like the API."""
        return f"{self.gateway_url}/dashboard/"

    @property
    def function_urls(self) -> dict[str, str]:
        """Base URL of every function process, by function name."""
        return self.functions.urls if self.functions else {}

    @property
    def env(self) -> dict[str, str]:
        """Variables that point client libraries at the emulators (and GOOGLE_CLOUD_PROJECT)."""
        return self.emulators.env if self.emulators else {}

    @property
    def platform_env(self) -> dict[str, str]:
        """The `PROMPTOPT_*` wiring every function gets (Terraform's platform_env), function URLs included."""
        if self.wiring is None:
            return {}
        return {
            **self.wiring.env(),
            "PROMPTOPT_FUNCTION_URLS": json.dumps(self.function_urls, sort_keys=True),
        }

    @property
    def storage_proxy_url(self) -> str:
        """Base URL of the signed-URL proxy (where signed upload URLs point locally)."""
        return f"http://{self.config.host}:{self.config.storage_proxy_port}"

    def exited(self) -> dict[str, int]:
        """Children that have ended since start-up, with their exit status."""
        ended = {}
        for proc in self._processes():
            status = proc.exited()
            if status is not None:
                ended[proc.name] = status
        return ended

    def process_groups(self) -> dict[str, int]:
        """Running children by name (e.g. "gateway", "function prompts_get") with their process group."""
        return {proc.name: proc.pid for proc in self._processes() if proc.pid is not None}

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Stack:
        """Check ports, lock the state dir, build, start everything in parallel and wait for it."""
        if self._lock is not None:
            raise RuntimeError("this stack is already running")
        started = time.perf_counter()
        self._check_ports()
        if self._temporary:  # created only now, so a refused start leaves nothing behind
            self.state_dir = Path(tempfile.mkdtemp(prefix="promptopt-stack-"))
        self._take_lock()
        atexit.register(self.stop)
        try:
            self._start(started)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, started: float) -> None:
        cfg = self.config
        if cfg.build:
            build_all(self.root)
        key_file = self.state_dir / SIGNING_KEY_FILE
        self.wiring = wiring.plan(
            self.specs,
            project=cfg.project,
            signed_url_endpoint=self.storage_proxy_url,
            signing_key_file=str(key_file),
            access_env=self._access_env(),
        )
        self.emulators = Emulators(
            ALL_EMULATORS,
            project=cfg.project,
            host=cfg.host,
            ports={
                "firestore": cfg.firestore_port,
                "pubsub": cfg.pubsub_port,
                "storage": cfg.storage_port,
                "tasks": cfg.tasks_port,
            },
            state_dir=self.state_dir,
            queues=list(self.wiring.queues.values()),
            retry=self.wiring.queue_retry,
            dispatch=self.wiring.queue_dispatch,
        )
        self.functions = FunctionHost(
            self.specs,
            self.root / "build",
            env={**self.emulators.env, **self.wiring.env()},
            state_dir=self.state_dir,
            host=cfg.host,
            base_port=cfg.functions_base_port,
        )
        self.gateway = self._gateway_process(self.functions.urls)
        self.storage_proxy = self._storage_proxy_process(key_file, self.functions.urls)
        # Nothing connects to an emulator at import time, so every group can boot at once; the
        # stop order (gateway, storage proxy, functions, emulators) is what keeps shutdown quiet.
        self.emulators.launch()
        self.functions.launch()
        if self.gateway:
            self.gateway.start()
        # Functions read the key only when they sign, so it is made while they boot; the proxy
        # loads it at start.
        write_dev_signing_key(key_file, cfg.project)
        self.storage_proxy.start()
        wired = self._wire_in_background(time.monotonic() + cfg.timeout_s)
        wait_all(self._processes(), cfg.timeout_s)
        wired.result()
        if self.gateway:
            self._gateway_url = f"http://{cfg.host}:{cfg.gateway_port}"
        # A function that dies is started again, as Cloud Run starts a new instance; so are the
        # stateless gateway and storage stand-in. Emulators hold their data in memory: only reported.
        stateless = [*self.functions.processes, self.storage_proxy, *([self.gateway] if self.gateway else [])]
        self.supervisor = Supervisor(stateless, report_only=self.emulators.processes).start()
        self.ticker = self._ticker()
        self.startup_s = time.perf_counter() - started
        log.info("local stack ready in %.2fs (state in %s)", self.startup_s, self.state_dir)

    def _ticker(self) -> Ticker | None:
        """Cloud Scheduler's tick (no emulator exists): published while the stack runs."""
        assert self.wiring is not None
        assert self.emulators is not None
        interval = self.config.tick_interval_s
        interval = interval_from_env() if interval is None else interval
        topic = self.wiring.topics.get(TICK_TOPIC)
        if not interval or topic is None:
            return None
        return Ticker(self.emulators.env["PUBSUB_EMULATOR_HOST"], topic, interval).start()

    def _access_env(self) -> dict[str, str]:
        """The dev issuer's API-token identity for the exchange, and the gateway's trust in it."""
        from promptopt.local import dev_issuer

        self._api_token_trust = self.state_dir / "api-token-trust.json"
        key = dev_issuer.write_api_token_trust(self._api_token_trust)
        return {
            "PROMPTOPT_API_TOKEN_ISSUER": dev_issuer.API_TOKEN_ISSUER,
            "PROMPTOPT_API_TOKEN_AUDIENCE": dev_issuer.API_TOKEN_AUDIENCE,
            "PROMPTOPT_API_TOKEN_KEY_FILE": str(key),
            "PROMPTOPT_DEV_MEMBERS_FILE": str(dev_issuer.members_file()),
        }

    def _gateway_process(self, urls: Mapping[str, str]) -> ManagedProcess | None:
        missing = [m for m in ("promptopt.local.gateway", "promptopt.local.dev_issuer") if not _importable(m)]
        if missing:
            log.warning(
                "!!! LOCAL GATEWAY SKIPPED: %s not found; functions run but nothing routes /api/* "
                "on port %s and stack.gateway_url is unavailable !!!",
                ", ".join(missing),
                self.config.gateway_port,
            )
            return None
        from promptopt.local.dev_issuer import write_jwks

        spec = self.root / "terraform" / "api" / "openapi.yaml"
        if not spec.is_file():
            raise StartupError(f"{spec} is missing; generate it with scripts/gen-openapi")
        jwks = self.state_dir / "jwks.json"
        write_jwks(jwks)
        cfg = self.config
        argv = [sys.executable, "-m", "promptopt.local.gateway", "--spec", str(spec)]
        argv += ["--host", cfg.host, "--port", str(cfg.gateway_port), "--jwks-file", str(jwks)]
        argv += ["--trust", f"promptopt_api_token={self._api_token_trust}"]
        argv += ["--dev-sign-in"]  # the dashboard's local sign-in (never deployed)
        for spec_ in self.specs:
            if spec_.is_http:
                argv += ["--backend", f"{spec_.name}={urls[spec_.name]}"]
        return ManagedProcess(
            "gateway",
            argv,
            log_path=self.state_dir / "logs" / "gateway.log",
            probe=http_probe(f"http://{cfg.host}:{cfg.gateway_port}/"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def _wire_in_background(self, deadline: float) -> concurrent.futures.Future[None]:
        """Create buckets, topics and subscriptions as soon as Pub/Sub and Storage answer.

        Done beside the other children's boot (the Tasks emulator and the functions take longer), so
        it adds nothing to start-up. Push subscriptions may name a function not up yet: Pub/Sub retries.
        """
        assert self.wiring is not None
        assert self.emulators is not None
        assert self.functions is not None
        plan, urls, env = self.wiring, self.functions.urls, self.emulators.env
        needed = [p for p in self.emulators.processes if p.name in ("pubsub emulator", "storage emulator")]

        def wire() -> None:
            for proc in needed:
                proc.wait_ready(deadline)
            wiring.apply(
                plan,
                self.specs,
                urls,
                pubsub_host=env.get("PUBSUB_EMULATOR_HOST"),
                storage_url=env.get("STORAGE_EMULATOR_HOST"),
            )

        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                wire()
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, which raises it
                future.set_exception(exc)
            else:
                future.set_result(None)

        threading.Thread(target=run, name="stack-wiring", daemon=True).start()
        return future

    def _storage_proxy_process(self, key_file: Path, urls: Mapping[str, str]) -> ManagedProcess:
        """The signed-URL proxy, hosting the bridge that delivers finalized events to functions."""
        assert self.wiring is not None
        assert self.emulators is not None
        cfg = self.config
        storage = self.emulators.env["STORAGE_EMULATOR_HOST"]
        argv = [sys.executable, "-m", "promptopt.local.signed_url_proxy", "--host", cfg.host]
        argv += ["--port", str(cfg.storage_proxy_port), "--emulator", storage, "--key-file", str(key_file)]
        # The dashboard (on the gateway's origin) uploads dataset files here from the browser.
        for host in {cfg.host, "localhost"} if cfg.host == "127.0.0.1" else {cfg.host}:
            argv += ["--cors-origin", f"http://{host}:{cfg.gateway_port}"]
        for bucket, targets in wiring.storage_targets(self.wiring, self.specs, urls).items():
            argv += [arg for url in targets for arg in ("--bridge-target", f"{bucket}={url}")]
        return ManagedProcess(
            "storage proxy",
            argv,
            log_path=self.state_dir / "logs" / "storage-proxy.log",
            probe=_ok_probe(f"{self.storage_proxy_url}{READY_PATH}"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def stop(self) -> None:
        """Stop the gateway, storage proxy, functions, then the emulators; release the lock. Idempotent."""
        atexit.unregister(self.stop)
        if self.ticker is not None:
            self.ticker.stop()
            self.ticker = None
        if self.supervisor is not None:  # first, so nothing is restarted while stopping
            self.supervisor.stop()
            self.supervisor = None
        with _signals_held():
            stop_all(self._processes())
        self._gateway_url = None
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None
            if self._temporary:
                shutil.rmtree(self.state_dir, ignore_errors=True)

    def _processes(self) -> list[ManagedProcess]:
        """Children in start order (stop_all reverses it)."""
        procs: list[ManagedProcess] = []
        if self.emulators:
            procs += self.emulators.processes
        if self.functions:
            procs += self.functions.processes
        if self.storage_proxy:
            procs.append(self.storage_proxy)
        if self.gateway:
            procs.append(self.gateway)
        return procs

    def _ports(self) -> dict[str, int]:
        cfg = self.config
        ports = {f.removesuffix("_port"): getattr(cfg, f) for f in PORT_FIELDS if f != "functions_base_port"}
        if cfg.functions_base_port:
            for i, spec in enumerate(self.specs):
                ports[f"function {spec.name}"] = cfg.functions_base_port + i
        return ports

    def _check_ports(self) -> None:
        """Refuse to start, touching nothing, when any configured port is taken."""
        host = self.config.host
        busy = [(what, port) for what, port in self._ports().items() if not is_port_free(host, port)]
        if not busy:
            return
        first, port = busy[0]
        field = f"{first}_port" if f"{first}_port" in PORT_FIELDS else "functions_base_port"
        listing = ", ".join(f"{what} {port}" for what, port in busy)
        raise StackError(
            f"port {port} ({first}) on {host} is already in use (busy: {listing}). Is another local "
            f"stack (scripts/dev) running? Stop it, or pick other ports with "
            f"--{field.replace('_', '-')} / {PORT_FIELDS[field]}."
        )

    def _take_lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "stack.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise StackError(
                f"another local stack (pid {owner}) uses the state dir {self.state_dir}; stop it, or "
                "give this one its own with --state-dir / PROMPTOPT_LOCAL_STATE_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _ok_probe(url: str) -> Probe:
    """Ready once `url` answers 2xx (http_probe takes any answer; this one waits for "ready")."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def probe() -> bool:
        try:
            with opener.open(url, timeout=2):
                return True
        except (OSError, ValueError):  # HTTPError (503: not ready yet) is an OSError too
            return False

    return probe


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# -- command line (scripts/dev) ------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/dev",
        description="Run the local stack (emulators, functions as bundled, gateway) until Ctrl-C.",
    )
    for name, var in {**PORT_FIELDS, **OTHER_FIELDS}.items():
        kind: Any = int if name in PORT_FIELDS else (Path if name == "state_dir" else str)
        default = getattr(StackConfig, name, None) or "<repo>/.promptopt/local"
        parser.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=None, help=f"env {var} (default: {default})"
        )
    parser.add_argument("--no-build", action="store_true", help="use the bundles already in build/")
    return parser.parse_args(argv)


def _summary(stack: Stack) -> str:
    """The few lines scripts/dev prints once everything answers."""
    ports = sorted(int(url.rsplit(":", 1)[1]) for url in stack.function_urls.values())
    span = f" on ports {ports[0]}-{ports[-1]}" if ports else ""
    lines = [
        f"promptopt local stack ready in {stack.startup_s or 0:.1f}s",
        f"  gateway     {stack._gateway_url or 'NOT RUNNING (promptopt.local.gateway missing)'}",
        f"  dashboard   {stack.dashboard_url if stack._gateway_url else '-'} (any tenant and role)",
        *(f"  {k:<26} {v}" for k, v in sorted(stack.env.items())),
        f"  signed URLs {stack.storage_proxy_url} (uploads verified, then stored in the emulator)",
        f"  buckets     {', '.join(sorted(stack.wiring.buckets.values())) if stack.wiring else '-'}",
        f"  functions   {len(ports)}{span}",
        f"  scheduler   {_tick_text(stack)}",
        f"  logs        {stack.state_dir / 'logs'}",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _tick_text(stack: Stack) -> str:
    if stack.ticker is None:
        return "off (PROMPTOPT_TICK_INTERVAL_S=0): no schedule-tick messages"
    return f"a schedule-tick message every {stack.ticker.interval_s:g}s (PROMPTOPT_TICK_INTERVAL_S)"


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore Ctrl-C / SIGTERM while stopping: a second press must not abandon half the children."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same clean path as Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of scripts/dev: start, print the summary, wait for Ctrl-C or SIGTERM, stop."""
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    overrides = {name: getattr(args, name) for name in {**PORT_FIELDS, **OTHER_FIELDS}}
    stack: Stack | None = None
    try:
        stack = Stack(StackConfig.from_env(build=not args.no_build, **overrides))
        stack.start()
        print(_summary(stack), flush=True)
        _watch(stack)
    except KeyboardInterrupt:
        pass
    except (StackError, StartupError, BuildError) as err:
        print(f"dev: {err}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None and stack.startup_s is not None:
            print("stopping the local stack...", file=sys.stderr, flush=True)
        if stack is not None:
            stack.stop()
    return 0


def _watch(stack: Stack) -> None:
    """Block until interrupted; the stack's supervisor restarts and reports children that die."""
    while True:
        time.sleep(1)


if __name__ == "__main__":
    raise SystemExit(main())
