"""What an experiment request names, checked against what exists, before anything is stored.

Create and estimate share these checks, each failure a 4xx with a stable code: the prompt (and its
version or label), the dataset version (ready), the template's variables against the dataset's
input columns, the metrics against the reference column, the splits (non-empty), the models and
the schedule. The outcome pins what a run needs: the dataset version, the models, the plan, and
each llm_judge metric's judge model (`params.model`, else the deployment's default, as for
/evaluate; a model id that does not parse is a 400 unknown_model).
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.errors import Conflict, InvalidRequest
from promptopt.evaluation.models import MetricRequest
from promptopt.experiments import schedule as schedules
from promptopt.experiments.estimate import EmbeddingBound, Grader, JudgeBound
from promptopt.experiments.models import ExperimentCreate
from promptopt.experiments.plan import Plan, make_plan

if TYPE_CHECKING:
    from promptopt.auth import Principal

SIM_OPTIMIZER = "sim:optimizer"


class DatasetFacts(NamedTuple):
    """A ready dataset version: its rows per split, columns and input sizes."""

    dataset_id: str
    version: int
    split_rows: dict[str, int]
    inputs: list[str]
    reference: str | None
    max_input_chars: dict[str, int]
    total_chars: int | None = None  # every input and reference value together (bounds one reference)


class Resolved(NamedTuple):
    """An experiment request, checked: the prompt a run evaluates, the dataset, models and plan."""

    prompt: dict[str, Any]  # the version as GET /prompts/{id} shows it (`prompts.service.version_view`)
    dataset: DatasetFacts
    target_model: str
    optimizer_model: str
    plan: Plan
    next_run_at: datetime | None
    metric: MetricRequest | None  # as the run scores: an llm_judge's model pinned
    secondary_metrics: list[MetricRequest]

    @property
    def judge_bounds(self) -> list[Grader]:
        """What bounds each model-graded metric's calls, for the estimate."""
        from promptopt.evaluation.models import ROW_MODEL_METRICS

        metrics = [m for m in (self.metric, *self.secondary_metrics) if m is not None]
        if not any(m.name in ROW_MODEL_METRICS for m in metrics):
            return []  # the grading code loads only when a metric needs it (cold start)
        from promptopt.batch.judging import EMBEDDED, JUDGED, MAX_SHOWN_CHARS, embedder_of, judge_of, question

        shown = {name: "x" * self.dataset.max_input_chars.get(name, 0) for name in self.dataset.inputs}
        total = self.dataset.total_chars
        reference = min(MAX_SHOWN_CHARS, total or MAX_SHOWN_CHARS)
        bounds: list[Grader] = []
        for m in (self.metric, *self.secondary_metrics):
            if m is not None and m.name in JUDGED:
                judge = judge_of(m.name, m.params)
                bounds.append(
                    JudgeBound(judge=judge, input_chars=len(question(shown)), reference_chars=reference)
                )
            elif m is not None and m.name in EMBEDDED:
                # Embedded whole (no cut); a reference is at most every value of the dataset together.
                bounds.append(EmbeddingBound(embedder_of(m.name, m.params), reference_chars=total or 0))
        return bounds

    @property
    def prompt_chars(self) -> int:
        """Characters of the prompt's own text (system prompt and template)."""
        return len(self.prompt["system_prompt"]) + len(self.prompt["output_prompt"])

    @property
    def input_chars(self) -> int:
        """The most input characters one row can add to a rendered prompt.

        Each input column counts its longest value, once per use in the template (and at least
        once: a candidate may use a column the baseline leaves out).
        """
        uses = _uses(self.prompt["output_prompt"])
        return sum(
            self.dataset.max_input_chars.get(name, 0) * max(1, uses.get(name, 0))
            for name in self.dataset.inputs
        )


