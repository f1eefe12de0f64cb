"""A SIMULATED optimizer model (`sim:optimizer`): offline and deterministic, for tests and local runs.

It is not a language model. It answers the requests `promptopt.experiments.proposals.build_request`
writes with a JSON critique and rewrite, so a whole optimization run works without network or
cost while the search still has something to find. What it does:

- It reads the sections of the request: `<current_prompt>` (the parent), `<examples>` (failures
  with output, reference and score) or `<history>` (earlier prompts with scores).
- It diagnoses the failures it is shown, and only those: outputs much longer than the references,
  or references that appear inside a longer output (the answer is buried) -> an answer-format
  move, worded for the kind of answer the references show (yes/no, true/false, an option letter,
  a number); short outputs that are simply wrong -> a reasoning move; long outputs -> brevity.
- It applies general prompt-engineering moves (an answer format or final-answer delimiter,
  step-by-step reasoning, brevity, a role, an edge-case rule, a restated task), each in several
  phrasings. Some phrasings happen to be ones the simulated target (`promptopt.llm.sim.provider`)
  follows and some are not, so some candidates are better than others and search matters.
- Exploration is seeded by a hash of the request (which names the slot's seed and index): with
  some probability it picks a move blindly instead of the diagnosed one. Same request, same answer.
- history: it starts from the best-scored earlier prompt and adds a move it lacks (one the
  runner-up has, if any). No failures shown (`random`): moves are picked blindly.
- It copies the parent's output_prompt and only adds text around it (never braces), so the
  placeholders stay intact; the critique starts with "[simulated optimizer]".

Usage counts whitespace-separated words, as the target simulator does; cost comes from the price
table (0 for `sim:*`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptopt.llm import pricing
from promptopt.llm.types import Completion, CompletionRequest, EmbeddingResult, Usage

NAME = "optimizer"
DIAGNOSED = 0.8  # how often the first move is the one the failures point at (else a blind pick)
SECOND_MOVE = 0.5  # how often a second move is added
_LETTER = re.compile(r"^\(?[A-R]\)?$")
_NUMBER = re.compile(r"^-?\d[\d,]*(?:\.\d+)?$")
_WORD = re.compile(r"\w+")

_FORMATS: dict[str, tuple[str, ...]] = {
    "yes/no": (
        "Answer with Yes or No.",
        "Reply with only Yes or No, nothing else.",
        "Respond in one word, Yes or No.",
        "Your answer must be a single word: Yes/No.",
        "Give a clear verdict, affirmative or negative.",
        "State your verdict as one of the two options.",
        "End your reply with a line 'Final answer: <answer>'.",
    ),
    "true/false": (
        "Answer with True or False.",
        "Reply with only True or False.",
        "Respond in one word, True or False.",
        "Say whether the statement holds, as a single word.",
        "Give the truth value of the expression.",
        "End your reply with a line 'Final answer: <answer>'.",
    ),
    "letter": (
        "Answer with the letter of the correct option, e.g. (A).",
        "Reply with just the letter of your choice.",
        "Pick one option and give only its label.",
        "Choose the best option.",
        "End your reply with a line 'Final answer: <option>'.",
    ),
    "number": (
        "Give only the number as your answer.",
        "End with the final answer on its own line as '#### <number>'.",
        "Output the number only.",
        "Finish with the numeric result.",
        "State the result as a figure.",
    ),
    "text": (
        "Give the answer alone, in the same form as the expected answers.",
        "End your reply with a line 'Final answer: <answer>'.",
        "Keep your reply to the answer itself.",
        "Use the answer format the task expects.",
    ),
}
_MOVES: dict[str, tuple[str, ...]] = {
    "reasoning": (
        "Let's think step by step.",
        "Think it through before you answer.",
        "Take a deep breath and work on this problem step-by-step.",
        "Work through the problem one part at a time before answering.",
        "Reason carefully about each part of the problem.",
        "Break the problem down, then solve it.",
    ),
    "brevity": ("Be concise.", "Keep your answer short.", "No preamble.", "Do not add explanations."),
    "role": (
        "You are a careful expert problem solver.",
        "You are a meticulous analyst who double-checks every detail.",
        "You are a precise assistant.",
    ),
    "edge_case": (
        "If the question is ambiguous, choose the most likely answer.",
        "If you are unsure, still commit to a single answer.",
        "Pay attention to negations and to the exact wording of the question.",
    ),
    "restate": (
        "Read the question carefully and answer exactly what it asks.",
        "Your task: solve the problem below.",
        "Solve the following task.",
    ),
}
MOVES = ("format", *_MOVES)


@dataclass(frozen=True)
class _Shown:
    output: str
    reference: str | None
    score: float


@dataclass(frozen=True)
class _Request:
    system_prompt: str
    output_prompt: str
    examples: list[_Shown]
    history: list[tuple[str, str, float]]
    parsed: bool


class _Dice:
    """Deterministic numbers in [0, 1) from the request text and a purpose."""

    def __init__(self, request: CompletionRequest) -> None:
        self._seed = f"{NAME}\x00{request.system_prompt}\x00{request.user_prompt}"

    def unit(self, purpose: str) -> float:
        digest = hashlib.sha256(f"{self._seed}\x00{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def pick(self, options: Sequence[str], purpose: str) -> str:
        return options[int(self.unit(purpose) * len(options))]


class SimOptimizer:
    """The simulated optimizer model `sim:optimizer` (see the module docstring)."""

    def __init__(self, name: str = NAME) -> None:
        self.name = name
        self.model = f"sim:{name}"

    def complete(self, request: CompletionRequest) -> Completion:
        """A JSON critique and rewrite of the request's current prompt (deterministic)."""
        started = time.perf_counter()
        found = _read(request.user_prompt)
        dice = _Dice(request)
        if not found.parsed:
            reply: dict[str, Any] = {
                "critique": "[simulated optimizer] no current prompt found in the request",
                "system_prompt": "",
                "output_prompt": "",
            }
        elif found.history:
            reply = _from_history(found, dice)
        else:
            reply = _rewrite(found, dice)
        text = json.dumps(reply, ensure_ascii=False)
        finish = "STOP"
        if len(text.split()) > request.max_tokens:
            text, finish = " ".join(text.split()[: request.max_tokens]), "MAX_TOKENS"
        usage = Usage(len(f"{request.system_prompt}\n{request.user_prompt}".split()), len(text.split()))
        return Completion(
            text=text,
            usage=usage,
            cost_usd=pricing.cost(self.model, usage),
            latency_s=time.perf_counter() - started,
            model=self.model,
            finish_reason=finish,
        )

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        task_type: str | None = None,
        timeout_s: float = 60.0,
    ) -> EmbeddingResult:
        """Embeddings as the target simulator makes them (the optimizer has none of its own)."""
        from promptopt.llm.sim.provider import SimProvider

        return SimProvider(self.name).embed(texts, model=model, task_type=task_type, timeout_s=timeout_s)


