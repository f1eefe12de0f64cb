"""The create and estimate request: a JSON file (`--file`), then the flags given on top of it.

Flags map one to one onto the API's fields (promptopt.experiments.models.ExperimentCreate); a flag
that is given replaces the file's value, one that is not leaves it. The API checks the result
(names, ranges, that the prompt and the dataset exist) and answers 422 with the field at fault.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from promptopt.cli.core.context import CliError
from promptopt.cli.evaluate import parse_params

#: (flag dest, body section or None for the top level, API field)
FIELDS: tuple[tuple[str, str | None, str], ...] = (
    ("name", None, "name"),
    ("description", None, "description"),
    ("mode", None, "mode"),
    ("target_model", None, "target_model"),
    ("optimizer_model", None, "optimizer_model"),
    ("promote_label", None, "promote_label"),
    ("temperature", None, "temperature"),
    ("answer_tokens", None, "max_tokens"),
    ("prompt_id", "prompt", "prompt_id"),
    ("version", "prompt", "version"),
    ("label", "prompt", "label"),
    ("dataset", "dataset", "dataset_id"),
    ("dataset_version", "dataset", "version"),
    ("optimize_split", "dataset", "optimize_split"),
    ("accept_split", "dataset", "accept_split"),
    ("report_split", "dataset", "report_split"),
    ("strategy", "optimizer", "strategy"),
    ("parents", "optimizer", "parents"),
    ("iterations", "optimizer", "max_iterations"),
    ("candidates", "optimizer", "candidates_per_iteration"),
    ("minibatch", "optimizer", "minibatch_size"),
    ("validation_size", "optimizer", "validation_size"),
    ("test_size", "optimizer", "test_size"),
    ("patience", "optimizer", "patience"),
    ("min_improvement", "optimizer", "min_improvement"),
    ("max_demos", "optimizer", "max_demos"),
    ("seed", "optimizer", "seed"),
    ("max_calls", "budget", "max_calls"),
    ("max_tokens", "budget", "max_tokens"),
    ("max_cost", "budget", "max_cost_usd"),
    ("schedule", "schedule", "cron"),
    ("time_zone", "schedule", "time_zone"),
    ("regression_label", "regression", "label"),
    ("regression_split", "regression", "split"),
    ("max_drop", "regression", "max_drop"),
)
REQUIRED = {"name": "--name", "prompt": "--prompt-id", "dataset": "--dataset", "metric": "--metric"}


def read_file(path: str) -> dict[str, Any]:
    """The JSON object in `path` (an ExperimentCreate body)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--file {path}: cannot read it ({exc})") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--file {path}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise CliError(f"--file {path}: expected a JSON object (the experiment's settings)")
    return body


def metric_params(items: list[str], metric: str) -> dict[str, Any]:
    """`--param KEY=VALUE` (or METRIC.KEY=VALUE, as `batch evaluate` takes them) for one metric."""
    qualified = [item if item.startswith(f"{metric}.") else f"{metric}.{item}" for item in items]
    return parse_params(qualified, [metric]).get(metric, {})


def _section(body: dict[str, Any], name: str, option: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        value = body[name] = {}
    if not isinstance(value, dict):
        raise CliError(f"{option}: the file's {name!r} is not an object")
    return value


def create_body(args: argparse.Namespace) -> dict[str, Any]:
    """The request body for `experiments create` / `estimate`."""
    body = read_file(args.file) if args.file else {}
    for dest, section, field in FIELDS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        option = "--" + dest.replace("_", "-")
        target = body if section is None else _section(body, section, option)
        target[field] = value
    prompt = body.get("prompt")
    if isinstance(prompt, dict) and args.version is not None:
        prompt.pop("label", None)
    if isinstance(prompt, dict) and args.label is not None:
        prompt.pop("version", None)
    if args.metric is not None:
        body["metric"] = {"name": args.metric, "params": metric_params(args.param or [], args.metric)}
    elif args.param:
        metric = body.get("metric")
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise CliError("--param applies to the --metric (give --metric NAME)")
        metric["params"] = {**(metric.get("params") or {}), **metric_params(args.param, metric["name"])}
    regression = body.get("regression")
    if regression and body.get("mode", "optimize") != "regression":
        raise CliError("--regression-label, --regression-split and --max-drop apply with --mode regression")
    missing = [option for key, option in REQUIRED.items() if not body.get(key)]
    if missing:
        raise CliError(f"missing {', '.join(missing)} (or give them in --file)")
    return body


def start_body(args: argparse.Namespace) -> dict[str, Any]:
    """`experiments start`: an empty body, or a budget for this run only."""
    budget = {"max_calls": args.max_calls, "max_tokens": args.max_tokens, "max_cost_usd": args.max_cost}
    budget = {k: v for k, v in budget.items() if v is not None}
    return {"budget": budget} if budget else {}
