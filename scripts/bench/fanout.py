"""Batch fan-out: N rows against a fake model with a fixed latency, our batch job vs. DSPy vs. a loop.

One run, one fake OpenAI-compatible server (fake_openai.py: fixed latency L, any concurrency,
counting requests, connections and the most requests in flight at once), the same N rows (unique
questions carrying a per-run nonce), all contenders measured back to back with the local stack up:

- ours: the whole local stack (gateway, functions as bundled, Firestore/Tasks/Pub/Sub emulators).
  POST /api/v1/inference/batch with the N rows inline, `model: openai:<name>` on the fake,
  `concurrency: C`, `chunk_size: S` and `cache: false` (our response cache off; the unique inputs
  would miss it anyway), then GET the job every --poll-s until it is terminal. Wall time runs from
  the POST to the job's `finished_at` (its terminal transition, on this machine's clock; when the
  poll saw it is printed too). One job per chunk size given with --chunk-size. An untimed job of C
  rows first warms the function processes (imports, clients), as DSPy's set-up is not timed either.
- DSPy: `dspy.Evaluate(num_threads=C)` of `dspy.Predict("question -> answer")` on
  `dspy.LM("openai/<name>", api_base=<fake>, cache=False, num_retries=0)` with DSPy's caches off,
  in its own venv (.venv-bench-dspy, pinned dspy) and process; only the Evaluate call is timed.
- sequential: a plain httpx loop over the first --sequential-rows rows, extrapolated to N (labelled).

Ideal = N * L / C. Platform overhead per row = (wall - ideal) * C / N: the extra time each call
slot spends per row it serves, beyond the model's latency. Firestore writes are counted by a gRPC
proxy between the functions and the emulator (firestore_counter.py): every document write the
emulator accepted from the POST until the job is terminal (+0.5 s), by kind of document.

The machine may be shared: each contender's line says how busy all CPUs were meanwhile and what
CPU time the contender itself used (ours: every process of the stack; DSPy: its process during
the Evaluate call; the fake model server is never counted). --repeat K runs DSPy and the jobs K
times, alternating, and compares each job with the DSPy run of the same round.

Usage: scripts/bench/fanout [--rows N] [--latency-ms L] [--concurrency C] [--chunk-size S[,S...]]
       [--repeat K] [--sequential-rows N] [--poll-s S] [--cache] [--skip-dspy] [--no-write-count]
       [--no-warmup] [--save-timelines DIR] [--root CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODEL = "bench-model"
TEMPLATE = "Answer with the code word only.\nQuestion: {question}"
FINAL = ("completed", "failed", "cancelled", "budget_exhausted")
TARGET_OF_IDEAL = 0.8
TARGET_VS_DSPY = 1.25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    """One contender's figures."""

    name: str
    rows: int
    wall_s: float
    requests: int
    max_in_flight: int
    connections: int
    cpu_s: float  # CPU time of the contender itself (never the fake model server)
    machine: dict[str, float]  # how busy the whole machine was meanwhile
    round: int = 1
    measured_rows: int | None = None  # sequential: rows actually run (wall_s is extrapolated)
    extra: dict[str, Any] = field(default_factory=dict)


def make_rows(n: int, nonce: str) -> list[dict[str, str]]:
    """Unique questions; the fake answers `a<i>` to the token `q<i>-` each one carries."""
    return [
        {"question": f"What is the code word for item {i:05d}? (q{i:05d}-{nonce})", "answer": f"a{i:05d}"}
        for i in range(n)
    ]


# -- measuring the machine ----------------------------------------------------------------------


