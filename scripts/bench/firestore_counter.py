"""A counting gRPC proxy in front of the Firestore emulator: every document write, by kind.

The emulator reports no usage, so the benchmark points the functions' FIRESTORE_EMULATOR_HOST
at this proxy, which forwards every call of `google.firestore.v1.Firestore` unchanged (raw bytes,
metadata and deadline kept) and counts on the way:

- document writes: each `Write` of a Commit or BatchWrite request (create, set, update, delete,
  with or without a precondition: what Firestore bills as one write), and each
  CreateDocument/UpdateDocument/DeleteDocument call; counted when the emulator accepted the call
  (a Commit that fails, e.g. a create-if-absent that lost, wrote nothing), with the rejected
  writes counted apart;
- each write by the kind of document it names (`job`, `results`, `chunks`, `inputs`,
  `markers`, `cache`, `idempotency`, or the collection id for anything else);
- calls per method (reads, queries and aggregations included).
"""

from __future__ import annotations

import collections
import threading
from concurrent import futures
from typing import Any

import grpc

SERVICE = "/google.firestore.v1.Firestore/"
UNARY_STREAM = {
    "BatchGetDocuments",
    "RunQuery",
    "RunAggregationQuery",
    "ExecutePipeline",
    "PartitionQueryStream",
}
STREAM_STREAM = {"Write", "Listen"}
SINGLE_WRITES = {"CreateDocument": "parent", "UpdateDocument": "document", "DeleteDocument": "name"}
JOB_KINDS = {"results", "chunks", "inputs", "markers"}
# Metadata the HTTP/2 layer or grpc itself sets; forwarding them would be refused or duplicated.
_SKIP_METADATA = ("user-agent", "te", "content-type", "grpc-")


def kind_of(name: str) -> str:
    """The kind of document a resource name points at (see the module docstring)."""
    path = name.split("/documents/", 1)[-1].split("/")
    if len(path) >= 4 and path[0] == "tenants":
        rest = path[2:]  # after tenants/{t}
        if rest[0] == "batch_jobs":
            if len(rest) == 2:
                return "job"
            if len(rest) >= 4 and rest[2] in JOB_KINDS:
                return rest[2]
            return f"batch_jobs/{rest[2] if len(rest) > 2 else '?'}"
        return rest[0]
    return path[0] if path else "?"


class Counts:
    """Thread-safe tallies; `snapshot` for a copy, `reset` to start over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: collections.Counter[str] = collections.Counter()
            self.writes: collections.Counter[str] = collections.Counter()
            self.rejected: collections.Counter[str] = collections.Counter()

    def call(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def wrote(self, kinds: list[str], ok: bool) -> None:
        with self._lock:
            (self.writes if ok else self.rejected).update(kinds)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"calls": dict(self.calls), "writes": dict(self.writes), "rejected": dict(self.rejected)}


def _write_kinds(method: str, request: bytes) -> list[str]:
    from google.cloud.firestore_v1.types import firestore

    if method in ("Commit", "BatchWrite"):
        kind = firestore.CommitRequest if method == "Commit" else firestore.BatchWriteRequest
        parsed: Any = kind.deserialize(request)
        names = []
        for write in parsed.writes:
            which = write._pb.WhichOneof("operation")
            if which == "update":
                names.append(write.update.name)
            elif which == "delete":
                names.append(write.delete)
            elif which == "transform":
                names.append(write.transform.document)
        return [kind_of(n) for n in names]
    if method in SINGLE_WRITES:
        request_type = getattr(firestore, f"{method}Request")
        parsed = request_type.deserialize(request)
        if method == "CreateDocument":
            return [parsed.collection_id]
        if method == "UpdateDocument":
            return [kind_of(parsed.document.name)]
        return [kind_of(parsed.name)]
    return []


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, channel: grpc.Channel, counts: Counts) -> None:
        self.channel = channel
        self.counts = counts

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        full: str = details.method
        method = full.rsplit("/", 1)[-1]
        counts, channel = self.counts, self.channel

        def forward_args(context: grpc.ServicerContext) -> dict[str, Any]:
            metadata = [
                (k, v)
                for k, v in context.invocation_metadata()
                if not k.startswith(":") and not k.startswith(_SKIP_METADATA)
            ]
            remaining = context.time_remaining()
            return {"metadata": metadata, "timeout": remaining if remaining and remaining < 1e6 else None}

        if method in STREAM_STREAM:
            upstream_ss = channel.stream_stream(full)

            def stream_stream(requests: Any, context: grpc.ServicerContext) -> Any:
                counts.call(method)
                try:
                    yield from upstream_ss(requests, **forward_args(context))
                except grpc.RpcError as exc:
                    context.abort(exc.code(), exc.details() or "")

            return grpc.stream_stream_rpc_method_handler(stream_stream)

        if method in UNARY_STREAM:
            upstream_us = channel.unary_stream(full)

            def unary_stream(request: bytes, context: grpc.ServicerContext) -> Any:
                counts.call(method)
                try:
                    yield from upstream_us(request, **forward_args(context))
                except grpc.RpcError as exc:
                    context.abort(exc.code(), exc.details() or "")

            return grpc.unary_stream_rpc_method_handler(unary_stream)

        upstream_uu = channel.unary_unary(full)

        def unary_unary(request: bytes, context: grpc.ServicerContext) -> Any:
            counts.call(method)
            kinds = _write_kinds(method, request)
            try:
                response = upstream_uu(request, **forward_args(context))
            except grpc.RpcError as exc:
                counts.wrote(kinds, ok=False)
                context.abort(exc.code(), exc.details() or "")
            counts.wrote(kinds, ok=True)
            return response

        return grpc.unary_unary_rpc_method_handler(unary_unary)


class FirestoreCounter:
    """The proxy: `start()` listens on a free port of `host`; `address` is what to give clients."""

    def __init__(self, target: str, host: str = "127.0.0.1", workers: int = 64) -> None:
        self.target = target
        self.host = host
        self.counts = Counts()
        self._channel = grpc.insecure_channel(target)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fs-proxy")
        )
        self._server.add_generic_rpc_handlers((_Handler(self._channel, self.counts),))
        self.port = self._server.add_insecure_port(f"{host}:0")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> FirestoreCounter:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=1).wait()
        self._channel.close()
