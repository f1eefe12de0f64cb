"""Candidate prompts: the optimizer model's request, the checks on its reply, and few-shot demos.

Strategies (one per candidate slot, see `promptopt.experiments.strategies`):

- reflective (GEPA-like): the parent prompt and a seeded minibatch of its failures (inputs,
  output, reference, score); the model critiques, then rewrites.
- history (OPRO-like): the best earlier prompts with their scores and, as OPRO's meta-prompt does,
  a few task exemplars (inputs and reference, no model output); the model writes a better one.
- random: the parent prompt alone, "rewrite this" (a baseline that reads no failures).
- fewshot: no model call; demonstrations bootstrapped from train rows the parent gets right.

The request only holds what the engine puts in the `ProposalContext` (optimize-split rows, never
the report split) and always fits its token budget: each field of each failure is cut first, then
failures are dropped, never the instructions. Replies are checked, never trusted: anything that is
not the expected JSON, changes the placeholders, grows too large or changes nothing is `Rejected`.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from promptopt.experiments import plan
from promptopt.llm.types import CompletionRequest
from promptopt.prompts.templates import TemplateError, placeholders

# The sections of the request; promptopt.llm.sim.optimizer (the simulated optimizer) reads them.
CURRENT, EXAMPLES, HISTORY, EXEMPLARS = "current_prompt", "examples", "history", "exemplars"
REFLECTION_EXAMPLES = 5  # failures shown per reflective call (a minibatch, as GEPA does)
HISTORY_ENTRIES = 8  # earlier prompts shown per history call
HISTORY_EXEMPLARS = 3  # task examples (inputs and reference only) shown per history call, as OPRO does
FIELD_BYTES = (1_500, 600, 200)  # each shown field is cut to these sizes in turn before dropping rows
DEMO_FIELD_CHARS = 1_500
MAX_REPLY_CHARS = 200_000  # a reply longer than this is not parsed at all
MAX_CRITIQUE_CHARS = 4_000
REJECT_REASONS = ("not_json", "placeholders_changed", "oversized", "empty", "unchanged", "model_error")
DEMOS_HEADER = "Worked examples:\n\n"
DEMOS_FOOTER = "\n(end of examples)\n\nQuestion: "

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "critique": {"type": "string"},
        "system_prompt": {"type": "string"},
        "output_prompt": {"type": "string"},
    },
    "required": ["critique", "system_prompt", "output_prompt"],
}

SYSTEM = (
    "You improve prompts for a language model. A prompt has two parts: system_prompt (sent as "
    "written) and output_prompt (a template: each {name} placeholder is replaced by a field of the "
    "dataset row; literal braces are written {{ and }}).\n"
    "Rules:\n"
    "- Keep every placeholder of the current output_prompt exactly as written, and add no new ones.\n"
    "- Improve the prompt for unseen inputs of the same task; never copy answers from examples.\n"
    f"- Keep system_prompt and output_prompt together under {plan.MAX_CANDIDATE_CHARS} characters.\n"
    '- Reply with one JSON object only: {"critique": "...", "system_prompt": "...", '
    '"output_prompt": "..."}.'
)
_TASKS = {
    "reflective": (
        "Below are examples where the current prompt scored below full marks on the metric {metric}. "
        "Each shows the row's inputs, the model's output, the reference answer and the score. "
        "First write a short critique: what in the prompt led to these failures (answer format, "
        "missing reasoning, a misread task, length). Then rewrite the prompt to fix them."
    ),
    "history": (
        "Below are a few examples of the task (inputs and the expected answer) and earlier prompts "
        "for it with their scores on the metric {metric} (higher is better), worst first. Write a new "
        "prompt that differs from all of them and scores higher than the best. In the critique, say "
        "what the better prompts have in common."
    ),
    "random": (
        "Rewrite the current prompt so that it does the same task with different wording. "
        "In the critique, say what you changed."
    ),
}
_FENCE = re.compile(r"^\s*```[A-Za-z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Example:
    """One scored row of the optimize split: what the model was given, said, and should have said."""

    row: int
    inputs: dict[str, str]
    output: str
    reference: str | None
    score: float


@dataclass(frozen=True)
class PromptText:
    """The two texts of a prompt version."""

    system_prompt: str
    output_prompt: str


@dataclass
class ProposalContext:
    """Everything one candidate slot may show the optimizer (the engine fills it from train rows)."""

    strategy: str
    parent: PromptText
    parent_id: str
    placeholders: list[str]
    failures: list[Example]
    successes: list[Example]
    history: list[tuple[PromptText, float]]
    metric: str
    seed: int
    index: int
    max_demos: int = 3


@dataclass(frozen=True)
class Proposal:
    """A checked candidate prompt and where it came from."""

    prompt: PromptText
    critique: str
    strategy: str
    shown_rows: list[int]


@dataclass(frozen=True)
class Rejected:
    """A reply (or a few-shot attempt) that yields no candidate; `reason` is one of REJECT_REASONS."""

    reason: str
    detail: str = ""


def estimate_tokens(text: str) -> int:
    """A conservative token count: UTF-8 bytes / 3 (as `promptopt.llm.types.batches` estimates)."""
    return math.ceil(len(text.encode()) / plan.CHARS_PER_TOKEN)


def clip(text: str, max_bytes: int) -> str:
    """`text` if it fits `max_bytes` (UTF-8), else its head and tail around a note of what was cut."""
    if len(text) * 4 <= max_bytes or len(text.encode()) <= max_bytes:
        return text
    half = max(0, max_bytes // 2 - 20)
    head = text[:half].encode()[:half].decode(errors="ignore")
    tail = text[-half:].encode()[-half:].decode(errors="ignore") if half else ""
    return f"{head} [...{len(text) - len(head) - len(tail)} characters cut...] {tail}"


def _rng(ctx: ProposalContext, purpose: str) -> random.Random:
    return random.Random(f"{purpose}:{ctx.seed}:{ctx.index}:{ctx.parent_id}")  # noqa: S311 - not crypto


def minibatch(ctx: ProposalContext) -> list[Example]:
    """The failures this slot may show: a seeded sample of REFLECTION_EXAMPLES, in row order."""
    failures = list(ctx.failures)
    if len(failures) > REFLECTION_EXAMPLES:
        failures = _rng(ctx, "minibatch").sample(failures, REFLECTION_EXAMPLES)
    return sorted(failures, key=lambda e: e.row)


def _example_line(example: Example, cap: int) -> str:
    shown = {
        "row": example.row,
        "inputs": {clip(k, 64): clip(v, cap) for k, v in example.inputs.items()},
        "output": clip(example.output, cap),
        "reference": None if example.reference is None else clip(example.reference, cap),
        "score": round(float(example.score), 4),
    }
    return json.dumps(shown, ensure_ascii=False)


def _prompt_line(prompt: PromptText, cap: int, score: float | None = None) -> str:
    shown: dict[str, Any] = {} if score is None else {"score": round(float(score), 4)}
    shown["system_prompt"] = clip(prompt.system_prompt, cap)
    shown["output_prompt"] = clip(prompt.output_prompt, cap)
    return json.dumps(shown, ensure_ascii=False)


def _exemplar_line(example: Example, cap: int) -> str:
    shown = {
        "inputs": {clip(k, 64): clip(v, cap) for k, v in example.inputs.items()},
        "reference": None if example.reference is None else clip(example.reference, cap),
    }
    return json.dumps(shown, ensure_ascii=False)


def exemplars(ctx: ProposalContext) -> list[Example]:
    """The task examples a history slot shows: a seeded sample of the parent's rows, in row order."""
    pool = sorted([*ctx.failures, *ctx.successes], key=lambda e: e.row)
    if len(pool) > HISTORY_EXEMPLARS:
        pool = sorted(_rng(ctx, "exemplars").sample(pool, HISTORY_EXEMPLARS), key=lambda e: e.row)
    return pool


