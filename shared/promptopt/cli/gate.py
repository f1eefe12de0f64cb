"""`promptopt gate`: fail a pull request whose prompt scores worse than its baseline on the same rows.

The candidate (a stored version or label, or inline texts from files in the repository) and the
baseline (a label such as production, a version, or a stored evaluation job) are evaluated on one
dataset split with the same metrics; each metric's paired lift gets a 95% CI. The summary table
goes to stdout (or the result as JSON with --json); --junit and --summary write a JUnit XML and a
Markdown summary for the CI system. The logic is `promptopt.Client.gate`.

Exit codes: 0 the gate passed; 3 it failed (a metric dropped beyond --max-drop, or fell under its
--floor); 2 a usage error, the API refused, or the two cannot be compared; 1 a job failed, the
wait timed out, or the API failed or gave no answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from promptopt.cli import argtypes, output
from promptopt.cli.core.commands import Groups, add_text_option, text_option, top_level
from promptopt.cli.core.context import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, Context, version
from promptopt.cli.core.waiting import StatusLine
from promptopt.cli.evaluate import ALL_METRICS_HELP, MetricHelpFormatter, parse_params

if TYPE_CHECKING:
    from promptopt.batch.models import BatchJob

EXIT_GATE_FAILED = 3
DEFAULT_WAIT_TIMEOUT_S = 3600.0
SPLITS = ("train", "validation", "test")


def parse_floors(items: list[str], metrics: list[str]) -> dict[str, float]:
    """`METRIC=VALUE` pairs: the lowest mean each metric may have."""
    floors: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in metrics:
            raise CliError(f"--floor {item!r}: expected METRIC=VALUE for one of the --metric names")
        try:
            value = float(raw)
        except ValueError:
            raise CliError(f"--floor {item!r}: {raw!r} is not a number") from None
        if not 0.0 <= value <= 1.0:
            raise CliError(f"--floor {item!r}: scores lie in [0, 1]")
        floors[name] = value
    return floors


def gate_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `Client.gate` for the command's options."""
    output_prompt = text_option(args, "output_prompt")
    system_prompt = text_option(args, "system_prompt")
    if output_prompt is None and system_prompt is not None:
        raise CliError("--system-prompt needs --output-prompt (an inline candidate)")
    if output_prompt is not None and (args.version is not None or args.label is not None):
        raise CliError("--version and --label pick a stored candidate; an inline candidate has neither")
    if output_prompt is None and not args.prompt_id:
        raise CliError(
            "give the candidate: --prompt-id (with --version or --label) or --output-prompt[-file]"
        )
    if not args.baseline_job and not args.prompt_id:
        raise CliError("a --baseline-label or --baseline-version needs --prompt-id")
    if not args.baseline_job and not args.dataset:
        raise CliError("give --dataset (or --baseline-job, whose rows are reused)")
    params = parse_params(args.param or [], args.metric)
    budget = {"max_calls": args.budget_calls, "max_cost_usd": args.budget_usd}
    return {
        "dataset_id": args.dataset,
        "dataset_version": args.dataset_version,
        "split": None if args.split == "all" else args.split,
        "metrics": [{"name": m, "params": params.get(m, {})} for m in args.metric],
        "prompt_id": args.prompt_id,
        "version": args.version,
        "label": args.label,
        "output_prompt": output_prompt,
        "system_prompt": system_prompt,
        "baseline_label": args.baseline_label,
        "baseline_version": args.baseline_version,
        "baseline_job": args.baseline_job,
        "model": args.model,
        "max_drop": args.max_drop,
        "floors": parse_floors(args.floor or [], args.metric),
        "rule": args.rule,
        "budget": {k: v for k, v in budget.items() if v is not None} or None,
        "timeout_s": args.wait_timeout,
    }


def _progress_text(job: BatchJob) -> str:
    progress = job.progress
    done = progress.succeeded + progress.failed
    return f"{job.job_id} {job.status}: {done}/{progress.total} rows, {progress.cache_hits} cache hits"


def _write(path: str, text: str, what: str) -> None:
    try:
        target = Path(path)
        if target.parent != Path():
            target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a" if what == "summary" else "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CliError(f"--{what} {path}: cannot write it ({exc})", EXIT_FAILURE) from None


