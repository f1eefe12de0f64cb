"""How the SIMULATED model scores on the bundled datasets under a few prompts.

    python -m promptopt.local.sim_bench [--datasets DIR] [--model sim:default]

Every bundled dataset (shared/datasets/manifest.json) is run whole through the simulator under
four prompts, and scored with the dataset's suggested metric (promptopt.evaluation):

- bare: the question alone ("{input}");
- format: the question and the task's answer-format instruction (FORMATS);
- steps+format: the question, "Let's think step by step." and the same instruction;
- steps+final+format: "Let's think step by step, then give your final answer." and the
  instruction (the simulator's reasoning pays off only with a marked final answer).

It prints a Markdown table of mean [95% CI], and for the task families the simulator works out
the best expected score its landscape allows (promptopt.llm.sim.landscape.best) and the features
that reach it. The references are read here, by the scorer only: the simulator gets nothing but
the rendered prompt.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from promptopt.evaluation import MetricResult, evaluate
from promptopt.llm.sim import landscape as sim_landscape
from promptopt.llm.sim.provider import SimProvider
from promptopt.llm.types import CompletionRequest

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
NUMBER_FORMAT = "End with the final answer on its own line as '#### <number>'."
# The answer-format instruction for each bundled dataset, in the words its metric needs.
FORMATS = {
    "bbh/boolean_expressions": "Answer with True or False.",
    "bbh/date_understanding": "Answer with only the letter of the right option, e.g. (A).",
    "bbh/navigate": "Answer with Yes or No.",
    "bbh/object_counting": NUMBER_FORMAT,
    "bbh/sports_understanding": "Answer with yes or no.",
    "bbh/web_of_lies": "Answer with Yes or No.",
    "gsm8k/test-300": NUMBER_FORMAT,
}
STEPS = "Let's think step by step."
STEPS_FINAL = "Let's think step by step, then give your final answer."
PROMPTS = ("bare", "format", "steps+format", "steps+final+format")


@dataclass(frozen=True)
class Dataset:
    """One bundled dataset: its rows' inputs and references, and the metric it suits."""

    name: str
    column: str
    inputs: list[str]
    references: list[str]
    metric: str


def load(name: str, root: Path = DATASETS) -> Dataset:
    """A bundled dataset by name (e.g. "bbh/navigate"), as manifest.json maps it."""
    entries = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["datasets"]
    entry = next(e for e in entries if e["name"] == name)
    column, reference = entry["mapping"]["inputs"][0], entry["mapping"]["reference"]
    rows = [json.loads(line) for line in (root / entry["file"]).read_text(encoding="utf-8").splitlines()]
    return Dataset(
        name=name,
        column=column,
        inputs=[str(row[column]) for row in rows if line_ok(row, column)],
        references=[str(row[reference]) for row in rows if line_ok(row, column)],
        metric=entry["suggested_metric"],
    )


def line_ok(row: dict[str, object], column: str) -> bool:
    """A row with a non-empty input."""
    return bool(str(row.get(column) or "").strip())


def template(dataset: Dataset, prompt: str) -> str:
    """The user-prompt template of one of PROMPTS for `dataset` (its input column as placeholder)."""
    question = "{" + dataset.column + "}"
    if prompt == "bare":
        return question
    if prompt == "format":
        return f"{question}\n{FORMATS[dataset.name]}"
    if prompt == "steps+format":
        return f"{question}\n{STEPS} {FORMATS[dataset.name]}"
    if prompt == "steps+final+format":
        return f"{question}\n{STEPS_FINAL} {FORMATS[dataset.name]}"
    raise ValueError(f"unknown prompt {prompt!r}; known: {', '.join(PROMPTS)}")


def score(dataset: Dataset, user_template: str, model: str = "sim:default") -> MetricResult:
    """The dataset's suggested metric over all rows, answered by the simulator under `user_template`."""
    sim = SimProvider(model.removeprefix("sim:"))
    placeholder = "{" + dataset.column + "}"
    predictions = [
        sim.complete(CompletionRequest(user_prompt=user_template.replace(placeholder, text))).text
        for text in dataset.inputs
    ]
    _, result = evaluate(dataset.metric, predictions, dataset.references)
    return result


def table(names: Sequence[str] | None = None, root: Path = DATASETS, model: str = "sim:default") -> str:
    """A Markdown table: one row per dataset, one column per prompt, mean [95% CI]."""
    if names is None:
        entries = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["datasets"]
        names = [e["name"] for e in entries]
    lines = [
        f"| dataset (metric, rows) | {' | '.join(PROMPTS)} | best reachable (features) |",
        "|---|" + "---|" * (len(PROMPTS) + 1),
    ]
    for name in names:
        dataset = load(name, root)
        cells = []
        for prompt in PROMPTS:
            result = score(dataset, template(dataset, prompt), model)
            cells.append(f"{result.mean:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}]")
        family = name.split("/", 1)[-1]
        if family in sim_landscape.TOPIC:
            best = sim_landscape.best(family, model.removeprefix("sim:"), dataset.inputs, dataset.metric)
            cells.append(f"{best.score:.3f} ({', '.join(best.features.names())})")
        else:
            cells.append("-")
        lines.append(f"| {name} ({dataset.metric}, {len(dataset.inputs)}) | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m promptopt.local.sim_bench",
        description="The simulator's scores on bundled datasets.",
    )
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the bundled datasets folder")
    parser.add_argument("--model", default="sim:default", help="a simulator model id (sim:<name>)")
    parser.add_argument("names", nargs="*", help="dataset names (default: all in manifest.json)")
    args = parser.parse_args(argv)
    if not args.model.startswith("sim:"):
        parser.error("--model must be a simulator (sim:<name>)")
    print(f"SIMULATED: {args.model} (offline rules, not a language model); prompts: {', '.join(PROMPTS)}")
    print(f'format = the task\'s instruction (e.g. "{FORMATS["bbh/navigate"]}"); steps = "{STEPS}"\n')
    print(table(args.names or None, args.datasets, args.model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
