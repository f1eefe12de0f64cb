"""The `experiments` group's commands and their arguments."""

from __future__ import annotations

import argparse
from typing import cast

from promptopt.cli import argtypes
from promptopt.cli.core.commands import Groups, command_group
from promptopt.cli.core.paging import add_paging
from promptopt.cli.evaluate import ROW_METRICS_HELP, MetricHelpFormatter
from promptopt.cli.experiments import commands as run
from promptopt.cli.experiments.live import DEFAULT_WAIT_TIMEOUT_S, EXIT_REGRESSED

SPLITS = ("train", "validation", "test")
STRATEGIES = ("auto", "reflective", "history", "fewshot", "random")
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "budget_exhausted", "regressed")
EXIT_CODES = (
    f"exit codes: 0 the run completed (also when it stopped at its budget or was cancelled: the report "
    f"says so), 1 it failed or the wait timed out (the run keeps going), {EXIT_REGRESSED} a regression check "
    "found a drop beyond --max-drop, 2 the API refused the request"
)


def _group(parser: argparse.ArgumentParser, title: str) -> argparse.ArgumentParser:
    # Argument groups take the same calls as a parser; they only order the help.
    return cast(argparse.ArgumentParser, parser.add_argument_group(title))


def _add_budget(parser: argparse.ArgumentParser) -> None:
    budget = _group(
        parser, "hard limits of a run (optimizer calls included; checked before work is dispatched)"
    )
    budget.add_argument("--max-calls", type=argtypes.positive_int, metavar="N", help="model calls")
    budget.add_argument("--max-tokens", type=argtypes.positive_int, metavar="N", help="tokens in and out")
    budget.add_argument("--max-cost", type=argtypes.positive_float, metavar="USD", help="US dollars")


