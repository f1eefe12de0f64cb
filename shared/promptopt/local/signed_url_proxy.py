r"""A local stand-in for storage.googleapis.com signed-URL uploads, in front of the storage emulator.

The storage emulator accepts any PUT, signed or not. This proxy verifies V4 signed PUT URLs the way
Cloud Storage does (signature, validity window, signed Content-Type, x-goog-content-length-range;
GCS's XML errors) and only then writes the object into the emulator, at the same bucket and name.
The body is streamed to a temporary file (bounded memory) and the object is created only once the
whole body has arrived within its size bounds, so a refused upload leaves nothing behind, as in GCS.
The emulator ignores generation preconditions, so the proxy enforces `x-goog-if-generation-match`
itself (412 PreconditionFailed, as GCS answers), checking and writing under one lock per object.

The same process hosts the storage bridge (finalized events for storage-triggered functions);
`GET /_promptopt/ready` answers 200 once the bridge has its baseline.

    python -m promptopt.local.signed_url_proxy --port 8685 --emulator http://127.0.0.1:8683 \
        --key-file .promptopt/local/signing-key.json --bridge-target BUCKET=URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from promptopt.local.dev_signer import SignedRequest, SignedUrlError, V4Verifier, entity_too_large
from promptopt.local.storage_bridge import StorageBridge, parse_targets
from promptopt.signed_urls import GENERATION_MATCH_HEADER

log = logging.getLogger("promptopt.local.signed_url_proxy")

READY_PATH = "/_promptopt/ready"
_READ_CHUNK = 256 * 1024
# A refused body is read and dropped up to this size so the client gets the XML answer; past it the
# connection is closed (a client still sending would see a reset instead of the answer).
_DRAIN_LIMIT = 64 * 1024 * 1024
_XML = "application/xml; charset=UTF-8"
CORS_MAX_AGE_S = 3600


def _error(err: SignedUrlError) -> web.Response:
    return web.Response(status=err.status, body=err.xml().encode("utf-8"), headers={"Content-Type": _XML})


def precondition_failed() -> SignedUrlError:
    """GCS's refusal when a generation precondition does not hold (e.g. the object exists)."""
    return SignedUrlError(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold.",
        "Precondition Failed",
    )


def _no_such_bucket(bucket: str) -> web.Response:
    err = SignedUrlError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)
    return _error(err)