def _section(text: str, tag: str) -> list[dict[str, Any]]:
    """The JSON objects, one per line, between `<tag>` and `</tag>`."""
    start = text.find(f"<{tag}>\n")
    if start < 0:
        return []
    end = text.find(f"\n</{tag}>", start)
    body = text[start + len(tag) + 3 : end if end >= 0 else len(text)]
    found = []
    for line in body.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _read(user_prompt: str) -> _Request:
    current = _section(user_prompt, "current_prompt")
    parent = current[0] if current else {}
    examples = [
        _Shown(
            str(e.get("output", "")),
            None if e.get("reference") is None else str(e["reference"]),
            float(e.get("score", 0.0)),
        )
        for e in _section(user_prompt, "examples")
    ]
    history = [
        (str(h.get("system_prompt", "")), str(h.get("output_prompt", "")), float(h.get("score", 0.0)))
        for h in _section(user_prompt, "history")
    ]
    return _Request(
        system_prompt=str(parent.get("system_prompt", "")),
        output_prompt=str(parent.get("output_prompt", "")),
        examples=examples,
        history=history,
        parsed=isinstance(parent.get("output_prompt"), str),
    )


def _kind(references: list[str]) -> str:
    """The kind of answer the references show."""
    words = {r.strip().casefold() for r in references}
    if not words:
        return "text"
    if words <= {"yes", "no"}:
        return "yes/no"
    if words <= {"true", "false"}:
        return "true/false"
    if all(_LETTER.match(r.strip()) for r in references):
        return "letter"
    if all(_NUMBER.match(r.strip()) for r in references):
        return "number"
    return "text"


@dataclass(frozen=True)
class _Diagnosis:
    move: str | None  # the move the failures point at
    kind: str
    note: str


