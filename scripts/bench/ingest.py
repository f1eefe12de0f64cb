"""Dataset ingestion through the whole local stack: rows/s and peak memory of the ingest process.

For each size (default 100,000 rows, then 10x that) a fresh stack starts, a CSV is generated, a
dataset is created through the gateway, the file is PUT to the signed upload URL, and the storage
bridge's event makes the ingest function turn it into a ready version. Ingest time runs from the
end of the upload until GET shows the version ready (it includes the bridge's polling, <= 0.25 s).
Peak memory is the high-water RSS (VmHWM) of the ingest function's processes; a streaming ingest
keeps it about the same for a 10x larger file.

Usage: scripts/bench/ingest [--rows N] [--scale K]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from promptopt.local.dev_issuer import mint_token
from promptopt.local.stack import Stack, StackConfig

INGEST = "function datasets_ingest"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "sigma", "river", "stone"]


def write_csv(path: Path, rows: int) -> int:
    """A CSV of `rows` question/context/answer rows (~120 bytes each); returns its size."""
    rng = random.Random(rows)  # noqa: S311 - reproducible test data, not secrets
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("question,context,answer\n")
        for i in range(rows):
            words = " ".join(rng.choices(WORDS, k=8))
            out.write(f'"What is {i} times {i % 97}?","{words}, with a comma",{i * (i % 97)}\n')
    return path.stat().st_size


def group_pids(pgid: int) -> list[int]:
    """Every live process in a process group (the functions-framework server and any workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def memory_kib(pgid: int, field: str) -> int:
    """The sum over the group of one /proc/<pid>/status field (VmRSS now, VmHWM the peak)."""
    total = 0
    for pid in group_pids(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as source:
        while data := source.read(size):
            yield data


def run_one(rows: int, workdir: Path) -> dict[str, Any]:
    csv_path = workdir / f"bench-{rows}.csv"
    size = write_csv(csv_path, rows)
    with Stack(StackConfig.ephemeral()) as stack:
        pgid = stack.process_groups()[INGEST]
        token = mint_token(tenant="bench", role="admin", subject="bench")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=60) as api:
            body = {
                "name": f"bench-{rows}",
                "format": "csv",
                "mapping": {"inputs": ["question", "context"], "reference": "answer"},
                "upload_max_bytes": size,
            }
            created = api.post("/api/v1/datasets", json=body)
            created.raise_for_status()
            upload = created.json()["upload"]
            dataset_id = created.json()["dataset"]["dataset_id"]
            idle_kib = memory_kib(pgid, "VmRSS")
            put_started = time.perf_counter()
            put = httpx.put(
                upload["url"],
                content=chunks(csv_path),
                headers={**upload["headers"], "Content-Length": str(size)},
                timeout=600,
            )
            put.raise_for_status()
            uploaded = time.perf_counter()
            while True:
                version = api.get(f"/api/v1/datasets/{dataset_id}").json()["versions"][0]
                if version["status"] in ("ready", "failed"):
                    break
                if time.perf_counter() - uploaded > 1800:
                    raise TimeoutError("ingest did not finish in 30 minutes")
                time.sleep(0.1)
            done = time.perf_counter()
            if version["status"] != "ready":
                raise RuntimeError(f"ingest failed: {version['failure']}")
            peak_kib = memory_kib(pgid, "VmHWM")
    csv_path.unlink()
    seconds = done - uploaded
    return {
        "rows": version["rows_ok"],
        "mb": size / 1e6,
        "upload_s": uploaded - put_started,
        "ingest_s": seconds,
        "rows_per_s": version["rows_ok"] / seconds,
        "idle_mib": idle_kib / 1024,
        "peak_mib": peak_kib / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--scale", type=int, default=10, help="the second run has rows x scale (0: skip it)")
    args = parser.parse_args(argv)
    sizes = [args.rows] + ([args.rows * args.scale] if args.scale else [])
    os.environ["PROMPTOPT_DATASET_MAX_ROWS"] = str(max(sizes) + 1)
    os.environ.setdefault("PROMPTOPT_DEV_ISSUER_DIR", tempfile.mkdtemp(prefix="promptopt-bench-issuer-"))
    results = []
    with tempfile.TemporaryDirectory(prefix="promptopt-bench-ingest-") as tmp:
        for rows in sizes:
            print(f"ingesting {rows:,} rows ...", file=sys.stderr, flush=True)
            results.append(run_one(rows, Path(tmp)))
    columns = ["file MB", "upload s", "ingest s", "rows/s", "idle MiB", "peak MiB"]
    print(f"{'rows':>10} " + " ".join(f"{c:>9}" for c in columns))
    for r in results:
        print(
            f"{r['rows']:>10,} {r['mb']:>9.1f} {r['upload_s']:>9.2f} {r['ingest_s']:>9.2f} "
            f"{r['rows_per_s']:>9,.0f} {r['idle_mib']:>9.1f} {r['peak_mib']:>9.1f}"
        )
    if len(results) == 2:
        ratio = results[1]["peak_mib"] / results[0]["peak_mib"]
        print(f"peak memory, {args.scale}x rows vs 1x: {ratio:.2f}x (streaming keeps this near 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