def _user_prompt(
    ctx: ProposalContext, parent_cap: int, section: str, lines: list[str], before: str = ""
) -> str:
    names = ", ".join("{" + name + "}" for name in ctx.placeholders) or "(none)"
    parts = [
        _TASKS[ctx.strategy].replace("{metric}", ctx.metric),
        f"Placeholders to keep exactly (and no others): {names}",
        f"This is proposal {ctx.index + 1} of several made in parallel (variant {ctx.seed}-{ctx.index}); "
        "take a direction of your own.",
        f"<{CURRENT}>\n{_prompt_line(ctx.parent, parent_cap)}\n</{CURRENT}>",
    ]
    if before:
        parts.append(before)
    if section:
        parts.append(f"<{section}>\n" + "\n".join(lines) + f"\n</{section}>")
    parts.append("Reply with the JSON object only.")
    return "\n\n".join(parts)


def _fits(user: str, budget: int) -> bool:
    return estimate_tokens(SYSTEM + "\n" + user) <= budget


def _history(ctx: ProposalContext) -> list[tuple[PromptText, float]]:
    best = sorted(ctx.history, key=lambda entry: -entry[1])[:HISTORY_ENTRIES]
    return sorted(best, key=lambda entry: entry[1])  # worst first, the best last (as OPRO shows them)


