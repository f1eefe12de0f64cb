"""Human views of experiments, estimates, runs and their metrics (tables drawn by `output.table`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from promptopt.cli import output

BASELINE = "c000_00"  # the baseline's candidate id in a run's metrics
SIMULATED_NOTE = "simulated models ({models}): scores measure the simulator's rules, not a language model"


def score(value: dict[str, Any] | None, *, signed: bool = False) -> str:
    """`0.520 [0.420, 0.620]` (a mean and its 95% CI); `-` when there is none."""
    if not isinstance(value, dict) or value.get("mean") is None:
        return "-"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    low, high = value.get("ci_low", value["mean"]), value.get("ci_high", value["mean"])
    return f"{fmt.format(value['mean'])} [{fmt.format(low)}, {fmt.format(high)}]"


def usd(value: Any) -> str:
    """Dollars with enough digits for per-call prices."""
    return f"${float(value or 0):.4f}"


def calls_text(usage: dict[str, Any]) -> str:
    """`412 task calls (96 from the cache), 8 optimizer calls` (and judge calls, when there are any)."""
    text = (
        f"{usage.get('task_calls', 0)} task calls ({usage.get('cache_hits', 0)} from the cache), "
        f"{usage.get('optimizer_calls', 0)} optimizer calls"
    )
    if usage.get("judge_calls"):
        text += f", {usage['judge_calls']} judge calls"
    return text


def total_calls(usage: dict[str, Any]) -> int:
    """Every model call of a run: task, optimizer and judge calls."""
    return sum(int(usage.get(name) or 0) for name in ("task_calls", "optimizer_calls", "judge_calls"))


def tokens_text(usage: dict[str, Any]) -> str:
    """`12,345 in / 2,345 out`."""
    return f"{int(usage.get('input_tokens') or 0):,} in / {int(usage.get('output_tokens') or 0):,} out"


def wall_time(run: dict[str, Any]) -> str | None:
    """Seconds from the run's creation to its end (or to its last update while it runs)."""
    try:
        start = datetime.fromisoformat(str(run["created_at"]))
        end = datetime.fromisoformat(str(run.get("finished_at") or run["updated_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return f"{(end - start).total_seconds():.1f}s"


def simulated_note(experiment: dict[str, Any]) -> str:
    """The plain label simulated results carry."""
    used = [experiment.get("target_model")]
    if experiment.get("mode", "optimize") == "optimize":
        used.append(experiment.get("optimizer_model"))
    models = sorted({str(m) for m in used if m})
    shown = ", ".join(m for m in models if m.startswith("sim:")) or "sim:…"
    return SIMULATED_NOTE.format(models=shown)


# -- estimate --------------------------------------------------------------------------------------


def estimate_text(estimate: dict[str, Any]) -> str:
    """The terms (step, calls, formula) and the totals of an estimate."""
    rows = [
        (t.get("step"), f"{int(t.get('calls') or 0):,}", t.get("formula"))
        for t in estimate.get("terms") or []
    ]
    text = output.table(["STEP", "CALLS", "FORMULA"], rows)
    totals = [
        ("task calls", f"{int(estimate.get('task_calls') or 0):,}"),
        ("optimizer calls", f"{int(estimate.get('optimizer_calls') or 0):,}"),
        *([("judge calls", f"{int(estimate['judge_calls']):,}")] if estimate.get("judge_calls") else []),
        ("tokens", tokens_text(estimate)),
        ("cost", usd(estimate.get("cost_usd"))),
        ("within budget", "yes" if estimate.get("within_budget") else "NO: the run stops at its budget"),
    ]
    text += "\n\nupper bounds for one run:\n" + output.fields(totals)
    for note in estimate.get("notes") or []:
        text += f"\nnote: {note}"
    return text


# -- experiments -----------------------------------------------------------------------------------


def _prompt_text(prompt: dict[str, Any]) -> str:
    if prompt.get("version") is not None:
        return f"{prompt.get('prompt_id')} version {prompt['version']}"
    if prompt.get("label"):
        return f"{prompt.get('prompt_id')} label {prompt['label']}"
    return f"{prompt.get('prompt_id')} (latest version)"


def _dataset_text(dataset: dict[str, Any]) -> str:
    version = f" version {dataset['version']}" if dataset.get("version") is not None else ""
    splits = (
        f"optimize on {dataset.get('optimize_split', 'train')}, accept on "
        f"{dataset.get('accept_split', 'validation')}, report on {dataset.get('report_split', 'test')}"
    )
    return f"{dataset.get('dataset_id')}{version} ({splits})"


def _metric_text(metric: dict[str, Any]) -> str:
    params = metric.get("params") or {}
    return str(metric.get("name")) + (f" ({output.metadata_text(params)})" if params else "")


def _budget_text(budget: dict[str, Any]) -> str:
    parts = []
    if budget.get("max_calls") is not None:
        parts.append(f"{budget['max_calls']:,} calls")
    if budget.get("max_tokens") is not None:
        parts.append(f"{budget['max_tokens']:,} tokens")
    if budget.get("max_cost_usd") is not None:
        parts.append(usd(budget["max_cost_usd"]))
    return ", ".join(parts) or "none"


def _optimizer_text(settings: dict[str, Any]) -> str:
    return (
        f"{settings.get('strategy', 'auto')}: {settings.get('max_iterations')} iterations x "
        f"{settings.get('candidates_per_iteration')} candidates, minibatch {settings.get('minibatch_size')}, "
        f"validation {settings.get('validation_size')}, test {settings.get('test_size')}, patience "
        f"{settings.get('patience')}, min improvement {settings.get('min_improvement')}, "
        f"seed {settings.get('seed')}"
    )


def schedule_text(schedule: dict[str, Any] | None) -> str:
    """`*/5 * * * * (Etc/UTC)`, `… paused` or `-`."""
    if not schedule:
        return "-"
    text = f"{schedule.get('cron')} ({schedule.get('time_zone', 'Etc/UTC')})"
    return text if schedule.get("enabled", True) else text + " paused"


def experiment_fields(experiment: dict[str, Any]) -> list[tuple[str, Any]]:
    """An experiment as `key: value` pairs."""
    mode = str(experiment.get("mode"))
    pairs: list[tuple[str, Any]] = [
        ("experiment_id", experiment.get("experiment_id")),
        ("name", experiment.get("name")),
        ("mode", mode),
        ("prompt", _prompt_text(experiment.get("prompt") or {})),
        ("dataset", _dataset_text(experiment.get("dataset") or {})),
        ("target model", experiment.get("target_model")),
    ]
    if mode == "optimize":
        pairs += [
            ("optimizer model", experiment.get("optimizer_model")),
            ("optimizer", _optimizer_text(experiment.get("optimizer") or {})),
        ]
    else:
        regression = experiment.get("regression") or {}
        pairs.append(
            (
                "regression",
                f"label {regression.get('label')} on {regression.get('split')}, alert on a drop beyond "
                f"{regression.get('max_drop')}",
            )
        )
    pairs += [
        ("metric", _metric_text(experiment.get("metric") or {})),
        ("budget", _budget_text(experiment.get("budget") or {})),
        ("promote label", experiment.get("promote_label") or "-"),
        ("schedule", schedule_text(experiment.get("schedule"))),
    ]
    if experiment.get("next_run_at"):
        pairs.append(("next run", output.timestamp(experiment["next_run_at"])))
    runs = f"{experiment.get('runs', 0)}"
    if experiment.get("last_run_id"):
        runs += f"; latest {experiment['last_run_id']} {experiment.get('last_run_status') or ''}".rstrip()
    if experiment.get("active_run_id"):
        runs += f" (active: {experiment['active_run_id']})"
    pairs.append(("runs", runs))
    pairs.append(
        ("created", f"{output.timestamp(experiment.get('created_at'))} by {experiment.get('created_by')}")
    )
    if str(experiment.get("target_model", "")).startswith("sim:") or str(
        experiment.get("optimizer_model", "")
    ).startswith("sim:"):
        pairs.append(("note", simulated_note(experiment)))
    return pairs


def experiments_table(items: list[dict[str, Any]]) -> str:
    """One line per experiment."""
    rows = [
        (
            e.get("experiment_id"),
            e.get("name"),
            e.get("mode"),
            e.get("last_run_status"),
            e.get("runs", 0),
            schedule_text(e.get("schedule")),
            output.timestamp(e.get("updated_at")),
        )
        for e in items
    ]
    return output.table(["EXPERIMENT", "NAME", "MODE", "LAST RUN", "RUNS", "SCHEDULE", "UPDATED"], rows)


# -- runs ------------------------------------------------------------------------------------------


def runs_table(items: list[dict[str, Any]]) -> str:
    """One line per run."""
    rows = []
    for r in items:
        usage = r.get("usage") or {}
        rows.append(
            (
                r.get("run_id"),
                r.get("status"),
                r.get("trigger"),
                f"{float(r.get('progress') or 0):.0%}",
                output.cell(r.get("step"), 40),
                score(r.get("baseline")),
                score(r.get("best")),
                total_calls(usage),
                output.timestamp(r.get("created_at")),
            )
        )
    headers = [
        "RUN",
        "STATUS",
        "TRIGGER",
        "DONE",
        "STEP",
        "BASELINE (ACCEPT)",
        "BEST (ACCEPT)",
        "CALLS",
        "CREATED",
    ]
    return output.table(headers, rows)


def run_fields(run: dict[str, Any]) -> list[tuple[str, Any]]:
    """A run as `key: value` pairs (while it runs, or for `get --run`)."""
    usage = run.get("usage") or {}
    pairs: list[tuple[str, Any]] = [
        ("run_id", run.get("run_id")),
        ("status", run.get("status")),
        ("trigger", run.get("trigger")),
        ("step", run.get("step")),
        ("progress", f"{float(run.get('progress') or 0):.0%}, iteration {run.get('iteration', 0)}"),
        ("calls", calls_text(usage)),
        ("tokens", tokens_text(usage)),
        ("cost", usd(usage.get("cost_usd"))),
    ]
    if run.get("baseline"):
        pairs.append(("baseline", score(run["baseline"]) + " on the accept split"))
    if run.get("best"):
        pairs.append(
            ("best", score(run["best"]) + f" on the accept split (version {run.get('best_version')})")
        )
    if run.get("reason"):
        pairs.append(("reason", run["reason"]))
    if took := wall_time(run):
        pairs.append(("wall time", took))
    return pairs


# -- the result of a run ---------------------------------------------------------------------------


def result_table(metrics: dict[str, Any], *, mode: str = "optimize") -> str:
    """Baseline vs best on the held-out split, with CIs and the paired lift (or a regression check)."""
    base, best, lift = metrics.get("baseline_test"), metrics.get("best_test"), metrics.get("paired_lift")
    baseline_version = baseline_of(metrics)
    if mode == "regression":  # one version, compared with the previous check on the same rows
        checked = f"v{baseline_version}" if baseline_version else "-"
        change = score(lift, signed=True) if lift else "- (the first check: nothing to compare with)"
        rows = [
            ("checked version", checked, score(best), (best or {}).get("n")),
            ("change vs the previous check (paired)", "", change, (lift or {}).get("n")),
        ]
        return output.table(["REGRESSION CHECK", "VERSION", "MEAN [95% CI]", "N"], rows)
    best_version = metrics.get("best_version")
    rows = [
        ("baseline", f"v{baseline_version}" if baseline_version else "-", score(base), (base or {}).get("n")),
        ("best", f"v{best_version}" if best_version else "-", score(best), (best or {}).get("n")),
        ("paired lift (best - baseline)", "", score(lift, signed=True), (lift or {}).get("n")),
    ]
    return output.table(["HELD-OUT TEST SPLIT", "VERSION", "MEAN [95% CI]", "N"], rows)


def usage_fields(run: dict[str, Any]) -> str:
    """Calls, tokens, cost and wall time of a run."""
    usage = run.get("usage") or {}
    pairs = [
        ("calls", calls_text(usage)),
        ("tokens", tokens_text(usage)),
        ("cost", usd(usage.get("cost_usd"))),
        ("wall time", wall_time(run) or "-"),
    ]
    return output.fields(pairs)


def baseline_of(metrics: dict[str, Any]) -> int | None:
    """The prompt version the run started from (the baseline candidate's version)."""
    for iteration in metrics.get("iterations") or []:
        for cand in iteration.get("candidates") or []:
            if cand.get("candidate_id") == BASELINE:
                version = cand.get("prompt_version")
                return int(version) if version is not None else None
    return None


def _candidates(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for it in metrics.get("iterations") or [] for c in it.get("candidates") or []]


def lineage_table(metrics: dict[str, Any]) -> str | None:
    """The best version's ancestry, baseline first: iteration, version, parent, strategy, validation CI."""
    cands = {c["candidate_id"]: c for c in _candidates(metrics)}
    best = next(
        (
            c
            for c in cands.values()
            if metrics.get("best_version") and c.get("prompt_version") == metrics["best_version"]
        ),
        None,
    )
    chain: list[dict[str, Any]] = []
    while best is not None and best not in chain:
        chain.insert(0, best)
        best = cands.get(best.get("parent") or "")
    if not chain:
        chain = [c for c in cands.values() if c.get("accepted")]
    if not chain:
        return None
    rows = []
    for c in chain:
        parent = c.get("parent")
        parent_text = (
            "-" if not parent else f"{parent} (v{(cands.get(parent) or {}).get('prompt_version') or '?'})"
        )
        rows.append(
            (
                c.get("iteration"),
                c.get("candidate_id"),
                f"v{c['prompt_version']}" if c.get("prompt_version") else "-",
                parent_text,
                c.get("strategy"),
                score(c.get("validation")),
            )
        )
    return output.table(
        ["ITERATION", "CANDIDATE", "VERSION", "PARENT", "STRATEGY", "VALIDATION [95% CI]"], rows
    )


def candidates_table(metrics: dict[str, Any]) -> str | None:
    """Every candidate: strategy, parent, rung scores, validation CI, version, verdict."""
    rows = []
    for c in _candidates(metrics):
        rungs = " > ".join(f"{float(s):.2f}" for s in c.get("rung_scores") or []) or "-"
        rows.append(
            (
                c.get("iteration"),
                c.get("candidate_id"),
                c.get("strategy"),
                c.get("parent") or "-",
                rungs,
                score(c.get("validation")),
                f"v{c['prompt_version']}" if c.get("prompt_version") else "-",
                output.cell(c.get("verdict"), 70),
            )
        )
    if not rows:
        return None
    headers = [
        "IT",
        "CANDIDATE",
        "STRATEGY",
        "PARENT",
        "RUNG SCORES",
        "VALIDATION [95% CI]",
        "VERSION",
        "VERDICT",
    ]
    return output.table(headers, rows)
