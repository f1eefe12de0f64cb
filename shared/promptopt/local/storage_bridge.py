r"""Eventarc's "object finalized" for the storage emulator, which sends no notifications itself.

The bridge lists each watched bucket every `interval_s` (about 1 ms a listing) and, for every
(name, generation) it has not seen, POSTs a binary-mode CloudEvent to each function watching that
bucket, as Eventarc would: the same headers, the object resource as body, the same `ce-id` on every
retry of one event. A failed delivery (non-2xx or no answer) is retried with exponential backoff
and dropped with an ERROR log after `RetryPolicy.max_attempts`. Objects present when the bridge
starts are its baseline and are not replayed.

    python -m promptopt.local.storage_bridge --emulator http://127.0.0.1:8683 \
        --target promptopt-local-datasets=http://127.0.0.1:8712

The local stack runs it inside the signed-URL proxy process (see `signed_url_proxy`).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import http.client
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from promptopt.backoff import Backoff

log = logging.getLogger("promptopt.local.storage_bridge")

FINALIZED = "google.cloud.storage.object.v1.finalized"
# Local addresses only: an http_proxy in the environment must not intercept them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Eventarc's payload is the object resource; these emulator-only fields are not part of it.
_NOT_IN_EVENT = frozenset({"acl"})
_STRING_FIELDS = ("generation", "metageneration", "size")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one event is redelivered (Eventarc retries with backoff too)."""

    max_attempts: int = 8
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    multiplier: float = 2.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        policy = Backoff(
            initial_s=self.initial_backoff_s, max_s=self.max_backoff_s, multiplier=self.multiplier
        )
        return policy.delay(attempt - 1)


def event_id(bucket: str, name: str, generation: str) -> str:
    """The CloudEvent id of one object generation: stable, so retries carry the same id."""
    return hashlib.sha256(f"{bucket}/{name}#{generation}".encode()).hexdigest()[:32]


