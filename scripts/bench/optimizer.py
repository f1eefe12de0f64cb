"""Optimizer benchmark on the SIMULATED models: strategies against the achievable optimum, costs, wall time.

Everything here runs against the simulator (`sim:s<seed>` targets, `sim:optimizer`): the scores
measure how well a search strategy climbs the simulator's landscape (promptopt.llm.sim.landscape),
not how a language model would answer. Every table says so.

1. strategies (`--strategies`): at equal budgets of task calls (`--budgets`, default 300 and 800),
   on 4 bundled BBH tasks x 3 seeds (the seed picks the landscape, the dataset split and the run
   seed), the strategies side by side, each run in process by promptopt.local.sim_search (the run
   engine's plan, proposals and selection, without Firestore or queues): random rewrites (reads
   no failures), history (OPRO-like), reflective with a single incumbent as parent, reflective with
   GEPA's Pareto frontier, few-shot, and auto (the product default). Per strategy and task: the
   test-split score, the paired lift over the seed prompt ("{input}") with its 95% CI (rows of the
   3 seeds pooled), the share of the achievable lift reached ((best - baseline) / (achievable -
   baseline), achievable = the landscape's best expected score on the test rows), task and
   optimizer calls, tokens and wall time; then auto against random, paired, per task. Settings:
   the defaults, except that the budget decides when a run stops and validation takes 40 rows
   (BUDGETED).
2. standard (on unless `--no-standard`): the product's default settings (auto, 3 iterations x 4
   candidates, minibatch 6, validation <= 32 rows, patience 2, no budget) on the same tasks and
   seeds, then a larger configuration (the earlier defaults: 4 iterations, minibatch 8, validation
   <= 60 rows): lift with CI; the search's task calls (baseline, screening, validation) and the
   final test evaluation's apart; tokens and cost per iteration and per accepted improvement; the
   search's task calls as a ratio to DSPy MIPROv2 light (515 task calls) and GEPA light (~780
   metric calls), whose counts exclude a held-out test evaluation too.
3. wall time (`--wall`): the run plans of (2) replayed against a simulator that takes 200 ms per
   call (`sim:<seed>@200ms`, `sim:optimizer@200ms`), in one process with 32 threads (DSPy style,
   the same total concurrency) and with the run's natural parallelism (every call of a step at
   once), against the critical-path ideal (each step's longest job in rounds of 32 calls of 200 ms,
   plus one optimizer round per iteration). The durable path (the engine on the emulators) is
   measured by scripts/bench/optimizer_durable.py (`--durable`).

Usage: scripts/bench/optimizer [--budgets 300,800] [--seeds 0,1,2] [--tasks ...] [--strategies ...]
       [--no-strategies] [--no-standard] [--wall] [--durable] [--latency-ms 200[,1000,3000]]
       [--durable-runs N] [--durable-tasks N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "shared"))

from promptopt.experiments.models import OptimizerSettings  # noqa: E402
from promptopt.experiments.proposals import PromptText  # noqa: E402
from promptopt.experiments.selection import Lift, paired_lift  # noqa: E402
from promptopt.llm import registry  # noqa: E402
from promptopt.llm.sim import landscape as sim_landscape  # noqa: E402
from promptopt.llm.types import CompletionRequest  # noqa: E402
from promptopt.local.sim_search import SearchConfig, SearchResult, Step, Task, load_task, search  # noqa: E402

TASKS = ("bbh/boolean_expressions", "bbh/web_of_lies", "bbh/navigate", "bbh/object_counting")
STRATEGIES = {
    "random": ("random", "pareto"),
    "history": ("history", "pareto"),
    "reflective (incumbent)": ("reflective", "incumbent"),
    "reflective (Pareto)": ("reflective", "pareto"),
    "fewshot": ("fewshot", "pareto"),
    "auto (default)": ("auto", "pareto"),
}
BASELINE = PromptText("", "{input}")
MIPRO_LIGHT = 515  # DSPy MIPROv2 light: task calls for one predictor, 100 validation rows
GEPA_LIGHT = 780  # GEPA light: metric calls (approximate)
ROW_CONCURRENCY = 32  # rows a chunk runs at once (the platform's batch chunk)
BANNER = "SIMULATED: sim:* target and optimizer models (offline rules, not a language model)"


@dataclass
class Cell:
    """The runs of one strategy on one task (one per seed)."""

    runs: list[SearchResult]
    achievable: list[float]

    @property
    def score(self) -> float:
        return _mean([sum(r.best_test) / len(r.best_test) for r in self.runs])

    @property
    def baseline(self) -> float:
        return _mean([sum(r.baseline_test) / len(r.baseline_test) for r in self.runs])

    def lift(self) -> Lift:
        best = [s for r in self.runs for s in r.best_test]
        base = [s for r in self.runs for s in r.baseline_test]
        return paired_lift(best, base, seed=0)

    @property
    def reached(self) -> float:
        shares = []
        for run, top in zip(self.runs, self.achievable, strict=True):
            base = sum(run.baseline_test) / len(run.baseline_test)
            got = sum(run.best_test) / len(run.best_test)
            shares.append((got - base) / (top - base) if top - base > 1e-9 else 1.0)
        return _mean(shares)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _ci(lift: Lift) -> str:
    return f"{lift.mean:+.3f} [{lift.ci_low:+.3f}, {lift.ci_high:+.3f}]"


def achievable(task: Task, seed: int) -> float:
    """The landscape's best expected score on the task's test rows (never shown to any strategy)."""
    problems = [r.inputs[task.column] for r in task.test[: OptimizerSettings().test_size]]
    return sim_landscape.best(task.family, f"s{seed}", problems, task.metric).score


def run(
    task: Task, seed: int, strategy: str, parents: str, settings: OptimizerSettings, budget: int | None
) -> SearchResult:
    config = SearchConfig(
        strategy=strategy,
        settings=settings.model_copy(update={"strategy": strategy, "parents": parents}),
        max_task_calls=budget,
        target_model=f"sim:s{seed}",
    )
    return search(task, BASELINE, config, seed=seed)


# Runs bounded by a budget of task calls: the budget decides when a run stops, and with hundreds of
# calls to spend, validation on 40 rows (most of a bundled task's ~50-row validation split) can
# confirm the gains of a few rows that remain near the top; the defaults' 32 rows often cannot.
BUDGETED = {"max_iterations": 50, "patience": 10, "validation_size": 40}


def strategies_table(
    tasks: Sequence[str], seeds: Sequence[int], budgets: Sequence[int], names: Sequence[str]
) -> None:
    settings = OptimizerSettings(**BUDGETED)  # type: ignore[arg-type]
    print(f"\n## Strategies at equal budgets of task calls ({BANNER})\n")
    print(
        f"{len(tasks)} tasks x {len(seeds)} seeds; seed prompt '{{input}}'; settings: "
        f"{settings.candidates_per_iteration} candidates per iteration, minibatch "
        f"{settings.minibatch_size}, successive halving to 2, the best validated on <= "
        f"{settings.validation_size} rows (first look on half), test <= {settings.test_size} rows of the "
        "task's own split (about 50), patience 10 (the budget decides when a run stops; otherwise the "
        "product defaults, but for validation on 40 rows instead of 32: with hundreds of calls to spend, "
        "it confirms the few-row gains left near the top). Lift: paired, "
        "95% bootstrap CI over the test rows of all seeds. Reached: share of the achievable lift "
        "(achievable = the landscape's best expected test score; mean over seeds). Calls: task calls "
        "for the search (plus the final test evaluation of baseline and best, not counted against the "
        "budget) / optimizer calls, per run.\n"
    )
    loaded = {(t, s): load_task(t, s) for t in tasks for s in seeds}
    tops = {(t, s): achievable(loaded[(t, s)], s) for t in tasks for s in seeds}
    for budget in budgets:
        print(f"\n### Budget {budget} task calls per run (SIMULATED)\n")
        print(
            "| strategy | task | test score | lift over seed prompt [95% "
            "CI] | reached | calls (task/optimizer) | tokens | wall s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        cells: dict[tuple[str, str], Cell] = {}
        for name in names:
            strategy, parents = STRATEGIES[name]
            for t in tasks:
                started = time.perf_counter()
                runs = [run(loaded[(t, s)], s, strategy, parents, settings, budget) for s in seeds]
                cell = Cell(runs, [tops[(t, s)] for s in seeds])
                cells[(name, t)] = cell
                tokens = _mean(
                    [
                        r.input_tokens
                        + r.output_tokens
                        + r.optimizer_input_tokens
                        + r.optimizer_output_tokens
                        for r in runs
                    ]
                )
                print(
                    f"| {name} | {t.split('/')[1]} | {cell.score:.3f} (from {cell.baseline:.3f}; achievable "
                    f"{_mean(cell.achievable):.3f}) | {_ci(cell.lift())} | {cell.reached:.0%} | "
                    f"{_mean([r.search_calls for r in runs]):.0f}/"
                    f"{_mean([r.optimizer_calls for r in runs]):.0f} "
                    "| "
                    f"{tokens:,.0f} | {time.perf_counter() - started:.1f} |",
                    flush=True,
                )
        if "auto (default)" in names:
            print(
                f"\nauto (default) by task at budget {budget}, SIMULATED: mean share of "
                "the achievable lift; paired against each strategy on the same test rows\n"
            )
            print(
                "| task | auto reached | "
                + " | ".join(f"vs {n}" for n in names if n != "auto (default)")
                + " |"
            )
            print("|---|---|" + "---|" * (len(names) - 1))
            for t in tasks:
                auto = cells[("auto (default)", t)]
                row = [f"{auto.reached:.0%}"]
                for n in names:
                    if n == "auto (default)":
                        continue
                    other = cells[(n, t)]
                    lift = paired_lift(
                        [s for r in auto.runs for s in r.best_test],
                        [s for r in other.runs for s in r.best_test],
                        seed=0,
                    )
                    row.append(_ci(lift) + (" *" if lift.ci_low > 0 else ""))
                print(f"| {t.split('/')[1]} | " + " | ".join(row) + " |")
            overall = _mean([cells[("auto (default)", t)].reached for t in tasks])
            print(
                f"\nauto reaches {overall:.0%} of the achievable lift on average "
                f"at {budget} task calls (SIMULATED); * = paired CI above zero"
            )


LARGER = {"max_iterations": 4, "validation_size": 60, "minibatch_size": 8}  # the earlier defaults


def standard(
    tasks: Sequence[str], seeds: Sequence[int], larger: bool = False
) -> list[tuple[Task, int, SearchResult]]:
    settings = OptimizerSettings(**LARGER) if larger else OptimizerSettings()  # type: ignore[arg-type]
    title = "a larger configuration (the earlier defaults)" if larger else "the product defaults"
    print(f"\n## Standard configuration: {title} ({BANNER})\n")
    print(
        f"auto, {settings.max_iterations} iterations x "
        f"{settings.candidates_per_iteration} candidates, minibatch "
        f"{settings.minibatch_size}, patience {settings.patience}, "
        f"validation <= {settings.validation_size} rows, "
        f"test <= {settings.test_size} rows, no budget; {len(tasks)} "
        f"tasks x {len(seeds)} seeds, seed prompt '{{input}}'. "
        "Cost is 0 for sim:* models; for a priced model it is tokens x the price table. Search task "
        "calls: baseline, screening and validation (mean per run, max in brackets); test: the final "
        "evaluation of baseline and best on the held-out split, apart. MIPROv2's 515 and GEPA's ~780 "
        "exclude a held-out test too, so the ratios compare the search calls. Reached: share of the "
        "achievable lift, as in the strategies table.\n"
    )
    print(
        "| task | baseline test | best test | lift [95% CI] | reached | search task calls / run | "
        "test task calls / run | optimizer calls / run | tokens / run | per iteration (task calls, tokens) "
        "| per accepted improvement (task calls, tokens) | search vs MIPROv2 light | search vs GEPA light |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = []
    for t in tasks:
        runs = []
        for s in seeds:
            task = load_task(t, s)
            result = run(task, s, "auto", "pareto", settings, None)
            runs.append(result)
            out.append((task, s, result))
        cell = Cell(runs, [achievable(task, s) for task, s, _ in out[-len(runs) :]])
        calls = _mean([r.search_calls for r in runs])
        test_calls = _mean([r.task_calls - r.search_calls for r in runs])
        tokens = _mean(
            [
                r.input_tokens + r.output_tokens + r.optimizer_input_tokens + r.optimizer_output_tokens
                for r in runs
            ]
        )
        iterations = sum(r.iterations for r in runs) or 1
        accepted = sum(r.accepted for r in runs) or 1
        total_calls = sum(r.task_calls for r in runs)
        total_tokens = sum(
            r.input_tokens + r.output_tokens + r.optimizer_input_tokens + r.optimizer_output_tokens
            for r in runs
        )
        print(
            f"| {t.split('/')[1]} | {cell.baseline:.3f} | "
            f"{cell.score:.3f} | {_ci(cell.lift())} | {cell.reached:.0%} | "
            f"{calls:.0f} ({max(r.search_calls for r in runs)}) | "
            f"{test_calls:.0f} | "
            f"{_mean([r.optimizer_calls for r in runs]):.1f} | "
            f"{tokens:,.0f} | {total_calls / iterations:.0f}, "
            f"{total_tokens / iterations:,.0f} | "
            f"{total_calls / accepted:.0f}, {total_tokens / accepted:,.0f} | "
            f"{calls / MIPRO_LIGHT:.2f}x | {calls / GEPA_LIGHT:.2f}x |",
            flush=True,
        )
    return out


def critical_path(steps: list[Step], latency: float) -> float:
    """Each step's longest job in rounds of ROW_CONCURRENCY "
    "calls, plus one optimizer round per proposing step."""
    total = 0.0
    for step in steps:
        longest = max((len(job) for job in step.jobs), default=0)
        total += math.ceil(longest / ROW_CONCURRENCY) * latency
        if step.optimizer_requests:
            total += latency
    return total


