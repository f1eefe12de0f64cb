"""The evaluation gate: is a candidate prompt at least as good as its baseline on the same rows?

The candidate (a stored version or label, or inline texts, say from a pull request) and the
baseline (a label such as `production`, a version, or a stored evaluation job) are evaluated on
the same dataset version and split with the same metrics; their per-row scores are paired row by
row and each metric's paired lift (candidate minus baseline) gets a 95% bootstrap CI
(`promptopt.experiments.selection.paired_lift`). A metric fails the gate when

- it dropped: the mean lift is below `-max_drop` and (rule `ci`, the default) the CI lies wholly
  below zero, so noise alone never fails a pull request; rule `mean` fails on the mean alone; or
- it is under its floor: the candidate's mean is below `floors[metric]`.

Unchanged answers cost nothing twice: the jobs use the response cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from promptopt.client.batch import Metric, metric_requests
from promptopt.client.errors import PromptoptError

if TYPE_CHECKING:
    from promptopt.batch.models import BatchJob
    from promptopt.batch.read_models import JobScores
    from promptopt.client.client import Client

Rule = Literal["ci", "mean"]
DEFAULT_MAX_DROP = 0.02


class GateError(PromptoptError):
    """The gate cannot compare (different rows, a metric the baseline job lacks, no paired rows)."""


@dataclass(frozen=True)
class Score:
    """A mean over rows with its 95% CI."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class MetricVerdict:
    """One metric: candidate and baseline means, their paired lift, and whether it passes."""

    name: str
    candidate: Score
    baseline: Score
    lift: Score
    floor: float | None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No drop beyond the threshold and not under the floor."""
        return not self.failures


@dataclass(frozen=True)
class GateResult:
    """What the gate compared and decided."""

    passed: bool
    metrics: list[MetricVerdict]
    candidate: str  # in words, e.g. "pr_123 label staging" or "inline prompt"
    baseline: str
    dataset_id: str = ""
    dataset_version: int = 0
    split: str | None = None
    model: str = ""
    rule: Rule = "ci"
    max_drop: float = DEFAULT_MAX_DROP
    candidate_job: BatchJob | None = None
    baseline_job: BatchJob | None = None
    simulated: bool = False

    @property
    def failures(self) -> list[str]:
        """Every reason the gate failed, `metric: reason`."""
        return [f"{m.name}: {reason}" for m in self.metrics for reason in m.failures]

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "passed": self.passed,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "candidate_job": self.candidate_job.job_id if self.candidate_job else None,
            "baseline_job": self.baseline_job.job_id if self.baseline_job else None,
            "dataset": {"dataset_id": self.dataset_id, "version": self.dataset_version, "split": self.split},
            "model": self.model,
            "simulated": self.simulated,
            "rule": self.rule,
            "max_drop": self.max_drop,
            "metrics": [
                {
                    "name": m.name,
                    "passed": m.passed,
                    "candidate": vars(m.candidate),
                    "baseline": vars(m.baseline),
                    "lift": vars(m.lift),
                    "floor": m.floor,
                    "failures": m.failures,
                }
                for m in self.metrics
            ],
            "failures": self.failures,
        }


def _describe(prompt_id: str | None, version: int | None, label: str | None, inline: bool) -> str:
    if inline:
        return "inline prompt" + (f" (vs {prompt_id})" if prompt_id else "")
    if version is not None:
        return f"{prompt_id} version {version}"
    if label is not None:
        return f"{prompt_id} label {label}"
    return f"{prompt_id} latest version"


def _summary_score(job: BatchJob, metric: str) -> Score | None:
    evaluation = job.evaluation
    for summary in evaluation.metrics if evaluation else []:
        if summary.name == metric:
            return Score(summary.mean, summary.ci_low, summary.ci_high, summary.n)
    return None


def _same_rows(a: BatchJob, b: BatchJob) -> bool:
    left, right = a.source, b.source
    return left.type == right.type == "dataset" and (left.dataset_id, left.dataset_version, left.split) == (
        right.dataset_id,
        right.dataset_version,
        right.split,
    )


def paired_scores(
    candidate: JobScores, baseline: JobScores, metric: Mapping[str, Any]
) -> tuple[list[float], list[float]]:
    """Both jobs' scores of `metric` on the rows where both have one, in row order."""
    name, params = metric["name"], dict(metric.get("params") or {})
    found = []
    for scores, which in ((candidate, "candidate"), (baseline, "baseline")):
        match = next((m for m in scores.metrics if m.name == name), None)
        if match is None:
            raise GateError(f"the {which} job {scores.job_id} was not scored with {name}")
        if match.params != params:
            raise GateError(
                f"the {which} job {scores.job_id} scored {name} with other params "
                f"({match.params} vs {params})"
            )
        found.append(dict(zip(match.rows, match.values, strict=True)))
    left, right = found
    rows = sorted(r for r in left.keys() & right.keys() if left[r] is not None and right[r] is not None)
    return [float(left[r] or 0.0) for r in rows], [float(right[r] or 0.0) for r in rows]


