"""Run one function in-process until it has answered one request, and record where its time went.

Started by `cold-start --profile DIR` in the function's bundle, in place of functions-framework.
It writes DIR/NAME.imports, the interpreter's import log (-X importtime) of everything imported,
when the function loads or lazily on its first request, and DIR/NAME.json, the CPU seconds spent
loading the function and answering its first request. A single-request werkzeug server stands in
for gunicorn so that everything happens in this one process. With PROMPTOPT_BENCH_CPROFILE=1 in
the environment the first request also runs under cProfile, saved as DIR/NAME.prof (read it with
`python -m pstats`); with PROMPTOPT_BENCH_CPROFILE=2 the load is profiled too. It is off by default
because it doubles the cost of whatever it watches.

Usage (by cold-start): python -X importtime first_request_profile.py DIR NAME PORT
"""

from __future__ import annotations

import cProfile
import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> None:
    out, name, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    # The bench stops the process once it has its answer: not before the profile is written.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The import log is written to stderr as modules load: send it to the file from here on.
    log = os.open(out / f"{name}.imports", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 2)
    mode = os.environ.get("PROMPTOPT_BENCH_CPROFILE")
    profile = cProfile.Profile() if mode in ("1", "2") else None
    if profile and mode == "2":
        profile.enable()
    from functions_framework import create_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, create_app("handle", "main.py"))
    loaded = time.process_time()
    if profile:
        profile.enable()
    server.handle_request()
    answered = time.process_time()
    if profile:
        profile.disable()
        profile.dump_stats(out / f"{name}.prof")
    times = {"load_cpu_s": round(loaded, 4), "first_request_cpu_s": round(answered - loaded, 4)}
    (out / f"{name}.json").write_text(json.dumps(times))
    server.server_close()


if __name__ == "__main__":
    main()