def replay(steps: list[Step], target: str, optimizer: str, threads: int | None) -> float:
    """The run's calls, step after step, on `threads` threads (None: every call of a step at once)."""
    provider, proposer = registry.provider(target), registry.provider(optimizer)
    started = time.perf_counter()
    for step in steps:
        calls: list[tuple[Any, CompletionRequest]] = [(proposer, r) for r in step.optimizer_requests]
        calls += [
            (provider, CompletionRequest(user_prompt=user, system_prompt=system))
            for job in step.jobs
            for system, user in job
        ]
        if not calls:
            continue
        # Proposals come before the evaluations they create; a step holds one or the other.
        with ThreadPoolExecutor(max_workers=threads or len(calls)) as pool:
            list(pool.map(lambda c: c[0].complete(c[1]), calls))
    return time.perf_counter() - started


def wall(results: list[tuple[Task, int, SearchResult]], latency_ms: int, limit: int) -> None:
    latency = latency_ms / 1000
    print(f"\n## Wall time of a run's plan at {latency_ms} ms per model call ({BANNER})\n")
    print(
        f"The plans of the standard runs above (first {limit}), replayed in one process against "
        f"sim:s<seed>@{latency_ms}ms and sim:optimizer@{latency_ms}ms: with 32 threads (DSPy style) and "
        "with every call of a step at once; the critical-path ideal counts each step's longest job in "
        "rounds of 32 calls plus one round for a step's proposals.\n"
    )
    print(
        "| task, seed | calls (task + optimizer) | steps | critical-path "
        "ideal s | in-process 32 threads s | in-process natural s |"
    )
    print("|---|---|---|---|---|---|")
    for task, seed, result in results[:limit]:
        calls = sum(len(job) for step in result.steps for job in step.jobs)
        proposals = sum(len(step.optimizer_requests) for step in result.steps)
        ideal = critical_path(result.steps, latency)
        target, optimizer = f"sim:s{seed}@{latency_ms}ms", f"sim:optimizer@{latency_ms}ms"
        threads32 = replay(result.steps, target, optimizer, 32)
        natural = replay(result.steps, target, optimizer, None)
        print(
            f"| {task.family}, {seed} | {calls} + {proposals} | "
            f"{len(result.steps)} | {ideal:.1f} | {threads32:.1f} | {natural:.1f} |",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench/optimizer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", default="300,800")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--no-strategies", action="store_true")
    parser.add_argument("--no-standard", action="store_true")
    parser.add_argument("--wall", action="store_true", help="replay the standard plans at --latency-ms")
    parser.add_argument("--wall-runs", type=int, default=3)
    parser.add_argument(
        "--latency-ms",
        default="200",
        help="model latency per call; with --durable a comma list (e.g. 200,1000,3000) sweeps it",
    )
    parser.add_argument(
        "--durable", action="store_true", help="also drive runs through the engine on the emulators"
    )
    parser.add_argument(
        "--pump",
        choices=("both", "push", "queue", "parallel", "serial"),
        default="both",
        help="how the durable runs' tasks and messages are delivered (both: push, then queue)",
    )
    parser.add_argument(
        "--count-calls",
        action="store_true",
        help="with --durable: one more push run through a proxy that counts its Firestore calls",
    )
    parser.add_argument(
        "--durable-runs",
        type=int,
        default=1,
        help="with --durable: runs of each row (a summary gives the ratio's median and range)",
    )
    parser.add_argument(
        "--durable-tasks",
        type=int,
        default=1,
        help="with --durable: how many of --tasks to run (first seed), default the first",
    )
    args = parser.parse_args(argv)
    latencies = [int(ms) for ms in str(args.latency_ms).split(",") if ms]
    tasks = [t for t in args.tasks.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    started = time.perf_counter()
    print(f"# Optimizer benchmark — {BANNER}")
    if not args.no_strategies:
        strategies_table(
            tasks,
            seeds,
            [int(b) for b in args.budgets.split(",")],
            [n for n in args.strategies.split(",") if n],
        )
    results = [] if args.no_standard and not args.wall else standard(tasks, seeds)
    if not args.no_standard:
        standard(tasks, seeds, larger=True)
    if args.wall:
        wall(results, latencies[0], args.wall_runs)
    if args.durable:
        from optimizer_durable import durable

        durable(
            tasks[: args.durable_tasks],
            seeds[:1],
            latencies,
            pumps=args.pump,
            count_calls=args.count_calls,
            repeat=args.durable_runs,
        )
    print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s; every figure above is SIMULATED)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
