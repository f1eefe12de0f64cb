"""`promptopt evaluate FILE --metric NAME ...`: score a JSONL file of predictions and references.

The metric names in `--help` come from `promptopt.evaluation`, imported only when help is shown
(it loads pydantic, which the CLI keeps off its start-up path).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from promptopt.cli import output
from promptopt.cli.core.commands import Groups, top_level
from promptopt.cli.core.context import EXIT_OK, CliError, Context

#: Placeholders in help texts that MetricHelpFormatter fills from promptopt.evaluation.
ALL_METRICS_HELP = "{all_metrics}"


def metric_names(*, model_backed: bool = True) -> list[str]:
    """The metric names the API knows: every one, or only the row-at-a-time (deterministic) ones."""
    from promptopt.evaluation import METRIC_NAMES, METRICS

    return list(METRIC_NAMES) if model_backed else sorted(METRICS)


def metrics_help(*, model_backed: bool = True) -> str:
    """`contains, exact_match, ...; and, calling a model: embedding_similarity, llm_judge`."""
    from promptopt.evaluation import MODEL_METRICS

    names = metric_names(model_backed=model_backed)
    plain = ", ".join(n for n in names if n not in MODEL_METRICS)
    called = ", ".join(n for n in names if n in MODEL_METRICS)
    return plain + (f"; and, calling a model: {called}" if called else "")


class MetricHelpFormatter(argparse.HelpFormatter):
    """Fills the metric placeholders of help texts when help is printed (never at start-up)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text and ALL_METRICS_HELP in text:
            text = text.replace(ALL_METRICS_HELP, metrics_help(model_backed=True).replace("%", "%%"))
        return text


def read_rows(path: str) -> tuple[list[str], list[str | None]]:
    """Predictions and references from JSONL lines holding `prediction` and `reference`."""
    predictions: list[str] = []
    references: list[str | None] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read it ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise CliError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prediction"), str):
            raise CliError(f"{path}:{number}: expected an object with a string 'prediction'")
        reference = row.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise CliError(f"{path}:{number}: 'reference' must be a string or null")
        predictions.append(row["prediction"])
        references.append(reference)
    if not predictions:
        raise CliError(f"{path}: no rows")
    return predictions, references


def parse_params(items: list[str], metrics: list[str]) -> dict[str, dict[str, Any]]:
    """`METRIC.KEY=VALUE` pairs; VALUE is JSON when it parses as JSON, else a string."""
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        metric, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise CliError(f"--param {item!r}: expected METRIC.KEY=VALUE, e.g. numeric.tolerance=0.01")
        if metric not in metrics:
            raise CliError(f"--param {item!r}: {metric} is not one of the --metric names")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        params.setdefault(metric, {})[key] = value
    return params


def _evaluate(args: argparse.Namespace, ctx: Context) -> int:
    predictions, references = read_rows(args.file)
    params = parse_params(args.param or [], args.metric)
    body = {
        "predictions": predictions,
        "references": references,
        "metrics": [{"name": m, "params": params.get(m, {})} for m in args.metric],
        "include_rows": args.rows,
    }
    with ctx.client() as api:
        reply = api.evaluate(body)
    result = reply.body or {}
    if ctx.json:
        output.emit_json(result)
        return EXIT_OK
    rows = [
        (m["name"], f"{m['mean']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]", m["n"])
        for m in result.get("metrics", [])
    ]
    output.emit(output.table(["METRIC", "MEAN", "95% CI", "N"], rows))
    return EXIT_OK


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `evaluate` command to the top-level subparsers."""
    parser = top_level(
        groups,
        common,
        "evaluate",
        _evaluate,
        help="score predictions against references with built-in metrics",
        description="Score a JSONL file whose lines hold 'prediction' and 'reference'. Nothing is stored. "
        "Model-backed metrics call a model: the API's default model (sim:default locally) unless --param "
        "METRIC.model=M names one.",
        formatter_class=MetricHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="JSONL: one {prediction, reference} object per line")
    parser.add_argument(
        "--metric",
        action="append",
        required=True,
        metavar="NAME",
        help="repeatable: " + ALL_METRICS_HELP,
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="METRIC.KEY=VALUE",
        help="a metric parameter, e.g. numeric.tolerance=0.01, regex.pattern=..., llm_judge.rubric=... "
        "(JSON values are parsed)",
    )
    parser.add_argument("--rows", action="store_true", help="include per-row scores (with --json)")