def _assemble(ctx: ProposalContext, token_budget: int) -> tuple[str, list[int]]:
    """The user prompt within `token_budget` and the rows it shows (see the module docstring)."""
    parent_cap = plan.MAX_CANDIDATE_CHARS * 4
    while not _fits(_user_prompt(ctx, parent_cap, "", []), token_budget):
        if parent_cap <= 64:
            raise ValueError(f"token_budget {token_budget} cannot hold the optimizer's instructions")
        parent_cap //= 2  # a parent too large to show whole: its rewrite will be rejected anyway
    if ctx.strategy == "reflective":
        shown = minibatch(ctx)
        for cap in FIELD_BYTES:
            user = _user_prompt(ctx, parent_cap, EXAMPLES, [_example_line(e, cap) for e in shown])
            if _fits(user, token_budget):
                return user, [e.row for e in shown]
        while shown:
            shown = shown[:-1]
            user = _user_prompt(ctx, parent_cap, EXAMPLES, [_example_line(e, FIELD_BYTES[-1]) for e in shown])
            if _fits(user, token_budget):
                return user, [e.row for e in shown]
    if ctx.strategy == "history":
        entries = _history(ctx)
        tasks = exemplars(ctx)
        while entries:
            for cap in FIELD_BYTES:
                told = [_exemplar_line(e, cap) for e in tasks]
                before = f"<{EXEMPLARS}>\n" + "\n".join(told) + f"\n</{EXEMPLARS}>" if told else ""
                lines = [_prompt_line(p, cap, s) for p, s in entries]
                user = _user_prompt(ctx, parent_cap, HISTORY, lines, before)
                if _fits(user, token_budget):
                    return user, [e.row for e in tasks]
            entries = entries[1:]  # drop the worst first
    return _user_prompt(ctx, parent_cap, "", []), []


def shown_rows(ctx: ProposalContext, *, token_budget: int = plan.OPTIMIZER_PROMPT_TOKENS) -> list[int]:
    """The rows `build_request` shows for this context and budget (deterministic)."""
    if ctx.strategy not in ("reflective", "history"):
        return []
    return _assemble(ctx, token_budget)[1]


def build_request(
    ctx: ProposalContext,
    *,
    model: str,
    token_budget: int = plan.OPTIMIZER_PROMPT_TOKENS,
    max_tokens: int = plan.OPTIMIZER_MAX_TOKENS,
) -> CompletionRequest | None:
    """The optimizer model's request for this slot, or None for `fewshot` (no model call).

    `model` is the optimizer model's id (kept for providers whose request shape differs; the
    request itself is provider-neutral). Raises ValueError for an unknown strategy, or a budget
    too small for the instructions themselves.
    """
    del model  # one request shape serves every provider today
    if ctx.strategy == "fewshot":
        return None
    if ctx.strategy not in _TASKS:
        raise ValueError(f"unknown strategy {ctx.strategy!r}; known: fewshot, {', '.join(_TASKS)}")
    user, _rows = _assemble(ctx, token_budget)
    return CompletionRequest(
        user_prompt=user,
        system_prompt=SYSTEM,
        temperature=0.0,
        max_tokens=max_tokens,
        response_schema=RESPONSE_SCHEMA,
    )


def _decode(text: str) -> Any:
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        return json.loads(body)
    except ValueError:
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            return json.loads(body[start : end + 1])
        except ValueError:
            return None


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _placeholder_set(ctx: ProposalContext) -> set[str]:
    try:
        return set(placeholders(ctx.parent.output_prompt))
    except TemplateError:
        return set(ctx.placeholders)