def _uses(template: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _literal, name, _spec, _conversion in string.Formatter().parse(template):
        if name:
            counts[name] = counts.get(name, 0) + 1
    return counts


def model_ids(target: str | None, optimizer: str | None) -> tuple[str, str]:
    """The target and optimizer model ids, defaults applied; 400 unknown_model if one does not parse.

    The optimizer defaults to the simulator's optimizer when the target is simulated (an offline
    deployment never spends money by default), else to the target model.
    """
    from promptopt.inference.errors import UnknownModel
    from promptopt.llm import registry
    from promptopt.llm.registry import default_model
    from promptopt.llm.types import ModelConfigError

    try:
        parsed_target = registry.parse_model_id(target or default_model())
        fallback = SIM_OPTIMIZER if parsed_target.provider == "sim" else str(parsed_target)
        parsed_optimizer = registry.parse_model_id(optimizer or fallback)
    except ModelConfigError as exc:
        raise UnknownModel(str(exc)) from None
    return str(parsed_target), str(parsed_optimizer)


def _prompt(principal: Principal, body: ExperimentCreate) -> dict[str, Any]:
    """The version a run starts from (regression: the version its label names now).

    Read as the plain view, not a PromptVersion: building that schema (and importing the prompt
    models) would cost every experiment create and estimate its cold start for three fields.
    """
    from promptopt.prompts import service as prompts

    selector = body.prompt
    found = prompts.get_prompt_view(
        principal=principal, prompt_id=selector.prompt_id, version=selector.version, label=selector.label
    )
    if found["archived"]:  # archived means retired: unarchive it to build on it again
        raise Conflict(
            f"prompt {selector.prompt_id} is archived; unarchive it to start experiments from it",
            code="prompt_archived",
        )
    if body.regression is None:
        return found
    return prompts.get_prompt_view(
        principal=principal, prompt_id=selector.prompt_id, label=body.regression.label
    )


def dataset_facts(tenant: str, dataset_id: str, version: int | None) -> DatasetFacts:
    """The named version, or the newest ready one; 404 when absent, 409 dataset_not_ready otherwise."""
    from promptopt.datasets import records
    from promptopt.datasets.files.layout import SPLITS

    head = records.load_dataset(tenant, dataset_id).to_dict() or {}
    number = version if version is not None else head.get("latest_version")
    if number is None:
        raise Conflict(
            f"dataset {dataset_id!r} has no ready version yet; wait for its ingestion to finish",
            code="dataset_not_ready",
        )
    data = records.load_version(tenant, dataset_id, int(number))
    if data.get("status") != "ready":
        raise Conflict(
            f"version {number} of dataset {dataset_id!r} is {data.get('status')}, not ready",
            code="dataset_not_ready",
            version_status=data.get("status"),
        )
    mapping = head.get("mapping") or {}
    stats: dict[str, Any] = data.get("stats") or {}
    return DatasetFacts(
        dataset_id=dataset_id,
        version=int(number),
        split_rows={split: int((data.get("split_counts") or {}).get(split, 0)) for split in SPLITS},
        inputs=list(mapping.get("inputs") or []),
        reference=mapping.get("reference"),
        max_input_chars={
            name: int(field.get("max_chars") or 0) for name, field in (stats.get("inputs") or {}).items()
        },
        total_chars=int(stats["total_chars"]) if stats.get("total_chars") is not None else None,
    )


def _check_variables(prompt: dict[str, Any], dataset: DatasetFacts) -> None:
    from promptopt.inference.errors import MissingVariables
    from promptopt.prompts.templates import placeholders

    missing = [name for name in placeholders(prompt["output_prompt"]) if name not in dataset.inputs]
    if missing:
        raise MissingVariables(
            f"the prompt's template uses {', '.join(missing)}, which dataset {dataset.dataset_id} "
            f"version {dataset.version} does not map (its inputs: {', '.join(dataset.inputs)})",
            missing=missing,
            inputs=dataset.inputs,
        )


def _nested_arrays(value: Any, inside_array: bool = False) -> bool:
    if isinstance(value, list):
        return inside_array or any(_nested_arrays(v, True) for v in value)
    if isinstance(value, dict):
        return any(_nested_arrays(v) for v in value.values())
    return False


def check_metrics(metrics: list[MetricRequest], dataset: DatasetFacts) -> None:
    """Each metric accepts its params, and one that compares with references has a reference column."""
    from promptopt.batch import admission
    from promptopt.batch.source import ResolvedSource

    rows = ResolvedSource(info={}, total_rows=0, has_references=dataset.reference is not None)
    admission.check_metrics(metrics, rows)
    for metric in metrics:
        if _nested_arrays(metric.params):  # Firestore cannot store an array directly inside an array
            raise InvalidRequest(
                f"metric {metric.name}: params may not hold an array directly inside an array",
                code="invalid_metric_params",
                metric=metric.name,
            )


def pinned(metric: MetricRequest) -> MetricRequest:
    """The metric as runs score it: an llm_judge's judge model written into its params."""
    from promptopt.evaluation.models import ROW_MODEL_METRICS

    if metric.name not in ROW_MODEL_METRICS:  # nothing to pin; the grading code stays unloaded
        return metric.model_copy(update={"params": dict(metric.params)})
    from promptopt.batch.judging import pinned as pinned_params

    return metric.model_copy(update={"params": pinned_params(metric.name, metric.params)})


def splits_used(body: ExperimentCreate) -> list[str]:
    """The splits a run reads: optimize, accept and report, or the regression split."""
    if body.regression is not None:
        return [body.regression.split]
    return [body.dataset.optimize_split, body.dataset.accept_split, body.dataset.report_split]


def _check_splits(body: ExperimentCreate, dataset: DatasetFacts) -> None:
    for split in splits_used(body):
        if dataset.split_rows.get(split, 0) == 0:
            raise InvalidRequest(
                f"split {split!r} of dataset {dataset.dataset_id} version {dataset.version} has no rows",
                code="empty_split",
                split=split,
            )


def plan_for(body: ExperimentCreate, split_rows: dict[str, int]) -> Plan:
    """The run plan of these settings over a dataset version with `split_rows` rows per split."""
    if body.regression is not None:
        return make_plan(body.optimizer, split_rows, mode="regression", report_split=body.regression.split)
    return make_plan(
        body.optimizer,
        split_rows,
        optimize_split=body.dataset.optimize_split,
        accept_split=body.dataset.accept_split,
        report_split=body.dataset.report_split,
    )


def _read_prompt_and_dataset(
    principal: Principal, body: ExperimentCreate
) -> tuple[dict[str, Any], DatasetFacts]:
    """The prompt version and the dataset facts, read at the same time (one round trip less).

    A failure is reported as if they were read in turn: the prompt's first.
    """
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        prompt_read = pool.submit(contextvars.copy_context().run, _prompt, principal, body)
        try:
            dataset = dataset_facts(principal.tenant, body.dataset.dataset_id, body.dataset.version)
        except Exception:
            prompt_read.result()  # raises the prompt's own failure, if it has one
            raise
        return prompt_read.result(), dataset


def resolve(*, principal: Principal, body: ExperimentCreate) -> Resolved:
    """Check the request against what exists (checks without reads first); raise the first failure."""
    target, optimizer = model_ids(body.target_model, body.optimizer_model)
    if body.schedule is not None:
        schedules.validate(body.schedule)  # a paused schedule must be valid too: it may be resumed
    next_run = schedules.next_run_at(body.schedule)
    prompt, dataset = _read_prompt_and_dataset(principal, body)
    _check_variables(prompt, dataset)
    check_metrics([body.metric, *body.secondary_metrics], dataset)
    _check_splits(body, dataset)
    return Resolved(
        prompt=prompt,
        dataset=dataset,
        target_model=target,
        optimizer_model=optimizer,
        plan=plan_for(body, dataset.split_rows),
        next_run_at=next_run,
        metric=pinned(body.metric),
        secondary_metrics=[pinned(m) for m in body.secondary_metrics],
    )