def judge(
    name: str,
    candidate: Score,
    baseline: Score,
    lift: Score,
    *,
    max_drop: float,
    floor: float | None,
    rule: Rule,
) -> MetricVerdict:
    """One metric's verdict (see the module doc for the rule)."""
    failures: list[str] = []
    significant = rule == "mean" or lift.ci_high < 0
    if lift.mean < -max_drop and significant:
        ci = f" (95% CI {lift.ci_low:+.3f}..{lift.ci_high:+.3f})" if rule == "ci" else ""
        failures.append(
            f"dropped {lift.mean:+.3f} vs the baseline on {lift.n} paired rows{ci}, "
            f"beyond max drop {max_drop:g}"
        )
    if floor is not None and candidate.mean < floor:
        failures.append(f"mean {candidate.mean:.3f} is under its floor {floor:g}")
    return MetricVerdict(name, candidate, baseline, lift, floor, failures)


def run_gate(
    client: Client,
    *,
    dataset_id: str | None = None,
    metrics: Sequence[Metric],
    split: str | None = "test",
    dataset_version: int | None = None,
    prompt_id: str | None = None,
    version: int | None = None,
    label: str | None = None,
    output_prompt: str | None = None,
    system_prompt: str | None = None,
    baseline_label: str | None = "production",
    baseline_version: int | None = None,
    baseline_job: str | None = None,
    model: str | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    floors: Mapping[str, float] | None = None,
    rule: Rule = "ci",
    budget: Mapping[str, Any] | None = None,
    timeout_s: float | None = 3600.0,
    on_progress: Callable[[BatchJob], None] | None = None,
    seed: int = 0,
) -> GateResult:
    """Evaluate the candidate and the baseline on the same rows and judge the paired lift.

    The candidate is `prompt_id` with `version` or `label` (its latest version by default), or
    inline texts (`output_prompt`, `system_prompt`). The baseline is `baseline_job` (an evaluation
    job already run; its dataset version and split are reused), else `prompt_id` at
    `baseline_version` or `baseline_label` (default `production`). Raises GateError when the two
    cannot be compared, JobFailed when a job fails, WaitTimeout past `timeout_s`.
    """
    from promptopt.experiments.selection import paired_lift

    if rule not in ("ci", "mean"):
        raise ValueError("rule is 'ci' or 'mean'")
    if max_drop < 0:
        raise ValueError("max_drop must be at least 0")
    requests = metric_requests(metrics)
    if not requests:
        raise ValueError("the gate needs at least one metric")
    unknown = sorted(set(floors or {}) - {m["name"] for m in requests})
    if unknown:
        raise ValueError(f"floors for metrics the gate does not compute: {', '.join(unknown)}")
    inline = output_prompt is not None
    if inline and (version is not None or label is not None):
        raise ValueError("version and label select a stored candidate; an inline candidate has neither")
    if not inline and prompt_id is None:
        raise ValueError("give the candidate: prompt_id (with version or label) or output_prompt")

    stored_baseline = None
    if baseline_job is not None:
        stored_baseline = client.batch.get(baseline_job)
        source = stored_baseline.source
        if source.type != "dataset" or source.dataset_id is None:
            raise GateError(
                f"the baseline job {baseline_job} ran on inline rows; the gate compares dataset rows"
            )
        if dataset_id not in (None, source.dataset_id) or (
            dataset_version is not None and dataset_version != source.dataset_version
        ):
            raise GateError(
                f"the baseline job {baseline_job} ran on {source.dataset_id} "
                f"version {source.dataset_version}; "
                "the candidate must run on the same rows"
            )
        dataset_id, dataset_version, split = source.dataset_id, source.dataset_version, source.split
        model = model or stored_baseline.model
        baseline_text = f"job {baseline_job}"
    else:
        if prompt_id is None:
            raise ValueError("a baseline label or version needs prompt_id")
        if baseline_version is not None:
            baseline_label = None
        if baseline_label is None and baseline_version is None:
            raise ValueError("give a baseline: baseline_label, baseline_version or baseline_job")
        baseline_text = _describe(prompt_id, baseline_version, baseline_label, False)
    if dataset_id is None:
        raise ValueError("give dataset_id (or a baseline_job, whose rows are reused)")

    job: dict[str, Any] = {
        "dataset_id": dataset_id,
        "split": split,
        "model": model,
        "budget": budget,
        "metrics": requests,
    }
    candidate = client.batch.evaluate(
        **job,
        dataset_version=dataset_version,
        **(
            {"output_prompt": output_prompt, "system_prompt": system_prompt}
            if inline
            else {"prompt_id": prompt_id, "version": version, "label": label}
        ),
    )
    pinned = candidate.source.dataset_version
    if stored_baseline is None:
        baseline = client.batch.evaluate(
            **job,
            dataset_version=pinned,
            prompt_id=prompt_id,
            version=baseline_version,
            label=baseline_label,
        )
    else:
        baseline = stored_baseline
    candidate = client.batch.wait(candidate.job_id, timeout_s=timeout_s, on_progress=on_progress)
    baseline = client.batch.wait(baseline.job_id, timeout_s=timeout_s, on_progress=on_progress)
    if not _same_rows(candidate, baseline):
        raise GateError(f"{candidate.job_id} and {baseline.job_id} did not run on the same rows")
    if candidate.model != baseline.model:
        raise GateError(
            f"the candidate ran on {candidate.model} and the baseline on {baseline.model}; pass model="
        )
    candidate_scores = client.batch.scores(candidate.job_id)
    baseline_scores = client.batch.scores(baseline.job_id)

    verdicts = []
    for request in requests:
        name = request["name"]
        ours, theirs = paired_scores(candidate_scores, baseline_scores, request)
        if not ours:
            raise GateError(f"no rows where both jobs have a {name} score")
        lift = paired_lift(ours, theirs, seed=seed)
        verdicts.append(
            judge(
                name,
                _summary_score(candidate, name) or Score(sum(ours) / len(ours), 0.0, 1.0, len(ours)),
                _summary_score(baseline, name) or Score(sum(theirs) / len(theirs), 0.0, 1.0, len(theirs)),
                Score(lift.mean, lift.ci_low, lift.ci_high, lift.n),
                max_drop=max_drop,
                floor=(floors or {}).get(name),
                rule=rule,
            )
        )
    return GateResult(
        passed=all(v.passed for v in verdicts),
        metrics=verdicts,
        candidate=_describe(prompt_id, version, label, inline),
        baseline=baseline_text,
        dataset_id=str(candidate.source.dataset_id),
        dataset_version=int(candidate.source.dataset_version or 0),
        split=candidate.source.split,
        model=candidate.model,
        rule=rule,
        max_drop=max_drop,
        candidate_job=candidate,
        baseline_job=baseline,
        simulated=candidate.model.split(":", 1)[0] == "sim",
    )