def _gate(args: argparse.Namespace, ctx: Context) -> int:
    from promptopt.client import Client, GateError, JobFailed, WaitTimeout, report
    from promptopt.client.client import credentials_from

    options = gate_options(args)
    line = StatusLine(every_s=5.0)
    client = Client(
        ctx.api_url,
        credentials=credentials_from(token=ctx.token, api_key=ctx.api_key, env={}),
        timeout_s=ctx.timeout_s,
        retries=ctx.retries,
        user_agent=f"promptopt-cli/{version()}",
        transport=ctx.transport,
    )
    try:
        with client:
            result = client.gate(
                **options, on_progress=lambda job: line.show(_progress_text(job), key=job.job_id)
            )
    except ValueError as exc:  # options the client refuses (pydantic's errors are ValueErrors too)
        raise CliError(str(exc)) from None
    except GateError as exc:
        raise CliError(f"the gate cannot compare: {exc}", EXIT_USAGE) from None
    except (JobFailed, WaitTimeout) as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    finally:
        line.clear()
    if args.junit:
        _write(args.junit, report.junit_xml(result), "junit")
    if args.summary:
        _write(args.summary, report.markdown(result), "summary")
    if ctx.json:
        output.emit_json(result.as_dict())
    else:
        output.emit(report.text(result))
    return EXIT_OK if result.passed else EXIT_GATE_FAILED


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `gate` command to the top-level subparsers."""
    parser = top_level(
        groups,
        common,
        "gate",
        _gate,
        help="CI check: fail when a prompt scores worse than its baseline on the same rows",
        description="Evaluate a candidate prompt and its baseline on the same dataset rows, compare them "
        "row by row (paired lift with a 95%% CI per metric), print a summary table and exit 3 when a "
        "metric dropped beyond --max-drop or fell under its --floor (0 when it passed; 2 usage or API "
        "refusal; 1 a job failed, timed out or the API failed). --junit and --summary write files a CI "
        "system shows.",
        formatter_class=MetricHelpFormatter,
    )
    # Argument groups take the same calls as a parser; they only order the help.
    candidate = cast(
        argparse.ArgumentParser,
        parser.add_argument_group(
            "the candidate: a stored prompt's version or label, or inline texts (files a pull request edits)"
        ),
    )
    candidate.add_argument("--prompt-id", metavar="ID", help="the stored prompt (also the baseline's)")
    selector = candidate.add_mutually_exclusive_group()
    selector.add_argument("--version", type=argtypes.positive_int, metavar="N", help="the candidate version")
    selector.add_argument("--label", metavar="L", help="the candidate is the version this label names")
    add_text_option(candidate, "output_prompt", "the inline candidate's output template", required=False)
    add_text_option(candidate, "system_prompt", "the inline candidate's system prompt", required=False)

    baseline = parser.add_argument_group("the baseline (default: --baseline-label production)")
    which = baseline.add_mutually_exclusive_group()
    which.add_argument(
        "--baseline-label", metavar="L", default="production", help="the version this label names"
    )
    which.add_argument("--baseline-version", type=argtypes.positive_int, metavar="N", help="this version")
    which.add_argument(
        "--baseline-job",
        metavar="JOB_ID",
        help="a stored evaluation job (bj_...): its per-row scores, dataset version and split are reused",
    )

    rows = parser.add_argument_group("the rows and the scoring")
    rows.add_argument("--dataset", metavar="ID", help="the dataset (ds_...)")
    rows.add_argument(
        "--dataset-version", type=argtypes.positive_int, metavar="N", help="default: the newest ready version"
    )
    rows.add_argument("--split", choices=(*SPLITS, "all"), default="test", help="default: test")
    rows.add_argument(
        "--metric", action="append", required=True, metavar="NAME", help="repeatable: " + ALL_METRICS_HELP
    )
    rows.add_argument(
        "--param", action="append", metavar="METRIC.KEY=VALUE", help="a metric parameter (JSON values parsed)"
    )
    rows.add_argument("--model", metavar="M", help="the model both run on (default: the API's)")
    rows.add_argument("--budget-calls", type=argtypes.positive_int, metavar="N", help="per job")
    rows.add_argument("--budget-usd", type=argtypes.positive_float, metavar="X", help="per job")

    decision = parser.add_argument_group("the decision and its files")
    decision.add_argument(
        "--max-drop",
        type=argtypes.fraction,
        default=0.02,
        metavar="X",
        help="a metric fails when its paired mean drop is beyond X (default 0.02)",
    )
    decision.add_argument(
        "--rule",
        choices=("ci", "mean"),
        default="ci",
        help="ci (default): the drop must also be significant (95%% CI below zero); mean: the mean alone",
    )
    decision.add_argument(
        "--floor", action="append", metavar="METRIC=X", help="fail when the candidate's mean is under X"
    )
    decision.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (one test per metric)")
    decision.add_argument(
        "--summary", metavar="FILE", help='append a Markdown summary (e.g. "$GITHUB_STEP_SUMMARY")'
    )
    decision.add_argument(
        "--wait-timeout",
        type=argtypes.positive_float,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="S",
        help=f"stop waiting for the jobs after S seconds (default {DEFAULT_WAIT_TIMEOUT_S:g}; exit 1)",
    )