def finalized_event(bucket: str, object_resource: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent Eventarc sends for a finalized object."""
    data = {k: v for k, v in object_resource.items() if k not in _NOT_IN_EVENT and v is not None}
    data.setdefault("bucket", bucket)
    for key in _STRING_FIELDS:  # GCS sends 64-bit numbers as strings
        if key in data:
            data[key] = str(data[key])
    name = str(data["name"])
    when = str(data.get("updated") or data.get("timeCreated") or _now())
    headers = {
        "ce-id": event_id(bucket, name, str(data.get("generation", ""))),
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-type": FINALIZED,
        "ce-specversion": "1.0",
        "ce-subject": f"objects/{name}",
        "ce-time": when,
        "content-type": "application/json",
    }
    return headers, json.dumps(data).encode("utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def deliver_finalized(
    url: str, bucket: str, object_resource: Mapping[str, Any], *, timeout_s: float = 60.0
) -> int:
    """POST one finalized event to `url` once; return the HTTP status (OSError when unreachable)."""
    headers, body = finalized_event(bucket, object_resource)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as answer:  # a non-2xx answer is a status, not a failure to deliver
        answer.close()
        return int(answer.code)
    except http.client.HTTPException as exc:  # a garbled answer counts as no answer
        raise ConnectionError(f"bad answer from {url}: {exc}") from exc


class StorageBridge:
    """Polls buckets on the storage emulator and delivers finalized events to their subscribers."""

    def __init__(
        self,
        emulator_url: str,
        targets: Mapping[str, Sequence[str]],
        *,
        interval_s: float = 0.25,
        retry: RetryPolicy | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        """Describe the bridge; nothing happens before `run` (or `running_in_thread`).

        Args:
            emulator_url: base URL of the storage emulator (STORAGE_EMULATOR_HOST).
            targets: real bucket name -> URLs of the functions triggered by it.
            interval_s: pause between listings.
            retry: redelivery policy for failed deliveries.
            timeout_s: how long one delivery may take (an ingest may run for minutes).
        """
        self.emulator_url = emulator_url.rstrip("/")
        self.targets = {bucket: list(urls) for bucket, urls in targets.items() if urls}
        self.interval_s = interval_s
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.ready = threading.Event()  # set once the baseline is taken
        self.delivered = 0
        self.failed = 0
        self._seen: dict[str, set[tuple[str, str]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Deliveries get their own threads: slow handlers must never hold up the listing.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="bridge-deliver"
        )

    def _list(self, bucket: str) -> list[dict[str, Any]] | None:
        """Every object of `bucket`, or None while the bucket does not exist (OSError when unreachable)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        base = f"{self.emulator_url}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o"
        while True:
            url = f"{base}?{urllib.parse.urlencode({'pageToken': token})}" if token else base
            try:
                with _OPENER.open(url, timeout=10) as response:
                    page = json.loads(response.read())
            except urllib.error.HTTPError as answer:
                answer.close()
                if answer.code == 404:
                    return None
                raise
            items += page.get("items") or []
            token = page.get("nextPageToken")
            if not token:
                return items

    async def baseline(self, stop: asyncio.Event | None = None) -> None:
        """Record what exists now (not replayed); a bucket not created yet counts as empty.

        Waits for the emulator to answer: taking an unreachable emulator for an empty one would
        replay every object already there.
        """
        for bucket in self.targets:
            items = None
            while not (stop and stop.is_set()):
                try:
                    items = await asyncio.to_thread(self._list, bucket)
                    break
                except OSError:  # not up yet
                    await asyncio.sleep(0.05)
            self._seen[bucket] = {(o["name"], str(o["generation"])) for o in items or []}
        self.ready.set()

    async def poll_once(self) -> int:
        """List every watched bucket once and start delivering what is new; return how many events."""
        started = 0
        for bucket, urls in self.targets.items():
            try:
                items = await asyncio.to_thread(self._list, bucket)
            except OSError:
                continue  # the emulator is restarting or stopping; look again next round
            if items is None:
                continue
            seen = self._seen.setdefault(bucket, set())
            current = set()
            for obj in items:
                key = (obj["name"], str(obj["generation"]))
                current.add(key)
                if key in seen:
                    continue
                # A generation is finalized at metageneration 1 (the emulator counts its own
                # upload metadata as a second one).
                obj = {**obj, "metageneration": "1"}
                for url in urls:
                    task = asyncio.create_task(self._deliver(url, bucket, obj))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    started += 1
            # Only what still exists: a deleted object's generation never comes back.
            self._seen[bucket] = current
        return started

    async def _deliver(self, url: str, bucket: str, obj: Mapping[str, Any]) -> None:
        where = f"gs://{bucket}/{obj['name']}#{obj['generation']}"
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                status = await asyncio.get_running_loop().run_in_executor(
                    self._pool,
                    functools.partial(deliver_finalized, url, bucket, obj, timeout_s=self.timeout_s),
                )
                problem = f"status {status}"
            except OSError as exc:
                status, problem = 0, f"{type(exc).__name__}: {exc}"
            if 200 <= status < 300:
                self.delivered += 1
                log.info("delivered finalized %s to %s (attempt %d)", where, url, attempt)
                return
            if attempt < self.retry.max_attempts:
                delay = self.retry.backoff(attempt)
                log.warning("finalized %s to %s failed (%s); retry in %.1fs", where, url, problem, delay)
                await asyncio.sleep(delay)
        self.failed += 1
        log.error(
            "gave up delivering finalized %s to %s after %d attempts (%s)",
            where,
            url,
            self.retry.max_attempts,
            problem,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Baseline, then poll until `stop` is set; deliveries under way are cancelled on stop."""
        try:
            await self.baseline(stop)
            while not stop.is_set():
                try:
                    await self.poll_once()
                except (OSError, ValueError, KeyError) as exc:  # one bad listing must not end the bridge
                    log.warning("listing the storage emulator failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            self._pool.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def running_in_thread(self, ready_timeout_s: float = 10.0) -> Iterator[StorageBridge]:
        """Run the bridge on its own event loop in a thread (for tests); stopped on exit.

        A bridge runs once: stopping it shuts its delivery threads down.
        """
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.run(stop))
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

        thread = threading.Thread(target=serve, name="storage-bridge", daemon=True)
        thread.start()
        try:
            if not self.ready.wait(ready_timeout_s):
                raise TimeoutError("the storage bridge did not take its baseline in time")
            yield self
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=10)


def parse_targets(items: Sequence[str]) -> dict[str, list[str]]:
    """`BUCKET=URL` arguments as a bucket -> URLs map (a bucket may have several subscribers)."""
    targets: dict[str, list[str]] = {}
    for item in items:
        bucket, sep, url = item.partition("=")
        if not sep or not bucket or not url:
            raise SystemExit(f"--target wants BUCKET=URL, got {item!r}")
        targets.setdefault(bucket, []).append(url)
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bridge alone until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m promptopt.local.storage_bridge", description=__doc__)
    parser.add_argument("--emulator", required=True, help="storage emulator base URL")
    parser.add_argument("--target", action="append", default=[], metavar="BUCKET=URL")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between listings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    bridge = StorageBridge(args.emulator, parse_targets(args.target), interval_s=args.interval)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await bridge.run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