def _add_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        metavar="FILE",
        help="the experiment as JSON (the API's POST /experiments body); flags given replace its values",
    )
    parser.add_argument("--name", metavar="N", help="the experiment's name")
    parser.add_argument("--description", metavar="TEXT", help="what it is for")
    prompt = _group(parser, "the prompt to start from")
    prompt.add_argument("--prompt-id", metavar="ID", help="a stored prompt (latest version by default)")
    selector = prompt.add_mutually_exclusive_group()
    selector.add_argument("--version", type=argtypes.positive_int, metavar="N", help="this version")
    selector.add_argument("--label", metavar="L", help="the version this label names when a run starts")

    data = _group(parser, "the dataset")
    data.add_argument("--dataset", metavar="ID", help="a dataset (ds_...)")
    data.add_argument(
        "--dataset-version", type=argtypes.positive_int, metavar="N", help="default: the newest ready one"
    )
    data.add_argument("--optimize-split", choices=SPLITS, help="failures and screening rows (default train)")
    data.add_argument(
        "--accept-split", choices=SPLITS, help="rows a candidate must improve on (default validation)"
    )
    data.add_argument("--report-split", choices=SPLITS, help="held out for the final score (default test)")

    models = _group(parser, "models and scoring")
    models.add_argument("--target-model", metavar="M", help="the model the prompt is for (e.g. sim:default)")
    models.add_argument("--optimizer-model", metavar="M", help="proposes rewrites (e.g. sim:optimizer)")
    models.add_argument("--metric", metavar="NAME", help="the metric to improve: " + ROW_METRICS_HELP)
    models.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a parameter of --metric (repeatable; METRIC.KEY=VALUE works too; JSON values are parsed)",
    )
    models.add_argument("--temperature", type=argtypes.temperature, metavar="T", help="of the target model")
    models.add_argument(
        "--answer-tokens", type=argtypes.positive_int, metavar="N", help="max tokens per answer (default 512)"
    )

    search = _group(parser, "the search")
    search.add_argument(
        "--strategy", choices=STRATEGIES, help="default auto (a bandit spends across strategies)"
    )
    search.add_argument(
        "--parents",
        choices=("pareto", "incumbent"),
        help="parents from the Pareto frontier over validation rows (default) or the incumbent alone",
    )
    search.add_argument("--iterations", type=argtypes.positive_int, metavar="N", help="at most (default 3)")
    search.add_argument(
        "--candidates", type=argtypes.positive_int, metavar="N", help="per iteration (default 4)"
    )
    search.add_argument(
        "--minibatch",
        type=argtypes.positive_int,
        metavar="N",
        help="rows of the first screening rung (default 6)",
    )
    search.add_argument(
        "--validation-size",
        type=argtypes.positive_int,
        metavar="N",
        help="accept-split rows used (default 32)",
    )
    search.add_argument(
        "--test-size", type=argtypes.positive_int, metavar="N", help="report-split rows used (default 100)"
    )
    search.add_argument(
        "--patience",
        type=argtypes.positive_int,
        metavar="N",
        help="iterations without a gain before stopping",
    )
    search.add_argument(
        "--min-improvement",
        type=argtypes.fraction,
        metavar="X",
        help="the paired CI's lower bound must be above X to accept (default 0)",
    )
    search.add_argument(
        "--max-demos", type=argtypes.non_negative_int, metavar="N", help="few-shot demos (default 3)"
    )
    search.add_argument("--seed", type=argtypes.seed, metavar="N", help="default 0")
    search.add_argument(
        "--promote-label",
        metavar="L",
        help="point this label at the best version when a run improves for real",
    )
    _add_budget(parser)

    when = _group(parser, "schedule and regression checks")
    when.add_argument("--schedule", metavar="CRON", help="start runs on this cron (five fields)")
    when.add_argument("--time-zone", metavar="TZ", help="of --schedule (default Etc/UTC)")
    when.add_argument("--mode", choices=("optimize", "regression"), help="default optimize")
    when.add_argument(
        "--regression-label",
        metavar="L",
        help="with --mode regression: the label to check (default production)",
    )
    when.add_argument("--regression-split", choices=SPLITS, help="with --mode regression: default test")
    when.add_argument(
        "--max-drop",
        type=argtypes.fraction,
        metavar="X",
        help="with --mode regression: a paired drop beyond X marks the run regressed (default 0.02)",
    )


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-timeout",
        type=argtypes.positive_float,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="S",
        help=f"stop waiting after S seconds (default {DEFAULT_WAIT_TIMEOUT_S:g}, exit 1; the run goes on)",
    )


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `experiments` group and its commands to the top-level subparsers."""
    command = command_group(
        groups,
        common,
        "experiments",
        help="optimize a prompt on a dataset; follow, inspect and schedule runs",
    )
    create = command(
        "create",
        run.create,
        help="create an experiment (prints its estimate)",
        description="Create an experiment from flags or --file: a prompt, a dataset, a metric to improve, "
        "the models, the search settings and hard budgets. The answer includes the estimate of one run.",
        formatter_class=MetricHelpFormatter,
    )
    _add_settings(create)
    create.add_argument("--idempotency-key", metavar="K", help="a retried command gets the same experiment")

    estimate = command(
        "estimate",
        run.estimate,
        help="the upper bounds of one run (calls, tokens, cost), term by term; stores nothing",
        formatter_class=MetricHelpFormatter,
    )
    _add_settings(estimate)

    start = command(
        "start",
        run.start,
        help="start a run; --wait follows it live, then prints its report",
        description="Start a run of an experiment. With --wait: live progress on stderr, then baseline vs "
        "best on the held-out split with 95%% CIs and the paired lift, spend, the lineage of accepted "
        "versions and a diff of the best prompt against the baseline.",
        epilog=EXIT_CODES,
    )
    start.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    start.add_argument("--wait", action="store_true", help="follow the run until it ends")
    _add_wait(start)
    _add_budget(start)
    start.add_argument("--idempotency-key", metavar="K", help="a retried command gets the same run")

    watch = command(
        "watch",
        run.watch,
        help="follow a run live (default: the active or latest one), then print its report",
        epilog=EXIT_CODES,
    )
    watch.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    watch.add_argument("run_id", metavar="RUN_ID", nargs="?")
    _add_wait(watch)

    get = command(
        "get", run.get, help="an experiment's settings and latest run; --run RUN: a run with its events"
    )
    get.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    get.add_argument("--run", metavar="RUN_ID", help="show this run instead")

    listing = command("list", run.list_experiments, help="the experiments, newest first")
    listing.add_argument("--name", metavar="N", help="only those with this name")
    listing.add_argument("--status", choices=RUN_STATUSES, help="only those whose latest run has this status")
    add_paging(listing, "experiments")

    runs = command("runs", run.runs, help="an experiment's runs, newest first")
    runs.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    add_paging(runs, "runs")

    metrics = command(
        "metrics",
        run.metrics,
        help="every candidate of a run: strategy, parent, rung scores, validation CI, verdict",
    )
    metrics.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    metrics.add_argument("--run", metavar="RUN_ID", help="default: the active or latest run")

    cancel = command("cancel", run.cancel, help="stop a queued or running run (what it measured is kept)")
    cancel.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    cancel.add_argument("run_id", metavar="RUN_ID")

    diff = command("diff", run.show_diff, help="the best prompt of a run against its baseline (unified diff)")
    diff.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    diff.add_argument("--run", metavar="RUN_ID", help="default: the active or latest run")
    diff.add_argument("--from", dest="old", type=argtypes.positive_int, metavar="N", help="compare version N")
    diff.add_argument("--to", dest="new", type=argtypes.positive_int, metavar="N", help="with version N")