def cpu_by_group() -> dict[int, float]:
    """CPU seconds (user + system, all threads) of every live process, summed per process group."""
    totals: dict[int, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[int(fields[2])] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (iowait and steal count as not ours to use)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


class Meter:
    """CPU use between start() and stop(): the machine's, ours (by process group) and this process's."""

    def __init__(self, groups: dict[str, int] | None = None, exclude_pgids: tuple[int, ...] = ()) -> None:
        self.groups = groups or {}
        self.exclude = exclude_pgids

    def start(self) -> Meter:
        self._ticks = machine_ticks()
        self._groups = cpu_by_group()
        self._self = resource.getrusage(resource.RUSAGE_SELF)
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._load = os.getloadavg()[0]
        self._wall = time.monotonic()
        return self

    def stop(self) -> Meter:
        busy0, total0 = self._ticks
        busy1, total1 = machine_ticks()
        groups = cpu_by_group()
        me = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall_s = time.monotonic() - self._wall
        cpus = os.cpu_count() or 1
        self.machine = {
            "busy_pct": 100 * (busy1 - busy0) / max(1, total1 - total0),
            "cpus": cpus,
            "load_start": self._load,
            "load_end": os.getloadavg()[0],
        }
        self.by_group = {
            name: groups.get(pgid, 0.0) - self._groups.get(pgid, 0.0) for name, pgid in self.groups.items()
        }
        self.self_s = (me.ru_utime + me.ru_stime) - (self._self.ru_utime + self._self.ru_stime)
        self.children_s = (children.ru_utime + children.ru_stime) - (
            self._children.ru_utime + self._children.ru_stime
        )
        return self


# -- the fake model -----------------------------------------------------------------------------


class FakeServer:
    """fake_openai.py in its own process (so its event loop never waits on ours)."""

    def __init__(self, latency_ms: float) -> None:
        argv = [sys.executable, str(HERE / "fake_openai.py"), "--latency-ms", str(latency_ms)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"the fake model server did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def reset(self) -> None:
        self.client.post("/_reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self.client.get("/_stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def timeline(self) -> list[list[float]]:
        response = self.client.get("/_timeline")
        response.raise_for_status()
        spans: list[list[float]] = response.json()
        return spans

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- contenders -----------------------------------------------------------------------------------


def run_sequential(fake: FakeServer, rows: list[dict[str, str]], n: int, total: int) -> Result:
    """A plain loop of calls, one at a time, with the body our openai provider sends."""
    fake.reset()
    sample = rows[:n]
    meter = Meter().start()
    with httpx.Client(timeout=30, headers={"Authorization": "Bearer sk-bench"}) as client:
        started = time.perf_counter()
        for row in sample:
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": TEMPLATE.format(question=row["question"])}],
                "temperature": 0.0,
                "max_tokens": 1024,
            }
            response = client.post(f"{fake.url}/v1/chat/completions", json=body)
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"]
            if row["answer"] not in text:
                raise RuntimeError(f"unexpected answer {text!r}")
        wall = time.perf_counter() - started
    meter.stop()
    stats = fake.stats()
    return Result(
        "sequential loop",
        total,
        wall * total / n,
        stats["requests"],
        stats["max_in_flight"],
        stats["connections"],
        meter.self_s * total / n,
        meter.machine,
        measured_rows=n,
        extra={"measured_s": wall},
    )


def run_dspy(fake: FakeServer, rows_file: Path, n: int, python: Path, threads: int, round_: int) -> Result:
    """DSPy's Evaluate in its own venv and process; only the Evaluate call is timed (there)."""
    fake.reset()
    argv = [str(python), str(HERE / "fanout_dspy.py"), str(rows_file), "--api-base", f"{fake.url}/v1"]
    argv += ["--model", MODEL, "--threads", str(threads)]
    meter = Meter().start()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    meter.stop()
    if done.returncode != 0:
        raise RuntimeError(f"the DSPy run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    stats = fake.stats()
    spans = fake.timeline()
    if report["rows"] != n or report["score"] < 100.0:
        print(
            f"warning: DSPy parsed the expected answer for only {report['score']:.1f}% of rows",
            file=sys.stderr,
        )
    return Result(
        f"DSPy {report['dspy']} Evaluate",
        report["rows"],
        report["wall_s"],
        stats["requests"],
        stats["max_in_flight"],
        stats["connections"],
        float(report.get("cpu_s", meter.children_s)),  # during the Evaluate call, as ours is warm
        meter.machine,
        round=round_,
        extra={**report, "fake": stats, "timeline": {"spans": spans}},
    )


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_platform(
    api: httpx.Client,
    fake: FakeServer,
    rows: list[dict[str, str]],
    *,
    chunk_size: int,
    concurrency: int,
    cache: bool,
    poll_s: float,
    counter: Any,
    nonce: str,
    groups: dict[str, int],
    round_: int = 1,
) -> Result:
    """One batch job through the gateway, from the POST to the job's terminal status."""
    body = {
        "output_prompt": TEMPLATE,
        "rows": [{"inputs": {"question": r["question"]}} for r in rows],
        "model": f"openai:{MODEL}",
        "chunk_size": chunk_size,
        "concurrency": concurrency,
        "cache": cache,
    }
    payload = json.dumps(body).encode()
    # A fresh key per job (a client's retry of this POST would reuse it and find the same job).
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": f"fanout-{nonce}-{secrets.token_hex(8)}",
    }
    fake.reset()
    if counter is not None:
        counter.counts.reset()
    polls = 0
    meter = Meter(groups).start()
    post_epoch, post_mono = time.time(), time.monotonic()
    created = api.post("/api/v1/inference/batch", content=payload, headers=headers)
    post_s = time.monotonic() - post_mono
    if created.status_code != 202 or created.headers.get("Idempotent-Replayed"):
        raise RuntimeError(f"POST /inference/batch: {created.status_code} {created.text[:2000]}")
    job = created.json()
    job_id = job["job_id"]
    while job["status"] not in FINAL:
        if time.monotonic() - post_mono > 1800:
            raise TimeoutError(f"job {job_id} not terminal after 30 minutes: {job['progress']}")
        time.sleep(poll_s)
        response = api.get(f"/api/v1/inference/batch/{job_id}")
        response.raise_for_status()
        job = response.json()
        polls += 1
    seen_s = time.monotonic() - post_mono
    meter.stop()
    wall = _epoch(job["finished_at"]) - post_epoch
    time.sleep(0.5)  # late writes of the completion step (none expected) still count
    writes = counter.counts.snapshot() if counter is not None else None
    stats = fake.stats()
    spans = fake.timeline()
    progress, usage = job["progress"], job["usage"]
    if job["status"] != "completed" or progress["succeeded"] != len(rows) or usage["calls"] != len(rows):
        raise RuntimeError(f"job {job_id} ended {job['status']} with {progress}, {usage}; see the stack logs")
    return Result(
        f"ours, chunk {chunk_size}",
        len(rows),
        wall,
        stats["requests"],
        stats["max_in_flight"],
        stats["connections"],
        sum(meter.by_group.values()),
        meter.machine,
        round=round_,
        extra={
            "job_id": job_id,
            "chunks": job["chunks"],
            "post_s": post_s,
            "seen_s": seen_s,
            "polls": polls,
            "calls": usage["calls"],
            "cache_hits": progress["cache_hits"],
            "first_call_s": (stats["first_monotonic"] or post_mono) - post_mono,
            "last_answer_s": (stats["last_monotonic"] or post_mono) - post_mono,
            "fake": stats,
            "writes": writes,
            "cpu_by_group": meter.by_group,
            "bench_cpu_s": meter.self_s,
            "timeline": {"post_monotonic": post_mono, "terminal_s": wall, "spans": spans},
        },
    )


# -- the stack ----------------------------------------------------------------------------------


@contextmanager
def local_stack(count_writes: bool, root: Path | None = None) -> Iterator[tuple[Any, Any]]:
    """The whole local stack; with `count_writes`, the functions reach Firestore through the counter."""
    from promptopt.local import stack as stack_module

    config = stack_module.StackConfig.ephemeral(root=root)
    counter = None
    real_host = stack_module.FunctionHost
    if count_writes:
        from firestore_counter import FirestoreCounter

        counter = FirestoreCounter(f"{config.host}:{config.firestore_port}", host=config.host).start()
        address = counter.address

        def counted_host(*args: Any, env: dict[str, str], **kwargs: Any) -> Any:
            return real_host(*args, env={**env, "FIRESTORE_EMULATOR_HOST": address}, **kwargs)

        stack_module.FunctionHost = counted_host  # type: ignore[misc,assignment]
    try:
        with stack_module.Stack(config) as stack:
            yield stack, counter
    finally:
        stack_module.FunctionHost = real_host  # type: ignore[misc]
        if counter is not None:
            counter.stop()


# -- report -------------------------------------------------------------------------------------


def _short(group: str) -> str:
    return group.removeprefix("function ").replace(" emulator", "")


def print_report(results: list[Result], args: argparse.Namespace) -> None:
    n, c, latency_s = args.rows, args.concurrency, args.latency_ms / 1000
    ideal = n * latency_s / c
    dspy_of = {r.round: r for r in results if r.name.startswith("DSPy")}
    rounds = max((r.round for r in results), default=1)
    print()
    print(
        f"{n:,} rows, fake model latency {args.latency_ms:g} ms, concurrency {c}: "
        f"ideal N*L/C = {ideal:.2f} s ({n / ideal:.1f} rows/s); {os.cpu_count()} CPUs"
    )
    header = (
        f"{'contender':<36} {'rows':>6} {'wall s':>7} {'rows/s':>7} {'of ideal':>8} {'vs DSPy':>7}"
        f" {'max conc':>8} {'requests':>8} {'conns':>6} {'CPU ms/row':>10} {'machine busy':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        name = r.name + (f" #{r.round}" if rounds > 1 else "")
        if r.measured_rows:
            name += f" ({r.measured_rows} run, extrap.)"
        dspy = dspy_of.get(r.round)
        vs = f"{r.wall_s / dspy.wall_s:.2f}x" if dspy else "-"
        busy = f"{r.machine['busy_pct']:.0f}% L{r.machine['load_end']:.1f}"
        print(
            f"{name:<36} {r.rows:>6,} {r.wall_s:>7.2f} {r.rows / r.wall_s:>7.1f} {ideal / r.wall_s:>8.2f}"
            f" {vs:>7} {r.max_in_flight:>8} {r.requests:>8} {r.connections:>6}"
            f" {1000 * r.cpu_s / r.rows:>10.2f} {busy:>12}"
        )
    print(
        "(max conc: most requests the model server had in flight at once; conns: TCP connections they "
        "came on;\n CPU ms/row: the contender's own CPU time per row; machine busy: all CPUs meanwhile, "
        "with the 1-min load average)"
    )
    print()
    for dspy in dspy_of.values():
        fake = dspy.extra["fake"]
        print(
            f"DSPy #{dspy.round}: engine {dspy.extra.get('engine')}, score {dspy.extra['score']:.1f}% "
            f"(every answer parsed), mean in flight {fake['mean_in_flight']:.1f}"
        )
    for r in results:
        if not r.name.startswith("ours"):
            continue
        x, fake = r.extra, r.extra["fake"]
        dspy = dspy_of.get(r.round)
        overhead_ms = (r.wall_s - ideal) * c / n * 1000
        gaps = sorted(fake["gaps_ms"])
        of_ideal = ideal / r.wall_s
        verdict = [f"{'PASS' if of_ideal >= TARGET_OF_IDEAL else 'MISS'} >= {TARGET_OF_IDEAL} of ideal"]
        if dspy:
            ratio = r.wall_s / dspy.wall_s
            verdict.append(f"{'PASS' if ratio <= TARGET_VS_DSPY else 'MISS'} <= {TARGET_VS_DSPY}x DSPy")
        label = r.name + (f" #{r.round}" if rounds > 1 else "")
        print(f"{label} ({x['chunks']} chunks, job {x['job_id']}): {'; '.join(verdict)}")
        line = f"  platform overhead per row: {overhead_ms:.1f} ms = (wall - ideal) * C / N"
        if dspy:
            line += f"; {(r.wall_s - dspy.wall_s) * c / n * 1000:.1f} ms = (wall - DSPy wall) * C / N"
        print(line)
        print(
            f"  timeline from the POST: 202 after {x['post_s']:.2f} s, "
            f"first model call {x['first_call_s']:.2f} s, "
            f"last answer {x['last_answer_s']:.2f} s, terminal {r.wall_s:.2f} s "
            f"(a poll saw it at {x['seen_s']:.2f} s; {x['polls']} polls)"
        )
        print(
            f"  while calls ran: mean in flight {fake['mean_in_flight']:.1f} of {c}; nothing in flight "
            f"{fake['idle_s']:.2f} s in {len(gaps)} gaps"
            + (f" (median {gaps[len(gaps) // 2]:.0f} ms, max {gaps[-1]:.0f} ms)" if gaps else "")
        )
        top = sorted(x["cpu_by_group"].items(), key=lambda kv: -kv[1])
        cpu = ", ".join(f"{_short(k)} {v:.2f}" for k, v in top if v >= 0.05)
        print(
            f"  CPU s: {r.cpu_s:.2f} in the stack ({cpu}); "
            f"bench process (poller, write counter) {x['bench_cpu_s']:.2f}"
        )
        writes = x["writes"]
        if writes is not None:
            total = sum(writes["writes"].values())
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(writes["writes"].items(), key=lambda kv: -kv[1]))
            print(f"  Firestore writes: {total} = {total / n:.3f} per row ({kinds})")
            if writes["rejected"]:
                print(f"  rejected writes (failed preconditions, not counted above): {writes['rejected']}")
            calls = ", ".join(f"{k} {v}" for k, v in sorted(writes["calls"].items(), key=lambda kv: -kv[1]))
            print(f"  Firestore calls: {calls}")
    seq = next((r for r in results if r.measured_rows), None)
    if seq:
        print(
            f"sequential: {seq.measured_rows} rows in {seq.extra['measured_s']:.2f} s "
            f"({seq.measured_rows / seq.extra['measured_s']:.2f} rows/s); "
            f"{n:,} rows extrapolated to {seq.wall_s:.1f} s"
        )
    if rounds > 1:
        print()
        print(f"medians over {rounds} rounds:")
        names = list(dict.fromkeys(r.name for r in results if not r.measured_rows))
        for name in names:
            runs = [r for r in results if r.name == name]
            walls = [r.wall_s for r in runs]
            median = statistics.median(walls)
            line = f"  {name:<30} wall {median:6.2f} s, of ideal {ideal / median:.2f}"
            ratios = [r.wall_s / dspy_of[r.round].wall_s for r in runs if r.round in dspy_of]
            if ratios and not name.startswith("DSPy"):
                line += f", vs DSPy of the same round {statistics.median(ratios):.2f}x"
            print(line + f" (walls: {', '.join(f'{w:.2f}' for w in walls)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=2000, help="rows per contender (inline rows: at most 2,000)"
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="the fake model's fixed latency")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="calls in flight (ours per chunk, DSPy threads)"
    )
    parser.add_argument(
        "--chunk-size",
        default="50,64,256",
        help="rows per task; a comma-separated list runs one job per size",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds of DSPy + our jobs, alternating")
    parser.add_argument(
        "--sequential-rows", type=int, default=200, help="rows the sequential loop runs (0: skip)"
    )
    parser.add_argument("--poll-s", type=float, default=0.25, help="GET interval while a job runs")
    parser.add_argument(
        "--cache", action="store_true", help="leave our response cache on (inputs still unique)"
    )
    parser.add_argument("--skip-dspy", action="store_true")
    parser.add_argument("--dspy-python", type=Path, default=ROOT / ".venv-bench-dspy" / "bin" / "python")
    parser.add_argument("--no-write-count", action="store_true", help="no Firestore counting proxy")
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="time the first job too (cold function processes)",
    )
    parser.add_argument(
        "--save-timelines", type=Path, help="write each job's model-call timeline (JSON) here"
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="run the functions of this checkout instead (e.g. a copy holding an experimental change)",
    )
    args = parser.parse_args(argv)
    chunk_sizes = [int(s) for s in str(args.chunk_size).split(",") if s.strip()]
    if not args.skip_dspy and not args.dspy_python.exists():
        parser.error(f"{args.dspy_python} is missing: run scripts/bench/fanout (it creates .venv-bench-dspy)")
    if args.rows > 2000:
        parser.error("--rows: a job takes at most 2,000 inline rows")

    nonce = secrets.token_hex(4)
    rows = make_rows(args.rows, nonce)
    results: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="promptopt-bench-fanout-"))
    rows_file = tmp / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fake = FakeServer(args.latency_ms)
    os.environ.update(
        {
            "PROMPTOPT_OPENAI_BASE_URL": f"{fake.url}/v1",
            "PROMPTOPT_SECRET_OPENAI_API_KEY": "sk-bench",
            "PROMPTOPT_FORBID_REAL_MODELS": "1",
            "PROMPTOPT_BATCH_CONCURRENCY": str(args.concurrency),
            "PROMPTOPT_BATCH_CHUNK_SIZE": str(chunk_sizes[0]),
        }
    )
    os.environ.setdefault("PROMPTOPT_DEV_ISSUER_DIR", str(tmp / "issuer"))
    try:
        print("starting the local stack ...", file=sys.stderr, flush=True)
        with local_stack(not args.no_write_count, args.root) as (stack, counter):
            from promptopt.local.dev_issuer import mint_token

            print(f"stack ready in {stack.startup_s:.1f} s", file=sys.stderr, flush=True)
            groups = stack.process_groups()
            token = mint_token(tenant="bench", role="editor", subject="bench")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=120) as api:
                common = {
                    "concurrency": args.concurrency,
                    "cache": args.cache,
                    "poll_s": args.poll_s,
                    "counter": counter,
                    "groups": groups,
                }
                if args.warmup:
                    print("warm-up job (not timed) ...", file=sys.stderr, flush=True)
                    warm = run_platform(
                        api,
                        fake,
                        make_rows(args.concurrency, nonce + "w"),
                        chunk_size=args.concurrency,
                        nonce=nonce + "w",
                        **common,
                    )
                    print(f"  warm-up POST took {warm.extra['post_s']:.2f} s", file=sys.stderr, flush=True)
                time.sleep(2)  # let start-up work settle before timing anything
                if args.sequential_rows:
                    print(f"sequential loop, {args.sequential_rows} rows ...", file=sys.stderr, flush=True)
                    results.append(
                        run_sequential(fake, rows, min(args.sequential_rows, args.rows), args.rows)
                    )
                for round_ in range(1, args.repeat + 1):
                    if not args.skip_dspy:
                        print(f"[{round_}] DSPy Evaluate ...", file=sys.stderr, flush=True)
                        results.append(
                            run_dspy(fake, rows_file, len(rows), args.dspy_python, args.concurrency, round_)
                        )
                    for size in chunk_sizes:
                        print(f"[{round_}] our batch job, chunk size {size} ...", file=sys.stderr, flush=True)
                        results.append(
                            run_platform(
                                api, fake, rows, chunk_size=size, nonce=nonce, round_=round_, **common
                            )
                        )
    finally:
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print_report(results, args)
    if args.save_timelines:
        args.save_timelines.mkdir(parents=True, exist_ok=True)
        for r in results:
            if "timeline" in r.extra:
                name = f"{r.name.replace(', ', '-').replace(' ', '_')}-{r.round}.json"
                (args.save_timelines / name).write_text(json.dumps(r.extra["timeline"]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
