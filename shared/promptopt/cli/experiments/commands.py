"""The `experiments` command handlers."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from promptopt.cli import output
from promptopt.cli.core.context import EXIT_OK, CliError, Context
from promptopt.cli.core.paging import collect, more_hint
from promptopt.cli.experiments import diff, live, render
from promptopt.cli.experiments.api import ExperimentApi
from promptopt.cli.experiments.body import create_body, start_body


def _is_simulated(experiment: dict[str, Any]) -> bool:
    models = (experiment.get("target_model"), experiment.get("optimizer_model"))
    return any(str(m or "").startswith("sim:") for m in models)


def create(args: argparse.Namespace, ctx: Context) -> int:
    """POST /experiments."""
    body = create_body(args)
    key = str(args.idempotency_key or uuid.uuid4())
    with ctx.client() as api:
        created: dict[str, Any] = ExperimentApi(api).create(body, idempotency_key=key).body or {}
    if ctx.json:
        output.emit_json(created)
        return EXIT_OK
    text = output.fields(render.experiment_fields(created))
    if isinstance(created.get("estimate"), dict):
        text += "\n\n" + render.estimate_text(created["estimate"])
    output.emit(text)
    output.note(f"start a run with: promptopt experiments start {created.get('experiment_id')} --wait")
    return EXIT_OK


def estimate(args: argparse.Namespace, ctx: Context) -> int:
    """POST /experiments/estimate."""
    body = create_body(args)
    with ctx.client() as api:
        found: dict[str, Any] = ExperimentApi(api).estimate(body).body or {}
    if ctx.json:
        output.emit_json(found)
    else:
        output.emit(render.estimate_text(found))
    return EXIT_OK


def report(experiments: ExperimentApi, experiment: dict[str, Any], run: dict[str, Any]) -> None:
    """A finished run for people: the held-out result, spend, lineage and the diff of the best prompt."""
    experiment_id, run_id = str(run.get("experiment_id")), str(run.get("run_id"))
    metrics: dict[str, Any] = experiments.metrics(experiment_id, run_id=run_id).body or {}
    mode = str(experiment.get("mode") or "optimize")
    sections = [
        f"{run_id} {run.get('status')} after {render.wall_time(run) or '-'}: {run.get('reason') or '-'}",
        render.result_table(metrics, mode=mode),
        render.usage_fields(run),
    ]
    if mode == "optimize":
        if lineage := render.lineage_table(metrics):
            sections.append("lineage of the best version (accepted candidates, baseline first):\n" + lineage)
        sections.append(_diff_text(experiments, experiment, metrics))
    if metrics.get("simulated") or _is_simulated(experiment):
        sections.append(render.simulated_note(experiment))
    output.emit("\n\n".join(s for s in sections if s))


def _compared(
    experiment: dict[str, Any], metrics: dict[str, Any], old: int | None, new: int | None
) -> tuple[str, int | None, int | None]:
    """The prompt and the two versions to compare: the run's baseline and best unless given."""
    prompt_id = str((experiment.get("prompt") or {}).get("prompt_id"))
    old = old if old is not None else render.baseline_of(metrics)
    new = new if new is not None else metrics.get("best_version")
    return prompt_id, old, new


def _diff_lines(experiments: ExperimentApi, prompt_id: str, old: int, new: int) -> list[str]:
    before = experiments.prompt(prompt_id, old).body or {}
    after = experiments.prompt(prompt_id, new).body or {}
    return diff.unified(prompt_id, before, after)


def _diff_text(
    experiments: ExperimentApi,
    experiment: dict[str, Any],
    metrics: dict[str, Any],
    *,
    old: int | None = None,
    new: int | None = None,
) -> str:
    prompt_id, old, new = _compared(experiment, metrics, old, new)
    if old is None or new is None:
        return "no prompt versions to compare yet"
    if old == new:
        return f"the best prompt is the baseline (v{old}): no better version was found"
    lines = _diff_lines(experiments, prompt_id, old, new)
    if not lines:
        return f"v{old} and v{new} have the same text"
    return f"the best prompt (v{new}) against the baseline (v{old}):\n" + diff.render(lines)


def _follow(
    ctx: Context, experiments: ExperimentApi, experiment: dict[str, Any], run_id: str, timeout: float
) -> int:
    experiment_id = str(experiment.get("experiment_id"))
    iterations = (experiment.get("optimizer") or {}).get("max_iterations")
    run = live.wait_for_run(
        experiments,
        experiment_id,
        run_id,
        timeout_s=timeout,
        iterations=iterations if experiment.get("mode", "optimize") == "optimize" else None,
    )
    if ctx.json:
        output.emit_json(run)
    else:
        report(experiments, experiment, run)
    return live.outcome(run)


def start(args: argparse.Namespace, ctx: Context) -> int:
    """POST /experiments/{id}/start, then (--wait) follow the run to its end."""
    key = str(args.idempotency_key or uuid.uuid4())
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        run: dict[str, Any] = (
            experiments.start(args.experiment_id, start_body(args), idempotency_key=key).body or {}
        )
        run_id = str(run.get("run_id"))
        if not args.wait:
            if ctx.json:
                output.emit_json(run)
            else:
                output.emit(output.fields(render.run_fields(run)))
                output.note(f"follow it with: promptopt experiments watch {args.experiment_id} {run_id}")
            return EXIT_OK
        experiment: dict[str, Any] = experiments.get(args.experiment_id).body or {}
        if not ctx.json:
            simulated = " (simulated models)" if _is_simulated(experiment) else ""
            output.note(f"started {run_id} of {args.experiment_id}{simulated}")
        return _follow(ctx, experiments, experiment, run_id, args.wait_timeout)


