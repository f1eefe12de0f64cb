"""The shape of a run, fixed before it starts: how many rows each step evaluates, for how many prompts.

Both the estimate (an upper bound shown before a run starts) and the run itself read this plan, so
the estimate cannot drift from what runs. Per iteration:

- propose `k` candidates (one optimizer call each);
- screen them with successive halving on the optimize split: `k` candidates on `m` rows, the best
  half on `2m` rows, ... until at most `SURVIVORS` remain (rows capped by the split's size; a
  rung's first rows are the rows the rung before scored, so the cache makes them free);
- validate the best `VALIDATED` of them on the accept split (at most `validation_size` rows, the
  same rows for every candidate and the incumbent, so comparisons are paired), in two looks: the
  first `validation_look` rows, then, unless the candidate is already hopeless there (its paired
  lift over the incumbent on those rows cannot clear `min_improvement`: `selection.futile`), all
  of them (the first look's rows come from the cache). Acceptance reads the full rows only.

Before the first iteration the baseline is evaluated on the accept rows and on the first screening
rows (its failures seed the first proposals); after the last, the baseline and the best candidate are
evaluated on the held-out report split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

SURVIVORS = 2  # successive halving stops at this many candidates
VALIDATED = 1  # of those, the best this many are validated (a validation costs the most rows)
LOOK_MIN_ROWS = 10  # validations on fewer rows than this take one look
MAX_CANDIDATE_CHARS = 12_000  # a proposed prompt (system + output) longer than this is rejected
OPTIMIZER_PROMPT_TOKENS = 6_000  # cap on what one optimizer call is shown (failures are truncated)
OPTIMIZER_MAX_TOKENS = 2_048  # the optimizer model's answer
CHARS_PER_TOKEN = 3  # conservative (≈1 token per CJK char, < 1 per 3 ASCII chars): an upper bound


class PlanSettings(Protocol):
    """What a plan reads of the optimizer settings (an `OptimizerSettings`, or `Sizes`)."""

    max_iterations: int
    candidates_per_iteration: int
    minibatch_size: int
    validation_size: int
    test_size: int


@dataclass
class Sizes:
    """`PlanSettings` from settings stored complete (a run's start reads them without pydantic)."""

    max_iterations: int
    candidates_per_iteration: int
    minibatch_size: int
    validation_size: int
    test_size: int

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Sizes:
        """The sizes among settings stored as `OptimizerSettings.model_dump()` writes them."""
        return cls(
            max_iterations=int(settings["max_iterations"]),
            candidates_per_iteration=int(settings["candidates_per_iteration"]),
            minibatch_size=int(settings["minibatch_size"]),
            validation_size=int(settings["validation_size"]),
            test_size=int(settings["test_size"]),
        )


class Rung(NamedTuple):
    """One screening rung: `candidates` prompts on the first `rows` optimize rows."""

    candidates: int
    rows: int


class Plan(NamedTuple):
    """Rows and prompts per step; every count is an upper bound of what the run evaluates."""

    iterations: int
    candidates: int
    rungs: tuple[Rung, ...]
    survivors: int
    validation_rows: int
    test_rows: int
    baseline_train_rows: int
    mode: str = "optimize"
    notes: tuple[str, ...] = ()
    validation_look: int = 0  # rows of validation's first look (0: one look on every row)

    @property
    def calls_per_iteration(self) -> int:
        """Task calls of one iteration: screening rungs plus validation of the survivors."""
        return sum(r.candidates * r.rows for r in self.rungs) + self.survivors * self.validation_rows

    @property
    def baseline_calls(self) -> int:
        """The baseline on the accept rows and the first screening rows."""
        return self.validation_rows + self.baseline_train_rows

    @property
    def test_calls(self) -> int:
        """Baseline and best on the report rows (the baseline's may be cached from an earlier run)."""
        return (1 if self.mode == "regression" else 2) * self.test_rows

    @property
    def task_calls(self) -> int:
        """Every task call the run may make."""
        if self.mode == "regression":
            return self.test_calls
        return self.baseline_calls + self.iterations * self.calls_per_iteration + self.test_calls

    @property
    def optimizer_calls(self) -> int:
        """One optimizer call per proposed candidate."""
        return 0 if self.mode == "regression" else self.iterations * self.candidates


def halving(candidates: int, first_rows: int, available_rows: int) -> tuple[Rung, ...]:
    """Successive-halving rungs: k on m rows, ceil(k/2) on 2m, … until at most SURVIVORS remain."""
    rungs: list[Rung] = []
    k, m = candidates, max(1, min(first_rows, available_rows))
    while True:
        rungs.append(Rung(candidates=k, rows=m))
        if k <= SURVIVORS:
            break
        k, m = math.ceil(k / 2), min(2 * m, available_rows)
    return tuple(rungs)


def make_plan(
    settings: PlanSettings,
    split_rows: dict[str, int],
    *,
    mode: str = "optimize",
    optimize_split: str = "train",
    accept_split: str = "validation",
    report_split: str = "test",
) -> Plan:
    """The plan for these settings over a dataset version with `split_rows` rows per split."""
    notes: list[str] = []
    train = split_rows.get(optimize_split, 0)
    validation = min(settings.validation_size, split_rows.get(accept_split, 0))
    test = min(settings.test_size, split_rows.get(report_split, 0))
    if mode == "regression":
        return Plan(0, 0, (), 0, 0, test, 0, mode="regression")
    rungs = halving(settings.candidates_per_iteration, settings.minibatch_size, max(1, train))
    look = math.ceil(validation / 2) if validation >= LOOK_MIN_ROWS else 0
    if settings.minibatch_size > train:
        notes.append(
            f"minibatch_size {settings.minibatch_size} capped at the {train} rows of {optimize_split}"
        )
    if settings.validation_size > validation:
        notes.append(f"validation uses all {validation} rows of {accept_split}")
    return Plan(
        iterations=settings.max_iterations,
        candidates=settings.candidates_per_iteration,
        rungs=rungs,
        survivors=min(VALIDATED, rungs[-1].candidates),
        validation_rows=validation,
        test_rows=test,
        baseline_train_rows=rungs[0].rows,
        notes=tuple(notes),
        validation_look=look,
    )
