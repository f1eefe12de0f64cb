"""Latency of GET /api/v1/prompts/{id} through the local gateway vs. a direct Firestore get.

Both are measured in the same run against the same emulator, each at the same concurrency,
so the difference is what the gateway plus the function add.

Usage: scripts/bench/gateway-latency [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from promptopt.local.stack import Stack, StackConfig


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def drive(call: Callable[[], Awaitable[None]], total: int, concurrency: int) -> list[float]:
    """Run `total` calls with `concurrency` workers; per-call latencies in seconds."""
    latencies: list[float] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def through_gateway(url: str, token: str, total: int, concurrency: int) -> list[float]:
    """Latencies of GETs through the gateway."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {token}"}) as s:

        async def call() -> None:
            async with s.get(url) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{r.status}: {await r.text()}")

        await drive(call, concurrency * 2, concurrency)  # warm connections and instances
        return await drive(call, total, concurrency)


def direct_gets(tenant: str, prompt_id: str, total: int, concurrency: int) -> list[float]:
    """Latencies of one Firestore document get each, from a thread pool of `concurrency`."""
    from promptopt import clients, config

    config.reset()
    clients.reset()
    doc = clients.firestore_client().document(f"tenants/{tenant}/prompts/{prompt_id}/versions/00000001")
    doc.get()

    def one(_: int) -> float:
        started = time.perf_counter()
        doc.get()
        return time.perf_counter() - started

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency * 2)))
        return list(pool.map(one, range(total)))


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by every live process in a process group."""
    pids = subprocess.run(
        ["pgrep", "-g", str(pgid)], capture_output=True, text=True, check=False
    ).stdout.split()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> int:
    """Measure and print p50/p99 for both paths."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    from promptopt.local.dev_issuer import mint_token

    with tempfile.TemporaryDirectory() as issuer_dir:
        os.environ["PROMPTOPT_DEV_ISSUER_DIR"] = issuer_dir
        with Stack(StackConfig.ephemeral()) as stack:
            os.environ.update(stack.env)
            tenant = "bench"
            token = mint_token(tenant=tenant, role="editor", issuer_dir=Path(issuer_dir))
            import httpx

            created = httpx.post(
                f"{stack.gateway_url}/api/v1/prompts",
                json={"output_prompt": "Q: {input}"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            created.raise_for_status()
            pid = created.json()["prompt_id"]
            url = f"{stack.gateway_url}/api/v1/prompts/{pid}"
            direct = direct_gets(tenant, pid, args.requests, args.concurrency)
            groups = {
                name: pgid
                for name, pgid in stack.process_groups().items()
                if name in ("gateway", "function prompts_get") or name.startswith("firestore")
            }
            cpu_before = {name: cpu_seconds(pgid) for name, pgid in groups.items()}
            gateway = asyncio.run(through_gateway(url, token, args.requests, args.concurrency))
            calls = args.requests + 2 * args.concurrency
            cpu_ms = {name: 1000 * (cpu_seconds(g) - cpu_before[name]) / calls for name, g in groups.items()}
    p50d, p99d = percentile(direct, 50), percentile(direct, 99)
    p50g, p99g = percentile(gateway, 50), percentile(gateway, 99)
    print(f"{args.requests} requests, {args.concurrency} concurrent clients (2-core machine)")
    print(f"{'path':<42}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    print(
        f"{'direct Firestore emulator get':<42}{p50d:>9.1f}{p99d:>9.1f}{1000 * statistics.mean(direct):>9.1f}"
    )
    label = "GET /api/v1/prompts/{id} via gateway"
    print(f"{label:<42}{p50g:>9.1f}{p99g:>9.1f}{1000 * statistics.mean(gateway):>9.1f}")
    print(f"gateway + function add {p50g - p50d:.1f} ms at p50 (target <= 10 ms)")
    spent = ", ".join(f"{name} {value:.2f} ms" for name, value in sorted(cpu_ms.items()))
    print(f"CPU per request via the gateway: {spent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