def check(prompt: PromptText, ctx: ProposalContext) -> Rejected | None:
    """Why `prompt` cannot be a candidate of this parent, or None when it can."""
    if not prompt.output_prompt.strip():
        return Rejected("empty", "output_prompt is empty")
    if len(prompt.system_prompt) + len(prompt.output_prompt) > plan.MAX_CANDIDATE_CHARS:
        return Rejected("oversized", f"longer than {plan.MAX_CANDIDATE_CHARS} characters")
    try:
        names = set(placeholders(prompt.output_prompt))
    except TemplateError as exc:
        return Rejected("placeholders_changed", str(exc)[:200])
    expected = _placeholder_set(ctx)
    if names != expected:
        return Rejected(
            "placeholders_changed",
            f"placeholders {sorted(names)[:10]} instead of {sorted(expected)[:10]}",
        )
    if _same(prompt.system_prompt, ctx.parent.system_prompt) and _same(
        prompt.output_prompt, ctx.parent.output_prompt
    ):
        return Rejected("unchanged", "the same text as the parent")
    return None


def parse_reply(
    text: str, ctx: ProposalContext, *, token_budget: int = plan.OPTIMIZER_PROMPT_TOKENS
) -> Proposal | Rejected:
    """The candidate in the optimizer's reply, or why there is none (never raises)."""
    if len(text) > MAX_REPLY_CHARS:
        return Rejected("oversized", f"a reply of {len(text)} characters")
    data = _decode(text)
    if not isinstance(data, dict):
        return Rejected("not_json", "the reply is not a JSON object")
    system, output, critique = (
        data.get("system_prompt", ""),
        data.get("output_prompt"),
        data.get("critique", ""),
    )
    if not isinstance(system, str) or not isinstance(output, str):
        return Rejected("not_json", "system_prompt and output_prompt must be strings")
    prompt = PromptText(system_prompt=system, output_prompt=output)
    problem = check(prompt, ctx)
    if problem is not None:
        return problem
    return Proposal(
        prompt=prompt,
        critique=critique[:MAX_CRITIQUE_CHARS] if isinstance(critique, str) else "",
        strategy=ctx.strategy,
        shown_rows=shown_rows(ctx, token_budget=token_budget),
    )


def escape_braces(text: str) -> str:
    """Literal text for a template: `{` and `}` doubled so they are never placeholders."""
    return text.replace("{", "{{").replace("}", "}}")


def _demo(example: Example) -> str:
    values = list(example.inputs.items())
    if len(values) == 1:
        question = clip(values[0][1], DEMO_FIELD_CHARS)
    else:
        question = "\n".join(f"{clip(k, 64)}: {clip(v, DEMO_FIELD_CHARS)}" for k, v in values)
    answer = clip(example.output, DEMO_FIELD_CHARS)
    return escape_braces(f"Question: {question.strip()}\nAnswer: {answer.strip()}")


def base_template(output_prompt: str) -> str:
    """The output prompt without a demonstrations block that `fewshot` added earlier."""
    if output_prompt.startswith(DEMOS_HEADER) and DEMOS_FOOTER in output_prompt:
        return output_prompt[output_prompt.index(DEMOS_FOOTER) + len(DEMOS_FOOTER) :]
    return output_prompt


def fewshot(ctx: ProposalContext, rng: random.Random) -> Proposal | Rejected:
    """The parent with up to `max_demos` demonstrations (train rows it answers correctly), seeded.

    Demonstrations replace any the parent already carries; braces in them are escaped, so the
    placeholders stay exactly the parent's.
    """
    pool = sorted(ctx.successes, key=lambda e: e.row)
    if not pool or ctx.max_demos <= 0:
        return Rejected("empty", "no correctly answered train rows to show")
    picked = rng.sample(pool, min(ctx.max_demos, len(pool)))
    base = base_template(ctx.parent.output_prompt)
    room = plan.MAX_CANDIDATE_CHARS - len(ctx.parent.system_prompt) - len(base)
    room -= len(DEMOS_HEADER) + len(DEMOS_FOOTER)
    demos: list[str] = []
    for example in picked:
        demo = _demo(example)
        if len(demo) + 2 <= room:
            demos.append(demo)
            room -= len(demo) + 2
    if not demos:
        return Rejected("oversized", "no demonstration fits the prompt size limit")
    prompt = PromptText(
        system_prompt=ctx.parent.system_prompt,
        output_prompt=DEMOS_HEADER + "\n\n".join(demos) + DEMOS_FOOTER + base,
    )
    problem = check(prompt, ctx)
    if problem is not None:
        return problem
    rows = [e.row for e in picked if _demo(e) in demos]
    return Proposal(
        prompt=prompt, critique=f"{len(demos)} demonstrations", strategy="fewshot", shown_rows=rows
    )