def _pick_run(experiment: dict[str, Any], run_id: str | None) -> str:
    chosen = run_id or experiment.get("active_run_id") or experiment.get("last_run_id")
    if not chosen:
        raise CliError(
            f"{experiment.get('experiment_id')} has no runs yet; start one with: promptopt experiments start "
            f"{experiment.get('experiment_id')}"
        )
    return str(chosen)


def watch(args: argparse.Namespace, ctx: Context) -> int:
    """Follow a run (default: the active or latest one) with live progress, then its report."""
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        experiment: dict[str, Any] = experiments.get(args.experiment_id).body or {}
        run_id = _pick_run(experiment, args.run_id)
        return _follow(ctx, experiments, experiment, run_id, args.wait_timeout)


def get(args: argparse.Namespace, ctx: Context) -> int:
    """GET /experiments/{id}, or with --run one of its runs with its recent events."""
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        if args.run:
            run: dict[str, Any] = experiments.run(args.experiment_id, args.run).body or {}
            if ctx.json:
                output.emit_json(run)
                return EXIT_OK
            text = output.fields(render.run_fields(run))
            events = [
                (output.timestamp(e.get("at")), e.get("kind"), e.get("message"))
                for e in run.get("events") or []
            ]
            if events:
                text += "\n\n" + output.table(["AT", "KIND", "EVENT"], events)
            output.emit(text)
            return EXIT_OK
        experiment: dict[str, Any] = experiments.get(args.experiment_id).body or {}
    if ctx.json:
        output.emit_json(experiment)
    else:
        output.emit(output.fields(render.experiment_fields(experiment)))
    return EXIT_OK


def list_experiments(args: argparse.Namespace, ctx: Context) -> int:
    """GET /experiments."""
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        page = collect(
            args,
            lambda token: experiments.list(
                name=args.name, status=args.status, page_size=args.page_size, page_token=token
            ),
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    items = [e for e in page.get("items") or [] if isinstance(e, dict)]
    if items:
        output.emit(render.experiments_table(items))
    else:
        output.note("no experiments" + (" match" if args.name or args.status else " yet"))
    command = ["promptopt", "experiments", "list"]
    for option in ("name", "status"):
        if getattr(args, option):
            command += [f"--{option}", getattr(args, option)]
    more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def runs(args: argparse.Namespace, ctx: Context) -> int:
    """GET /experiments/{id}/runs."""
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        page = collect(
            args,
            lambda token: experiments.runs(args.experiment_id, page_size=args.page_size, page_token=token),
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    items = [r for r in page.get("items") or [] if isinstance(r, dict)]
    if items:
        output.emit(render.runs_table(items))
    else:
        output.note(f"no runs of {args.experiment_id} yet")
    more_hint(["promptopt", "experiments", "runs", args.experiment_id], args, page.get("next_page_token"))
    return EXIT_OK


def metrics(args: argparse.Namespace, ctx: Context) -> int:
    """GET /experiments/{id}/metrics: every candidate of every iteration, and the held-out result."""
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        found: dict[str, Any] = experiments.metrics(args.experiment_id, run_id=args.run).body or {}
    if ctx.json:
        output.emit_json(found)
        return EXIT_OK
    if not found.get("run_id"):
        output.note(f"{args.experiment_id} has no runs yet")
        return EXIT_OK
    sections = [f"run {found.get('run_id')}: {found.get('status')}"]
    if table := render.candidates_table(found):
        sections.append(table)
    if found.get("best_test") or found.get("baseline_test"):
        mode = "optimize" if found.get("baseline_test") else "regression"
        sections.append(render.result_table(found, mode=mode))
    usage = found.get("usage") or {}
    sections.append(
        output.fields(
            [
                ("calls", render.calls_text(usage)),
                ("tokens", render.tokens_text(usage)),
                ("cost", render.usd(usage.get("cost_usd"))),
            ]
        )
    )
    if found.get("simulated"):
        sections.append(render.SIMULATED_NOTE.format(models="sim:*"))
    output.emit("\n\n".join(sections))
    return EXIT_OK


def cancel(args: argparse.Namespace, ctx: Context) -> int:
    """POST /experiments/{id}/runs/{run_id}/cancel."""
    with ctx.client() as api:
        run: dict[str, Any] = ExperimentApi(api).cancel(args.experiment_id, args.run_id).body or {}
    if ctx.json:
        output.emit_json(run)
    else:
        output.emit(
            f"{run.get('run_id')} {run.get('status')}: no new work is dispatched; what it measured is kept"
        )
    return EXIT_OK


def show_diff(args: argparse.Namespace, ctx: Context) -> int:
    """The best prompt of a run against its baseline (or any two versions with --from/--to)."""
    with ctx.client() as api:
        experiments = ExperimentApi(api)
        experiment: dict[str, Any] = experiments.get(args.experiment_id).body or {}
        found: dict[str, Any] = {}
        if args.old is None or args.new is None:
            found = experiments.metrics(args.experiment_id, run_id=args.run).body or {}
        if not ctx.json:
            output.emit(_diff_text(experiments, experiment, found, old=args.old, new=args.new))
            return EXIT_OK
        prompt_id, old, new = _compared(experiment, found, args.old, args.new)
        lines = _diff_lines(experiments, prompt_id, old, new) if old is not None and new is not None else []
    output.emit_json({"prompt_id": prompt_id, "from_version": old, "to_version": new, "diff": lines})
    return EXIT_OK
