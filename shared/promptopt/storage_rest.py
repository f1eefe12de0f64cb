"""Cloud Storage over its JSON API: store a new object, create-only, in one request.

Written by hand rather than through google-cloud-storage for cold start: importing that library and
creating its client costs about 30 ms of CPU (OpenTelemetry, the email and XML parsers, crc32c),
near a tenth of a bare Firestore function's whole start, and the API functions that accept a dataset
inline (datasets_create, datasets_version_create) need only this one call. It rides on requests and
google-auth, which the Firestore client has already loaded. The emulator serves the same upload
API (STORAGE_EMULATOR_HOST), so the tests run this very code; everything else that touches
Storage (ingest, the sweeper, signed URLs) uses the client library.
"""

from __future__ import annotations

import json
import secrets

from promptopt.clients import storage_session
from promptopt.rest_calls import RestError, send


class StorageError(RestError):
    """Cloud Storage refused the write, or could not be reached before the deadline."""


def create_object(bucket: str, name: str, data: bytes, *, content_type: str, timeout_s: float) -> bool:
    """Store `data` as gs://bucket/name unless that object exists; True when this call stored it.

    A multipart upload (the object's metadata, then its bytes), as google-cloud-storage sends one
    below 8 MiB; the storage emulator cannot take an empty file as a plain media upload. With
    `ifGenerationMatch=0` a second call (a replayed request) gets 412 and leaves the first object as
    it was. Transient failures are retried within `timeout_s`, which is safe because the write is
    create-only, as the library retries it too.
    """
    boundary = secrets.token_hex(16)
    while boundary.encode() in data:  # vanishingly rare; a boundary must not occur in the content
        boundary = secrets.token_hex(16)
    metadata = json.dumps({"name": name, "contentType": content_type}).encode()
    body = b"".join(
        (
            f"--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n".encode(),
            metadata,
            f"\r\n--{boundary}\r\ncontent-type: {content_type}\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--".encode(),
        )
    )
    base, session = storage_session()
    response = send(
        session,
        "POST",
        f"{base}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "multipart", "ifGenerationMatch": "0"},
        data=body,
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
        timeout_s=timeout_s,
        accept=frozenset({412}),
        error=StorageError,
    )
    return response.status_code != 412
