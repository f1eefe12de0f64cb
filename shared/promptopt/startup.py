"""The garbage collector is paused while a function instance starts, until it has answered once.

A cold start allocates a few hundred thousand long-lived objects (modules, classes, schemas, the
Firestore client) and creates almost no garbage cycles; the collector, left on, walks that growing
heap again and again while it is built. Deployed functions (`PROMPTOPT_GC_PAUSED_UNTIL_SERVING=1`,
set by Terraform and the local stack, see manifest.RUNTIME_ENV) pause it from the first import of
`promptopt` until their first request, task or event has been handled (serve, serve_task,
serve_event, and the dashboard's respond call `resume`); then everything allocated
so far is moved out of the collector's sight (`gc.freeze`, as the CPython docs advise for a forked
server) and collection resumes for what requests allocate. Anything else importing promptopt (the
CLI, the Python client, tests) leaves the collector alone.
"""

from __future__ import annotations

import gc
import os
import threading

ENV = "PROMPTOPT_GC_PAUSED_UNTIL_SERVING"
_lock = threading.Lock()
_paused = False


def pause_if_configured() -> None:
    """Pause the collector when this process is a deployed function (idempotent)."""
    global _paused
    if os.environ.get(ENV) == "1" and gc.isenabled():
        with _lock:
            gc.disable()
            _paused = True


def resume() -> None:
    """After the first handled request: freeze what startup built, collect again from here on."""
    global _paused
    if not _paused:
        return
    with _lock:
        if not _paused:
            return
        _paused = False
        gc.freeze()
        gc.enable()
