"""Cloud Tasks' CreateTask and GetQueue over gRPC, without google-cloud-tasks' generated client.

Written by hand for cold start: importing `google.cloud.tasks_v2` costs about 27 ms of CPU in a
function that has already used Firestore (58 modules: every type, the REST transport and the
long-running-operations client it never uses here; about 70 ms after a bare Firestore import),
some 5 % of a bare Firestore function's whole start, for two calls whose requests are a handful of
fields. The requests are encoded here in protobuf's wire format
(tests/unit/test_tasks_grpc.py compares the bytes with the library's own serialization) and sent
on a channel made as the library makes one, over gRPC, which the Firestore client has already
loaded. The Tasks emulator speaks the same gRPC API (CLOUD_TASKS_EMULATOR_HOST), so the tests run
this very code. Answers are not decoded: a create or a get either succeeds or raises.

Failures raise google.api_core exceptions, as the generated client does (AlreadyExists,
NotFound, ...), and, like its defaults, nothing is retried: a create is not idempotent unless named.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlencode

from promptopt.clients import tasks_channel

_SERVICE = "/google.cloud.tasks.v2.CloudTasks/"
CREATE_TIMEOUT_S = 20.0  # the generated client's default for CreateTask
_POST = 1  # google.cloud.tasks.v2.HttpMethod.POST


class HttpTask(NamedTuple):
    """A named HTTP task: POST `body` to `url` (the fields of tasks_v2.Task this project sets)."""

    name: str  # projects/…/queues/…/tasks/…
    url: str
    body: bytes
    headers: dict[str, str]
    deadline_s: int  # dispatch_deadline
    oidc_account: str | None = None  # an OIDC token for this service account, audience `url`


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _message(number: int, data: bytes) -> bytes:
    """A length-delimited field; a message that is set is sent even when empty."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _field(number: int, data: bytes) -> bytes:
    """A string or bytes field; proto3 leaves out an empty one."""
    return _message(number, data) if data else b""


def _number(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def encode_create(queue: str, task: HttpTask) -> bytes:
    """CreateTaskRequest{parent, task{name, http_request, dispatch_deadline}} in wire format."""
    request = _field(1, task.url.encode()) + _number(2, _POST)
    for key, value in task.headers.items():  # map<string, string>: one entry message each
        request += _message(3, _field(1, key.encode()) + _field(2, value.encode()))
    request += _field(4, task.body)
    if task.oidc_account:
        request += _message(6, _field(1, task.oidc_account.encode()) + _field(2, task.url.encode()))
    body = _field(1, task.name.encode()) + _message(3, request) + _message(6, _number(1, task.deadline_s))
    return _field(1, queue.encode()) + _message(2, body)


def encode_get_queue(name: str) -> bytes:
    """GetQueueRequest{name}."""
    return _field(1, name.encode())


def _call(method: str, request: bytes, routing: tuple[str, str], timeout_s: float) -> None:
    import grpc
    from google.api_core import exceptions

    # The routing header the generated client sends, so the service routes by queue.
    metadata = (("x-goog-request-params", urlencode([routing], safe="/")),)
    call: Any = tasks_channel().unary_unary(_SERVICE + method)  # bytes in, bytes out
    try:
        call(request, timeout=timeout_s, metadata=metadata)
    except grpc.RpcError as exc:
        raise exceptions.from_grpc_error(exc) from exc


def create_task(queue: str, task: HttpTask, timeout_s: float = CREATE_TIMEOUT_S) -> bool:
    """Create `task` on `queue`; False when a task of its name already exists (or existed lately)."""
    from google.api_core import exceptions

    try:
        _call("CreateTask", encode_create(queue, task), ("parent", queue), timeout_s)
    except exceptions.AlreadyExists:
        return False
    return True


def get_queue(name: str, timeout_s: float) -> None:
    """Read a queue (readiness): raises NotFound, PermissionDenied, ... where it cannot."""
    _call("GetQueue", encode_get_queue(name), ("name", name), timeout_s)