class Proxy:
    """Verifies signed PUTs and writes accepted bodies into the emulator."""

    def __init__(
        self,
        verifier: V4Verifier,
        emulator_url: str,
        bridge: StorageBridge | None = None,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.cors_origins = frozenset(cors_origins)
        self.verifier = verifier
        self.emulator_url = emulator_url.rstrip("/")
        self.bridge = bridge
        self._session: aiohttp.ClientSession | None = None
        self._bridge_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._object_locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def start(self, app: web.Application) -> None:
        """Open the emulator session and start the bridge (aiohttp on_startup)."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        if self.bridge is not None:
            self._bridge_task = asyncio.create_task(self.bridge.run(self._stop))

    async def stop(self, app: web.Application) -> None:
        """Stop the bridge and close the session (aiohttp on_cleanup)."""
        self._stop.set()
        if self._bridge_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._bridge_task
        if self._session is not None:
            await self._session.close()

    async def ready(self, request: web.Request) -> web.Response:
        """200 once the bridge (if any) has taken its baseline, else 503."""
        if self.bridge is not None and not self.bridge.ready.is_set():
            return web.Response(status=503, text="bridge not ready")
        return web.Response(text="ok")

    async def not_allowed(self, request: web.Request) -> web.Response:
        """Only signed uploads go through here; downloads and listings are the emulator's."""
        err = SignedUrlError(
            405, "MethodNotAllowed", "The specified method is not allowed against this resource."
        )
        response = _error(err)
        response.headers["Allow"] = "PUT, OPTIONS"
        return response

    async def options(self, request: web.Request) -> web.Response:
        """A CORS preflight, granted as the datasets bucket's CORS policy grants it in the cloud.

        Only the configured origins (the dashboard's) may PUT, with any request headers; any other
        preflight is answered without CORS headers, so the browser refuses the upload, as GCS does.
        """
        headers = {"Allow": "PUT, OPTIONS"}
        origin = request.headers.get("Origin")
        wanted = request.headers.get("Access-Control-Request-Method", "")
        if origin in self.cors_origins and wanted.upper() == "PUT":
            headers |= {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "PUT",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", ""),
                "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
                "Vary": "Origin",
            }
        return web.Response(status=200, headers=headers)

    @web.middleware
    async def cors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Let an allowed origin read the answer to its PUT (success or GCS's XML error)."""
        response = await handler(request)
        origin = request.headers.get("Origin")
        if request.method == "PUT" and origin in self.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def put(self, request: web.Request) -> web.StreamResponse:
        """Verify a signed PUT, then store its body as the object."""
        path, _, query = request.raw_path.partition("?")
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        signed = SignedRequest("PUT", path, query, headers)
        try:
            verified = self.verifier.verify(signed)
            if request.content_length is not None:
                verified.check_length(request.content_length)  # refuse before reading a byte
        except SignedUrlError as err:
            log.info("refused PUT %s: %s", path, err)
            return await self._refuse(request, err)

        # From the raw path: the router's decoded values would lose an encoded "%" or "/".
        bucket, _, quoted_name = path.lstrip("/").partition("/")
        bucket, name = urllib.parse.unquote(bucket), urllib.parse.unquote(quoted_name)
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        with tempfile.TemporaryFile() as spool:
            size = 0
            while chunk := await request.content.read(_READ_CHUNK):
                size += len(chunk)
                if verified.length_range and size > verified.length_range[1]:
                    return await self._refuse(request, entity_too_large())
                spool.write(chunk)
            try:
                verified.check_length(size)
            except SignedUrlError as err:
                return _error(err)
            spool.seek(0)
            lock = self._object_locks.setdefault((bucket, name), asyncio.Lock())
            async with lock:
                refused = await self._precondition(bucket, name, headers.get(GENERATION_MATCH_HEADER))
                if refused is not None:
                    return refused
                return await self._store(bucket, name, content_type, spool, size)

    async def _precondition(self, bucket: str, name: str, expected: str | None) -> web.Response | None:
        """GCS's `x-goog-if-generation-match` (0: the object must not exist); None when it holds."""
        if expected is None:
            return None
        assert self._session is not None
        url = f"{self.emulator_url}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o/"
        async with self._session.get(url + urllib.parse.quote(name, safe="")) as response:
            if response.status == 404:
                current = "0"
            elif response.status >= 300:
                return await self._upstream_failed("precondition", response)
            else:
                current = str(json.loads(await response.read()).get("generation", ""))
        if current == expected.strip():
            return None
        log.info("refused PUT %s/%s: generation %s, not %s", bucket, name, current, expected)
        return _error(precondition_failed())

    async def _refuse(self, request: web.Request, err: SignedUrlError) -> web.Response:
        drained = 0
        while drained <= _DRAIN_LIMIT and (chunk := await request.content.read(_READ_CHUNK)):
            drained += len(chunk)
        response = _error(err)
        if drained > _DRAIN_LIMIT:
            response.force_close()
        return response

    async def _store(
        self, bucket: str, name: str, content_type: str, body: IO[bytes], size: int
    ) -> web.Response:
        """Create the object in the emulator with a one-shot resumable upload.

        Resumable rather than media: the emulator parses a media body whose type starts with
        application/json as JSON, which would corrupt .json and .jsonl uploads.
        """
        assert self._session is not None
        quoted = urllib.parse.quote(bucket, safe="")
        start = f"{self.emulator_url}/upload/storage/v1/b/{quoted}/o"
        async with self._session.post(
            start,
            params={"uploadType": "resumable", "name": name},
            json={"name": name, "contentType": content_type},
            headers={"X-Upload-Content-Type": content_type, "X-Upload-Content-Length": str(size)},
        ) as response:
            if response.status == 404:
                return _no_such_bucket(bucket)
            if response.status >= 300:
                return await self._upstream_failed("start", response)
            session_url = response.headers["Location"]
        content_range = f"bytes 0-{size - 1}/{size}" if size else "bytes */0"
        async with self._session.put(
            session_url,
            data=body if size else b"",
            headers={"Content-Range": content_range, "Content-Type": "application/octet-stream"},
        ) as response:
            if response.status >= 300:
                return await self._upstream_failed("upload", response)
            obj = json.loads(await response.read())
        log.info("stored gs://%s/%s (%d bytes, %s) from a signed URL", bucket, name, size, content_type)
        return web.Response(
            status=200,
            headers={
                "ETag": f'"{obj.get("md5Hash", "")}"',
                "x-goog-generation": str(obj.get("generation", "")),
                "x-goog-metageneration": str(obj.get("metageneration", "1")),
                "x-goog-hash": f"crc32c={obj.get('crc32c', '')},md5={obj.get('md5Hash', '')}",
                "x-goog-stored-content-length": str(size),
                "x-goog-stored-content-encoding": "identity",
            },
        )

    async def _upstream_failed(self, step: str, response: aiohttp.ClientResponse) -> web.Response:
        text = (await response.read())[:500].decode("utf-8", "replace")
        log.error("storage emulator refused the %s step: %s %s", step, response.status, text)
        err = SignedUrlError(503, "ServiceUnavailable", "The storage emulator refused the upload.", text)
        return _error(err)


def create_app(
    verifier: V4Verifier,
    emulator_url: str,
    bridge: StorageBridge | None = None,
    cors_origins: Sequence[str] = (),
) -> web.Application:
    """The proxy as an aiohttp application (with the bridge running beside it, if given).

    `cors_origins` may upload from a browser (the datasets bucket's CORS policy in Terraform).
    """
    proxy = Proxy(verifier, emulator_url, bridge, cors_origins)
    # The body never sits in memory (it is streamed), so no body size cap applies here.
    app = web.Application(client_max_size=0, middlewares=[proxy.cors])
    app.on_startup.append(proxy.start)
    app.on_cleanup.append(proxy.stop)
    app.router.add_get(READY_PATH, proxy.ready)
    app.router.add_put("/{bucket}/{object:.+}", proxy.put)
    app.router.add_route("OPTIONS", "/{tail:.*}", proxy.options)
    app.router.add_route("*", "/{tail:.*}", proxy.not_allowed)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Run until SIGTERM or SIGINT."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("signed-URL proxy listening on http://%s:%s", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (the local stack starts it)."""
    parser = argparse.ArgumentParser(prog="python -m promptopt.local.signed_url_proxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator", required=True, help="storage emulator base URL")
    parser.add_argument("--key-file", type=Path, required=True, help="the dev signer's JSON key")
    parser.add_argument("--bridge-target", action="append", default=[], metavar="BUCKET=URL")
    parser.add_argument("--bridge-interval", type=float, default=0.25)
    parser.add_argument(
        "--cors-origin", action="append", default=[], help="an origin that may PUT from a browser"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    targets = parse_targets(args.bridge_target)
    bridge = StorageBridge(args.emulator, targets, interval_s=args.bridge_interval) if targets else None
    app = create_app(V4Verifier.from_key_file(args.key_file), args.emulator, bridge, args.cors_origin)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
