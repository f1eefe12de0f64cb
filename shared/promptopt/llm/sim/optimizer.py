"""A SIMULATED optimizer model (`sim:optimizer`): offline and deterministic, for tests and local runs.

It is not a language model. It answers the requests `promptopt.experiments.proposals.build_request`
writes with a JSON critique and rewrite, so a whole optimization run works without network or
cost while the search still has something to find. What it does:

- It reads the sections of the request: `<current_prompt>` (the parent), `<examples>` (failures
  with output, reference and score) or `<history>` (earlier prompts with scores).
- It diagnoses the failures it is shown, and only those, against what the prompt already does:
  rambling outputs with the answer buried -> an answer format (worded for the kind of answer the
  references show: yes/no, true/false, an option letter, a number); rambling although a format
  is stated -> brevity, or a cleanup when the prompt asks for detail or states two formats;
  short but wrong answers -> reasoning, then a marked final answer, then an edge-case rule about
  what the failing questions share (negations, liars, turns, quantities; generic otherwise).
- Its moves come from a vocabulary of general prompt-engineering moves, each in several
  phrasings; a few phrasings are vague (a model would not reliably follow them) and one move
  (asking for detail) reads well but hurts exact answers, so candidates differ and search
  matters. It never reads the target's landscape: only the request's text.
- Exploration is seeded by a hash of the request (which names the slot's seed and index): with
  some probability it picks a move blindly instead of the diagnosed one. Same request, same answer.
- history: it starts from the best-scored earlier prompt and adds a line a runner-up has that it
  lacks (usually), else a blind move worded for the answers the exemplars show. No failures
  shown (`random`): moves are picked blindly, the answer kind guessed from the prompt's wording.
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
SECOND_MOVE = 0.6  # how often a second move is added
_LETTER = re.compile(r"^\(?[A-R]\)?$")
_NUMBER = re.compile(r"^-?\d[\d,]*(?:\.\d+)?$")
_WORD = re.compile(r"\w+")

# Answer formats by the kind of answer the references show. A few phrasings are vague (a real
# model would not reliably follow them), so some candidates are better than others.
_FORMATS: dict[str, tuple[str, ...]] = {
    "yes/no": (
        "Answer with Yes or No.",
        "Reply with only Yes or No, nothing else.",
        "Respond in one word, Yes or No.",
        "Your answer must be a single word: Yes/No.",
        "Give a clear verdict, affirmative or negative.",
        "State your verdict as one of the two options.",
    ),
    "true/false": (
        "Answer with True or False.",
        "Reply with only True or False.",
        "Respond in one word, True or False.",
        "Say whether the statement holds, as a single word.",
        "Give the truth value of the expression.",
    ),
    "letter": (
        "Answer with the letter of the correct option, e.g. (A).",
        "Reply with just the letter of your choice.",
        "Pick one option and give only its label.",
        "Choose the best option.",
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
        "Keep your reply to the answer itself.",
        "Use the answer format the task expects.",
    ),
}
# Edge-case rules by what the failing questions have in common; `generic` when nothing stands out.
_RULES: dict[str, tuple[str, ...]] = {
    "negations": (
        "If the expression has several negations, apply each 'not' in turn, innermost first.",
        "Watch out for double negatives: 'not not X' is X.",
        "Pay attention to every 'not' in the expression.",
    ),
    "liars": (
        "Remember that when someone lies, the opposite of what they say is true.",
        "Keep track of each claim: a liar's statement is false, a truthful one is true.",
        "If a speaker lies, flip their claim before moving on.",
    ),
    "turns": (
        "When you turn around, your direction reverses; track your facing after every turn.",
        "Pay attention to the direction you face after each turn.",
        "If the instructions say to turn, update your orientation before the next step.",
    ),
    "quantities": (
        "Make sure to count quantities: 'two cats' counts as two animals.",
        "Pay attention to number words and to items of a different kind.",
        "When an item comes with a number word, count every one of them.",
    ),
    "generic": (
        "If the question is ambiguous, choose the most likely answer.",
        "If you are unsure, still commit to a single answer.",
        "Pay close attention to the exact wording of the question.",
    ),
}
_TRAITS: dict[str, re.Pattern[str]] = {
    "negations": re.compile(r"\bnot\b[^.]*\bnot\b", re.IGNORECASE),
    "liars": re.compile(r"\blies\b", re.IGNORECASE),
    "turns": re.compile(r"\bturn\b", re.IGNORECASE),
    "quantities": re.compile(r"\b(?:two|three|four|five)\b", re.IGNORECASE),
}
_MOVES: dict[str, tuple[str, ...]] = {
    "reasoning": (
        "Let's think step by step.",
        "Think it through before you answer.",
        "Take a deep breath and work on this problem step-by-step.",
        "Think step by step, then give your final answer.",
        "Work through the problem one part at a time, then state the answer.",
        "Reason carefully about each part of the problem and end with your final answer.",
        "Consider the problem from every angle.",
    ),
    "delimiter": (
        "After your reasoning, state the final answer.",
        "Then give your answer.",
        "End with your final answer.",
        "Conclude with the answer on the last line.",
        "Make the answer easy to find.",
    ),
    "brevity": (
        "Be concise.",
        "Keep your answer short.",
        "No preamble.",
        "Do not add explanations.",
        "Skip pleasantries.",
    ),
    "role": (
        "You are a careful expert problem solver.",
        "You are a meticulous analyst who double-checks every detail.",
        "You are a precise assistant.",
        "Act as a logician.",
    ),
    "restate": (
        "Read the question carefully and answer exactly what it asks.",
        "Your task: solve the problem below.",
        "Solve the following task.",
    ),
    # A move that reads well but hurts exact answers; only ever picked blindly.
    "elaborate": (
        "Explain your answer in detail.",
        "Be thorough and justify every step.",
        "Elaborate on your reasoning before answering.",
    ),
}
MOVES = ("format", "rule", "cleanup", *_MOVES)
BLIND = ("format", "rule", "reasoning", "delimiter", "brevity", "role", "restate", "elaborate")
# How the optimizer recognises what a prompt already does (its own reading of the text).
_PRESENT: dict[str, re.Pattern[str]] = {
    "format": re.compile(
        r"\b(?:yes|true)\b\W+(?:or|/)\W+\b(?:no|false)\b|\bletter\b|\bnumber only\b|\bonly the number\b"
        r"|\bthe number as your answer\b|####|\bsingle word\b|\bone word\b|\blabel\b",
        re.IGNORECASE,
    ),
    "reasoning": re.compile(r"step[ -]by[ -]step|\bthink|\breason|\bwork through|\bbreak", re.IGNORECASE),
    "delimiter": re.compile(
        r"final answer|####|\blast line\b|\bthen (?:give|answer)|\bend with", re.IGNORECASE
    ),
    "brevity": re.compile(
        r"concise|\bshort\b|preamble|nothing else|no explanation|not add explanation", re.IGNORECASE
    ),
    "role": re.compile(r"\byou are\b|\bact as\b", re.IGNORECASE),
    "elaborate": re.compile(r"in detail|thorough|elaborate|justify", re.IGNORECASE),
    "restate": re.compile(r"\bread the question\b|\byour task\b|\bsolve the following\b", re.IGNORECASE),
}


@dataclass(frozen=True)
class _Shown:
    output: str
    reference: str | None
    score: float
    inputs: str = ""


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
        from promptopt.llm.sim.provider import _name_and_latency

        # `optimizer@200ms` answers as `optimizer` does, after waiting 200 ms (benchmarks).
        self.model = f"sim:{name}"
        self.name, self.latency_s = _name_and_latency(name)

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
        if self.latency_s:
            time.sleep(self.latency_s)
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
            " ".join(str(v) for v in (e.get("inputs") or {}).values())
            if isinstance(e.get("inputs"), dict)
            else "",
        )
        for e in [*_section(user_prompt, "examples"), *_section(user_prompt, "exemplars")]
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
    second: str | None  # the move that usually goes with it
    kind: str
    topic: str
    note: str


def _topic(failures: list[_Shown]) -> str:
    """What the failing questions have in common (a trait in at least 30% of them), else generic."""
    counts = {t: sum(1 for e in failures if p.search(e.inputs)) for t, p in _TRAITS.items()}
    top = max(counts, key=lambda t: counts[t]) if counts else "generic"
    return top if failures and counts.get(top, 0) >= 0.3 * len(failures) else "generic"


def _diagnose(examples: list[_Shown], present: str) -> _Diagnosis:
    """The move the failures point at, given what the prompt already does (`present`)."""
    failures = [e for e in examples if e.reference is not None and e.score < 1.0]
    if not failures:
        return _Diagnosis(None, None, "text", "generic", "no failures with references were shown")
    references = [e.reference or "" for e in failures]
    kind, topic = _kind(references), _topic(failures)
    buried = long = wrong = 0
    for e in failures:
        out, ref = _WORD.findall(e.output.casefold()), _WORD.findall((e.reference or "").casefold())
        if len(out) > 3 * max(1, len(ref)) + 5:
            long += 1
            if ref and " ".join(ref) in " ".join(out):
                buried += 1
        else:
            wrong += 1
    n, example = len(failures), references[0][:40]
    has = {m: _has(present, m) for m in _PRESENT}
    if buried + long >= wrong:
        lead = (
            f"{long} of {n} failing outputs are much longer than the reference (e.g. {example!r}); "
            f"in {buried} the expected answer is buried in the text."
        )
        if not has["format"]:
            return _Diagnosis(
                "format", "reasoning", kind, topic, f"{lead} The prompt states no answer format."
            )
        if has["elaborate"] or _formats_stated(present) > 1:
            return _Diagnosis(
                "cleanup", "brevity", kind, topic,
                f"{lead} The prompt asks for detail or states more than one format, which pulls against it.",
            )  # fmt: skip
        return _Diagnosis(
            "brevity", "role", kind, topic, f"{lead} A format is stated but not kept: ask for brevity."
        )
    lead = (
        f"{wrong} of {n} failing outputs have the expected form but the wrong answer (expected {example!r});"
    )
    if not has["reasoning"]:
        return _Diagnosis(
            "reasoning", "delimiter", kind, topic, f"{lead} the prompt does not ask to reason first."
        )
    if not has["delimiter"]:
        return _Diagnosis(
            "delimiter",
            "rule",
            kind,
            topic,
            f"{lead} the reasoning has no marked place for the final answer.",
        )
    return _Diagnosis(
        "rule", "role", kind, topic,
        f"{lead} the failing questions share a trait ({topic}) that deserves an explicit rule.",
    )  # fmt: skip


def _formats_stated(text: str) -> int:
    pairs = re.findall(r"\b(yes|true)\b\W+(?:or|/)\W+\b(?:no|false)\b", text, re.IGNORECASE)
    return len({p.casefold() for p in pairs}) + ("letter" in text.casefold()) + ("####" in text)


def _phrase(move: str, diagnosis: _Diagnosis, dice: _Dice, purpose: str, present: str = "") -> str:
    """A phrasing of `move`, never a line the prompt (`present`) already has ("" when all are there)."""
    if move == "format":
        options = _FORMATS[diagnosis.kind]
    elif move == "rule":
        options = _RULES[diagnosis.topic]
    else:
        options = _MOVES[move]
    lines = {line.strip() for line in present.split("\n")}
    fresh = tuple(o for o in options if o not in lines)
    return dice.pick(fresh, purpose) if fresh else ""


def _has(text: str, move: str) -> bool:
    pattern = _PRESENT.get(move)
    return bool(pattern and pattern.search(text))


def _apply(system: str, output: str, moves: list[tuple[str, str]]) -> tuple[str, str]:
    """Add each (move, phrasing) around the template, which is copied unchanged.

    A role goes into the system prompt, a restated task before the template, the rest after it;
    cleanup drops the sentences that ask for detail (and, of two stated formats, the first).
    """
    for move, phrase in moves:
        if move == "cleanup":
            system, output = _cleanup(system), _cleanup(output)
        elif move == "role":
            system = f"{phrase}\n{system}".strip()
        elif move == "restate":
            output = f"{phrase}\n\n{output}"
        else:
            output = f"{output.rstrip()}\n{phrase}"
    return system, output


def _cleanup(text: str) -> str:
    """`text` without its sentences that ask for detail, and with only the last stated answer format."""
    lines = []
    for line in text.split("\n"):
        if "{" in line:  # never touch a line holding a placeholder
            lines.append(line)
            continue
        kept = [s for s in re.split(r"(?<=[.!?])\s+", line) if not _has(s, "elaborate")]
        lines.append(" ".join(kept))
    out = "\n".join(lines)
    formats = [
        m for m in re.finditer(r"[^.\n]*\b(?:yes|true)\b\W+(?:or|/)\W+\b(?:no|false)\b[^.\n]*\.?", out, re.I)
    ]
    for m in formats[:-1]:
        if "{" not in m.group(0):
            out = out.replace(m.group(0), "", 1)
    return re.sub(r"\n{3,}", "\n\n", out).strip("\n") if out.strip() else text


def _choose_moves(diagnosis: _Diagnosis | None, present: str, dice: _Dice) -> list[str]:
    """One or two moves: the diagnosed one (usually) and its companion, else blind picks."""
    blind = [m for m in BLIND if m == "rule" or not _has(present, m)] or list(BLIND)
    if diagnosis is not None and diagnosis.move is not None and dice.unit("diagnosed") < DIAGNOSED:
        first = diagnosis.move
    else:
        first = dice.pick(blind, "blind")
    moves = [first]
    if dice.unit("second") < SECOND_MOVE:
        second = diagnosis.second if diagnosis is not None else None
        if second is None or second == first or (second != "rule" and _has(present, second)):
            rest = [m for m in blind if m != first]
            second = dice.pick(rest, "second-move") if rest else None
        if second is not None:
            moves.append(second)
    return moves


def _guess(found: _Request, present: str, dice: _Dice) -> _Diagnosis:
    """No failures to read: the answer kind and rule topic from the exemplars, else a guess.

    The kind comes from the references shown (exemplars), else from the prompt's wording, else
    from the dice; the rule topic from the exemplars' inputs.
    """
    references = [e.reference for e in found.examples if e.reference is not None]
    if references:
        kind = _kind(references)
    else:
        text = present.casefold()
        hints = [k for k, words in _KIND_HINTS.items() if any(w in text for w in words)]
        kind = hints[0] if hints else dice.pick(tuple(_FORMATS), "kind")
    return _Diagnosis(None, None, kind, _topic(list(found.examples)), "")


_KIND_HINTS = {
    "true/false": ("boolean", "true", "false", "expression"),
    "yes/no": ("yes", "does ", "do you"),
    "letter": ("option", "choice"),
    "number": ("how many", "count", "number"),
}


def _rewrite(found: _Request, dice: _Dice) -> dict[str, Any]:
    present = f"{found.system_prompt}\n{found.output_prompt}"
    diagnosis = _diagnose(found.examples, present) if found.examples else None
    shown = diagnosis or _guess(found, present, dice)
    moves = _choose_moves(diagnosis, present, dice)
    chosen = [(m, "" if m == "cleanup" else _phrase(m, shown, dice, f"phrase-{m}", present)) for m in moves]
    chosen = [(m, p) for m, p in chosen if p or m == "cleanup"]  # a move with every phrasing present
    system, output = _apply(found.system_prompt, found.output_prompt, chosen)
    lead = diagnosis.note if diagnosis is not None else "No failures were shown; rewording blindly."
    critique = f"[simulated optimizer] {lead} Changes: " + "; ".join(f"{m} ({p!r})" for m, p in chosen)
    return {"critique": critique, "system_prompt": system, "output_prompt": output}


def _from_history(found: _Request, dice: _Dice) -> dict[str, Any]:
    """OPRO-like: the best-scored prompt plus what the runner-up has that it lacks, else a blind move."""
    ranked = sorted(found.history, key=lambda h: -h[2])
    system, output, score = ranked[0]
    present = f"{system}\n{output}"
    lines = [
        line
        for s, o, sc in ranked[1:3]
        if sc > 0
        for line in f"{s}\n{o}".split("\n")
        if line and "{" not in line
    ]
    borrowed = [line for line in lines if line not in present and not _has(line, "elaborate")]
    guessed = _guess(found, present, dice)
    if borrowed and dice.unit("borrow") < 0.7:
        phrase = dice.pick(borrowed, "borrow")
        move = next((m for m in _PRESENT if _has(phrase, m)), "restate")
        note = f"a line of a runner-up added to the best prompt (score {score:.2f})"
    else:
        # The exemplars show what answers look like: a prompt without a format gets one first.
        if not _has(present, "format") and dice.unit("format-first") < 0.5:
            move = "format"
        else:
            move = _choose_moves(None, present, dice)[0]
        phrase = "" if move == "cleanup" else _phrase(move, guessed, dice, f"phrase-{move}", present)
        note = f"a {move} instruction added to the best prompt so far (score {score:.2f})"
    system, output = _apply(system, output, [(move, phrase)] if phrase or move == "cleanup" else [])
    return {
        "critique": f"[simulated optimizer] {note}: {phrase!r}",
        "system_prompt": system,
        "output_prompt": output,
    }