def _diagnose(examples: list[_Shown]) -> _Diagnosis:
    failures = [e for e in examples if e.reference is not None and e.score < 1.0]
    if not failures:
        return _Diagnosis(None, "text", "no failures with references were shown")
    references = [e.reference or "" for e in failures]
    kind = _kind(references)
    buried = long = wrong = 0
    for e in failures:
        out, ref = _WORD.findall(e.output.casefold()), _WORD.findall((e.reference or "").casefold())
        if len(out) > 3 * max(1, len(ref)) + 5:
            long += 1
            if ref and " ".join(ref) in " ".join(out):
                buried += 1
        else:
            wrong += 1
    n = len(failures)
    example = references[0][:40]
    if buried + long >= wrong:
        note = (
            f"{long} of {n} failing outputs are much longer than the reference (e.g. {example!r}); "
            f"in {buried} the expected answer is buried in the text. "
            "The prompt does not state an answer format."
        )
        return _Diagnosis("format", kind, note)
    note = (
        f"{wrong} of {n} failing outputs have the expected form but the wrong answer "
        f"(e.g. expected {example!r}); the prompt does not ask the model to reason before answering."
    )
    return _Diagnosis("reasoning", kind, note)


def _phrase(move: str, kind: str, dice: _Dice, purpose: str) -> str:
    options = _FORMATS[kind] if move == "format" else _MOVES[move]
    return dice.pick(options, purpose)


def _has(text: str, move: str) -> bool:
    options = [p for k in _FORMATS.values() for p in k] if move == "format" else list(_MOVES[move])
    return any(p in text for p in options)


def _apply(system: str, output: str, moves: list[tuple[str, str]]) -> tuple[str, str]:
    """Add each (move, phrasing) around the template, which is copied unchanged.

    A role goes into the system prompt, a restated task before the template, the rest after it.
    """
    for move, phrase in moves:
        if move == "role":
            system = f"{phrase}\n{system}".strip()
        elif move == "restate":
            output = f"{phrase}\n\n{output}"
        else:
            output = f"{output.rstrip()}\n{phrase}"
    return system, output


def _choose_moves(diagnosis: _Diagnosis | None, present: str, dice: _Dice) -> list[str]:
    candidates = [m for m in MOVES if not _has(present, m)] or list(MOVES)
    if diagnosis is not None and diagnosis.move in candidates and dice.unit("diagnosed") < DIAGNOSED:
        first = diagnosis.move
    else:
        first = dice.pick(candidates, "blind")
    moves = [first]
    rest = [m for m in candidates if m != first]
    if rest and dice.unit("second") < SECOND_MOVE:
        if diagnosis is not None and first == "format" and "reasoning" in rest and dice.unit("pair") < 0.5:
            moves.append("reasoning")  # formatted but still one-shot: the common next fix
        else:
            moves.append(dice.pick(rest, "second-move"))
    return moves


def _rewrite(found: _Request, dice: _Dice) -> dict[str, Any]:
    diagnosis = _diagnose(found.examples) if found.examples else None
    kind = diagnosis.kind if diagnosis is not None else "text"
    present = f"{found.system_prompt}\n{found.output_prompt}"
    moves = _choose_moves(diagnosis, present, dice)
    chosen = [(m, _phrase(m, kind, dice, f"phrase-{m}")) for m in moves]
    system, output = _apply(found.system_prompt, found.output_prompt, chosen)
    lead = diagnosis.note if diagnosis is not None else "No failures were shown; rewording blindly."
    critique = f"[simulated optimizer] {lead} Changes: " + "; ".join(f"{m} ({p!r})" for m, p in chosen)
    return {"critique": critique, "system_prompt": system, "output_prompt": output}


def _from_history(found: _Request, dice: _Dice) -> dict[str, Any]:
    ranked = sorted(found.history, key=lambda h: -h[2])
    system, output, score = ranked[0]
    present = f"{system}\n{output}"
    runner_up = f"{ranked[1][0]}\n{ranked[1][1]}" if len(ranked) > 1 else ""
    borrowed = [m for m in MOVES if _has(runner_up, m) and not _has(present, m)]
    if borrowed:
        move = dice.pick(borrowed, "borrow")
        phrase = next(p for p in (_FORMATS_ALL if move == "format" else _MOVES[move]) if p in runner_up)
        note = f"the runner-up's {move} instruction added to the best prompt (score {score:.2f})"
    else:
        move = _choose_moves(None, present, dice)[0]
        phrase = _phrase(move, "text", dice, f"phrase-{move}")
        note = f"a {move} instruction added to the best prompt so far (score {score:.2f})"
    system, output = _apply(system, output, [(move, phrase)])
    return {
        "critique": f"[simulated optimizer] {note}: {phrase!r}",
        "system_prompt": system,
        "output_prompt": output,
    }


_FORMATS_ALL = tuple(p for options in _FORMATS.values() for p in options)
