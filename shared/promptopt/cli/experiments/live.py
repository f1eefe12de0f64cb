"""Following a run: poll GET …/runs/{run_id} with backoff and show its progress until it ends.

On a terminal a live rich line (spinner, the run's step, iteration and spend, a bar for its
progress, elapsed time); off a terminal a line per step change. Exit codes of a finished run:
0 completed, stopped at its budget (the best found so far was still tested) or cancelled;
1 failed (or the wait timed out); 3 regressed (a regression check found a real drop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.cli import output
from promptopt.cli.core.context import EXIT_FAILURE, EXIT_OK, CliError
from promptopt.cli.core.waiting import StatusLine, wait_until
from promptopt.cli.experiments.render import total_calls, usd

if TYPE_CHECKING:
    from promptopt.cli.experiments.api import ExperimentApi

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "budget_exhausted", "regressed"})
EXIT_REGRESSED = 3
DEFAULT_WAIT_TIMEOUT_S = 3600.0
LOG_EVERY_S = 10.0


def progress_text(run: dict[str, Any], iterations: int | None = None) -> str:
    """`run_… running · iteration 2/4 · <step> · 312 calls, 12,345 tokens, $0.0000`."""
    usage = run.get("usage") or {}
    calls = total_calls(usage)
    tokens = int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
    parts = [f"{run.get('run_id')} {run.get('status')}"]
    if run.get("iteration"):
        parts.append(f"iteration {run['iteration']}" + (f"/{iterations}" if iterations else ""))
    parts.append(str(run.get("step") or ""))
    parts.append(f"{calls:,} calls, {tokens:,} tokens, {usd(usage.get('cost_usd'))}")
    return " · ".join(p for p in parts if p)


def wait_for_run(
    experiments: ExperimentApi,
    experiment_id: str,
    run_id: str,
    *,
    timeout_s: float,
    iterations: int | None = None,
    line: StatusLine | None = None,
) -> dict[str, Any]:
    """Poll the run until it is final; the run as it then is."""
    line = line or StatusLine(every_s=LOG_EVERY_S, bar=True)

    def show(run: dict[str, Any], _: float) -> None:
        line.show(
            progress_text(run, iterations),
            key=str(run.get("step")),
            completed=round(float(run.get("progress") or 0) * 100, 1),
            total=100,
        )

    def timed_out(run: dict[str, Any], elapsed: float) -> CliError:
        return CliError(
            f"{run_id} is still {run.get('status')} after {elapsed:.0f}s and keeps running; follow it with: "
            f"promptopt experiments watch {experiment_id} {run_id} (or stop it: promptopt experiments cancel "
            f"{experiment_id} {run_id})",
            EXIT_FAILURE,
        )

    try:
        run = wait_until(
            lambda: experiments.run(experiment_id, run_id).body or {},
            settled=lambda run: run.get("status") in FINAL_STATUSES,
            show=show,
            timed_out=timed_out,
            timeout_s=timeout_s,
        )
    except KeyboardInterrupt:
        line.clear()
        output.note(
            f"stopped watching; {run_id} keeps running: promptopt experiments watch {experiment_id} "
            f"{run_id}, or stop it with promptopt experiments cancel {experiment_id} {run_id}"
        )
        raise
    except BaseException:
        line.clear()
        raise
    line.finish(progress_text(run, iterations))
    return run


def outcome(run: dict[str, Any]) -> int:
    """The exit code for a final run, with a note on stderr on how it ended."""
    status, run_id, reason = run.get("status"), run.get("run_id"), run.get("reason") or "no reason given"
    if status == "failed":
        output.note(f"{run_id} failed: {reason}")
        return EXIT_FAILURE
    if status == "regressed":
        output.note(f"{run_id} REGRESSED: {reason}")
        return EXIT_REGRESSED
    if status == "budget_exhausted":
        output.note(f"note: {run_id} stopped at its budget, as asked: {reason}")
    elif status == "cancelled":
        output.note(f"note: {run_id} was cancelled ({reason}); what it measured is kept")
    return EXIT_OK
