"""What the per-tenant rate limiter adds to a request, on the Firestore emulator.

Times `ratelimit.admit` (one event create + one count() aggregation) for admitted requests, and a
refused request (remembered by the instance: no Firestore call), each sequentially from one
process, after a warm-up. Prints p50/p90/p99 in milliseconds.

    scripts/bench/rate-limit [--requests 400]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
import uuid


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(pick(0.5), 2), "p90": round(pick(0.9), 2), "p99": round(pick(0.99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    from promptopt.local.emulators import Emulators

    with Emulators(which=["firestore"], project="promptopt-bench") as emulators:
        os.environ.update(emulators.env)
        os.environ["PROMPTOPT_RATE_LIMITS"] = json.dumps({"bench": {"limit": 10**9, "window_s": 60},
                                                          "tiny": {"limit": 1, "window_s": 60}})  # fmt: skip
        from promptopt import clients, config
        from promptopt.access import ratelimit
        from promptopt.errors import TooManyRequests

        config.reset()
        clients.reset()
        tenant = "bench-" + uuid.uuid4().hex[:8]
        for _ in range(30):  # warm-up: client, channel, emulator JIT
            ratelimit.admit("bench", tenant)
        admitted = []
        for _ in range(args.requests):
            started = time.perf_counter()
            ratelimit.admit("bench", tenant)
            admitted.append((time.perf_counter() - started) * 1000)
        # The two Firestore calls an admission makes, alone, for scale: a document create and a
        # count() aggregation over the window.
        from datetime import UTC, datetime, timedelta

        from google.cloud.firestore_v1.aggregation import AggregationQuery
        from google.cloud.firestore_v1.base_query import FieldFilter

        events = clients.firestore_client().collection("bench").document(tenant).collection("e")
        create_only, count_only = [], []
        for i in range(args.requests):
            started = time.perf_counter()
            events.document(f"{i:06d}").create({"at": datetime.now(UTC)})
            create_only.append((time.perf_counter() - started) * 1000)
        since = datetime.now(UTC) - timedelta(seconds=60)
        for _ in range(args.requests):
            started = time.perf_counter()
            aggregation = AggregationQuery(events.where(filter=FieldFilter("at", ">", since)))
            aggregation.count(alias="n")
            list(aggregation.get())
            count_only.append((time.perf_counter() - started) * 1000)
        ratelimit.admit("tiny", tenant)
        refused = []
        for _ in range(args.requests):
            started = time.perf_counter()
            with contextlib.suppress(TooManyRequests):
                ratelimit.admit("tiny", tenant)
            refused.append((time.perf_counter() - started) * 1000)
    print(
        json.dumps(
            {
                "requests": args.requests,
                "admitted_ms": _percentiles(admitted),
                "admitted_mean_ms": round(statistics.mean(admitted), 2),
                "refused_ms": _percentiles(refused),
                "firestore_create_alone_ms": _percentiles(create_only),
                "firestore_count_alone_ms": _percentiles(count_only),
                "window_events_at_end": args.requests + 30,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
