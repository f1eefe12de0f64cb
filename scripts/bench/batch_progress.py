"""What one poll of GET /api/v1/inference/batch/{job_id} costs for a running job, on the emulator.

A running job of `--rows` rows (chunks of `--chunk-size`) is written straight into a fresh
Firestore emulator in the layout the batch runner leaves behind: every chunk but the last done
(its chunk document with its totals), a result per row of the done chunks and half the last one,
whose chunk document shows those rows as the runner does while a chunk runs.
Then the batch_get function (its real app, as the gateway calls it) is polled `--polls` times
through a counting proxy (firestore_counter.py): latency per poll (median, p95) and Firestore
calls per poll by method. Firestore bills an aggregation query one read per 1,000 index entries
it scans (at least one), a document get one read.

`--sum-results` measures the way the GET used to read a running job, for comparison: the same
sums as aggregation queries over every result instead of over the chunk records.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

TENANT = "bench-progress"
JOB_ID = "bj_" + "0" * 20


def _seed(rows: int, chunk_size: int) -> tuple[int, int]:
    """Write the job; (chunk documents, result documents) written."""
    from promptopt.batch import paths
    from promptopt.clients import firestore_client

    now = datetime.now(UTC)
    n_chunks = max(1, math.ceil(rows / chunk_size))
    job = paths.job_ref(TENANT, JOB_ID)
    job.set(
        {
            "job_id": JOB_ID,
            "kind": "batch",
            "status": "running",
            "model": "sim:echo",
            "prompt": None,
            "source": {"type": "inline"},
            "output_prompt": "{input}",
            "total_rows": rows,
            "chunk_size": chunk_size,
            "chunks": n_chunks,
            "concurrency": 32,
            "cache": True,
            "budget": {},
            "created_at": now,
            "updated_at": now,
            "created_by": "bench",
        }
    )
    client = firestore_client()
    batch, pending, results = client.batch(), 0, 0

    def add(ref: object, doc: dict[str, object]) -> None:
        nonlocal batch, pending
        batch.set(ref, doc)
        pending += 1
        if pending == 500:
            batch.commit()
            batch, pending = client.batch(), 0

    for chunk in range(n_chunks):
        start, end = chunk * chunk_size, min(rows, (chunk + 1) * chunk_size)
        done = chunk < n_chunks - 1
        written = range(start, end if done else start + (end - start) // 2)
        for row in written:
            add(
                paths.results(job).document(paths.row_id(row)),
                {
                    "row": row,
                    "status": "succeeded",
                    "output": f"answer {row}",
                    "n_failed": 0,
                    "n_cached": 0,
                    "n_calls": 1,
                    "input_tokens": 20,
                    "output_tokens": 5,
                    "cost_usd": 0.00001,
                    "created_at": now,
                },
            )
            results += 1
        n = len(written)
        if not done:  # a running chunk shows the rows it has written, not yet its usage
            add(
                paths.chunks(job).document(paths.chunk_id(chunk)),
                {"chunk": chunk, "succeeded": n, "failed": 0, "cache_hits": 0},
            )
        else:
            add(
                paths.chunks(job).document(paths.chunk_id(chunk)),
                {
                    "chunk": chunk,
                    "state": "done",
                    "reserved_calls": 0,
                    "succeeded": n,
                    "failed": 0,
                    "cache_hits": 0,
                    "calls": n,
                    "input_tokens": 20 * n,
                    "output_tokens": 5 * n,
                    "tokens": 25 * n,
                    "cost_usd": round(0.00001 * n, 8),
                    "updated_at": now,
                },
            )
    if pending:
        batch.commit()
    return n_chunks, results


def _sum_results_instead() -> None:
    """Make the GET sum over the results (count and sums, two aggregation queries), as it once did."""
    from typing import Any

    from promptopt.batch import paths, view
    from promptopt.batch.aggregate import aggregate

    live = (
        ("failed", "n_failed"),
        ("cache_hits", "n_cached"),
        ("calls", "n_calls"),
        ("cost_usd", "cost_usd"),
    )
    tokens = (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"))

    def over_results(job: Any) -> dict[str, Any]:
        results = paths.results(job)
        values = aggregate(results, count="n", sums=live) | aggregate(results, sums=tokens)
        done, failed = int(values.get("n") or 0), int(values.get("failed") or 0)
        counts = ("cache_hits", "calls", "input_tokens", "output_tokens")
        totals: dict[str, Any] = {k: int(values.get(k) or 0) for k in counts}
        totals["cost_usd"] = float(values.get("cost_usd") or 0)
        return {**totals, "succeeded": done - failed, "failed": failed}

    view.live_totals = over_results  # type: ignore[assignment]


def _poll(polls: int, counter: object) -> dict[str, object]:
    import functions_framework

    from promptopt.auth import USERINFO_HEADER, encode_userinfo

    app = functions_framework.create_app(target="handle", source=str(ROOT / "functions/batch_get/main.py"))
    client = app.test_client()
    headers = {USERINFO_HEADER: encode_userinfo({"sub": "bench", "tenant": TENANT, "role": "viewer"})}
    path = f"/api/v1/inference/batch/{JOB_ID}"
    warm = client.get(path, headers=headers)  # imports, clients, channel
    assert warm.status_code == 200, warm.get_data(as_text=True)
    counter.counts.reset()  # type: ignore[attr-defined]
    latencies, body = [], {}
    for _ in range(polls):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
    calls = counter.counts.snapshot()["calls"]  # type: ignore[attr-defined]
    latencies.sort()
    return {
        "median_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[max(0, math.ceil(0.95 * polls) - 1)], 2),
        "firestore_calls_per_poll": {k: round(v / polls, 2) for k, v in sorted(calls.items())},
        "progress": body["progress"],
    }


def main() -> None:
    """Seed, poll, print one JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--sum-results", action="store_true", help="sum over every result (the old way)")
    args = parser.parse_args()
    if args.sum_results:
        _sum_results_instead()

    from firestore_counter import FirestoreCounter

    from promptopt import clients, config
    from promptopt.local.emulators import Emulators

    with Emulators(which=("firestore",), project="promptopt-bench") as emulators:
        counter = FirestoreCounter(emulators.env["FIRESTORE_EMULATOR_HOST"]).start()
        try:
            os.environ.update(emulators.env)
            os.environ["FIRESTORE_EMULATOR_HOST"] = counter.address
            os.environ.setdefault("PROMPTOPT_ENVIRONMENT", "local")
            config.reset()
            clients.reset()
            chunk_docs, result_docs = _seed(args.rows, args.chunk_size)
            report = {
                "summed_over": "results" if args.sum_results else "chunk records",
                "rows": args.rows,
                "chunk_size": args.chunk_size,
                "chunk_documents": chunk_docs,
                "result_documents": result_docs,
                "polls": args.polls,
                **_poll(args.polls, counter),
            }
        finally:
            counter.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
