"""A SIMULATED model (`sim:<name>`): offline and deterministic, for tests and local runs.

It is not a language model. It exists so the optimizer and evaluation code can run end to end
without network or cost, while prompt wording still changes the score: it can work out some task
families, and follows an answer format only when the prompt states it. On the task families the
score is a landscape worth searching (`promptopt.llm.sim.landscape`, drawn per seed = the name
after "sim:"; `sim:<seed>@<n>ms` answers the same after waiting n ms): latent prompt features
(`promptopt.llm.sim.features`: format, final-answer delimiter, reasoning, brevity, role,
edge-case rules, demonstrations, and the distractors verbosity and conflicting formats) decide how
often a stated format is kept and how often the worked-out answer slips, with interactions,
diminishing returns and a best reachable score below 1 on some tasks. It never sees reference
answers: its only input is the CompletionRequest. Its rules:

- Instructions are read from the whole prompt (system + user), casefolded
  (`promptopt.llm.sim.style`):
  * "step by step", "step-by-step" or the word "think"/"thinking" -> it works step by step
    (every operation of a word problem, one per line); otherwise it answers in one shot: it only
    manages the first operation of a word problem. On the task families the landscape's
    reasoning feature (more phrasings) shows the steps, and how often an answer slips (a flipped
    Yes/No, a count off by one) is the landscape's: reasoning helps fully only with a final-answer
    delimiter.
  * "####" or "final answer" -> it ends arithmetic and counting answers with a line
    "#### <number>" (multiple-choice answers with "Final answer: (X)", Yes/No and True/False
    answers with "Final answer: <word>").
  * "answer with the letter", "only the letter" or "just the letter" -> for multiple choice it
    replies with the option alone, e.g. "(B)".
  * A pair of answer words stated as the format: a verb of answering (answer/reply/respond/
    output/say/write) followed within 30 characters by "true or false" or "yes or no" (also
    "yes/no", quoted words), or "only"/"just"/"either" right before the pair ("Answer with True
    or False", "reply with only yes or no") -> the reply is that word alone, e.g. "No". A pair in
    the problem itself ("True or False is") does not count.
  * "only the number", "just the number" (also "only the final number", "number only") -> for
    arithmetic and counting the reply is the number alone.
  * The answer-only formats (letter, word pair, number) win over showing steps: the reply is the
    answer alone, and the reasoning still decides how reliably it was worked out. On the task
    families a stated format is kept only as often as the landscape says (brevity and
    demonstrations help, verbosity and conflicting formats hurt); when it is not kept, the reply
    is what it would be with no format.
  * With no format it rambles: the answer is buried mid-text and the text ends with another
    number (how many numbers it saw, or how many things a list had) or other option letters, and
    a Yes/No or True/False answer is hedged with the other word, so a last-number/last-letter
    extractor or exact_match reads the wrong thing. With steps but no format it ends
    "So the answer is X." (right for a last-number extractor, wrong for exact_match).
- The problem is the text after the last "Question:"/"Q:" marker of the user prompt (so few-shot
  demonstrations before it are skipped), else the whole user prompt.
- Task families, recognised by their wording and worked out from the question text
  (`promptopt.llm.sim.tasks`; phrasings as in BIG-Bench Hard):
  * boolean expressions ("not ( True ) and ( True ) is", at the start of a line): evaluated
    exactly (parentheses, then not, and, or), one shot or not: True/False.
  * web of lies ("X lies. Y says X tells the truth. ... Does Z tell the truth?"): Yes/No.
  * navigate ("... do you return to the starting point? Always face forward. Take 3 steps left.
    Turn around. Take 2 steps."): the moves are followed on a grid: Yes/No.
  * object counting ("I have a flute, two cats, ... How many animals do I have?"): quantities of
    the things of the asked kind (fruits, vegetables, musical instruments, animals, objects) from
    a small built-in lexicon (`promptopt.llm.sim.counting`): a number.
  Anything else with a stated word pair ("answer with yes or no") and no options gets a guess in
  those words (a hash), e.g. BBH sports_understanding, which it cannot judge.
- Arithmetic: number words are read as digits first (`promptopt.llm.sim.words`: "three" -> 3,
  "a dozen" -> 12, "twice" -> "2 times", "half" -> 0.5, "two-thirds", "3/4 of" -> 0.75). A plain
  expression (`12 + 7 * 3`) is evaluated exactly. A word problem (two or more numbers) is read
  left to right: the first number is the start value, each later number applies one operation
  picked by keywords in its own clause (from the clause start after the previous number to the
  clause end after it; clauses end at , . ; ? ! and " and "): a number below 1 followed by
  "of"/"as" multiplies; else divide: split/shared/divide/equally/among/average/into; multiply:
  each/times/per/every/twice/"an hour"/"a day"/"a week"/"a month"; subtract: gives/gave/eats/ate/
  loses/lost/spends/spent/sells/sold/uses/used/away/fewer/less/younger/stole/left; otherwise add.
  Percentages and units are not understood, so only a share of GSM8K comes out right. Anything
  else gets a deterministic guess. Arithmetic is tried when the problem has a digit or two or
  more number words (not counting "one", usually a pronoun).
- Multiple choice (options written "(A) text"): with "step by step" it picks an option whose
  text equals the computed number if there is one; otherwise the option sharing the most words
  with the question, ties broken by a hash.
- Temperature > 0 adds slips (arithmetic off by 1 or 2, a flipped word, a count off by one) with
  probability min(0.5, temperature / 4).
- Pseudo-randomness is a SHA-256 of (model name, temperature, system, user, purpose): same inputs,
  same output (so rewording a prompt changes which one-shot answers slip, not how often). Usage
  counts whitespace-separated words; cost is 0; output is cut at max_tokens words (finish reason
  MAX_TOKENS).
- With response_schema it answers a JSON object with the schema's properties filled from the answer.
- A grading request (a prompt with `<reference>` and `<response>` blocks that asks for a score)
  gets a JSON verdict whose score follows the response's word overlap with the reference, and
  `embed` returns hashed bag-of-words vectors: see `promptopt.llm.sim.semantic`.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import operator
import re
import threading
import time
from collections.abc import Callable, Sequence

from promptopt.llm import pricing
from promptopt.llm.sim import features as sim_features
from promptopt.llm.sim import landscape as sim_landscape
from promptopt.llm.sim import replies as sim_replies
from promptopt.llm.sim import schema_fill
from promptopt.llm.sim import semantic as sim_semantic
from promptopt.llm.sim import tasks as sim_tasks
from promptopt.llm.sim.style import Style, read_style
from promptopt.llm.sim.words import numerals
from promptopt.llm.types import (
    Completion,
    CompletionRequest,
    EmbeddingResult,
    ModelRequestError,
    Usage,
    embedding_model_name,
)

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_TIMES = "\u00d7"  # the multiplication sign
_EXPRESSION = re.compile(r"(?<![\w.])[-(]*\d[\d.]*(?:\s*[-+*/x\u00d7]\s*[(]*\d[\d.]*[)]*)+")
_OPTION = re.compile(r"\(([A-R])\)\s*([^\n]*?)(?=\s*\([A-R]\)|\n|$)")
_CLAUSE_END = re.compile(r"[.,;?!]| and ")
_CLAUSE_START = re.compile(r"[.,;?!](?:\s|$)| and ")
_FRACTION_OF = re.compile(r"\s*(?:of|as)\b")
_MARKER = re.compile(r"(?:^|\n)\s*(?:question|q)\s*:", re.IGNORECASE)
_WORD = re.compile(r"[a-z]{4,}")
_ONE = re.compile(r"\bone\b", re.IGNORECASE)

_OPS: list[tuple[str, str, tuple[str, ...]]] = [
    ("/", "divided by", ("split", "shared", "divide", "equally", "among", "average", "into")),
    ("*", "times", ("each", "times", " per ", "every", "twice", " an hour", " a day", " a week", " a month")),
    (
        "-",
        "minus",
        (
            "gives",
            "gave",
            "eats",
            "ate",
            "loses",
            "lost",
            "spends",
            "spent",
            "sells",
            "sold",
            "uses",
            "used",
            "away",
            "fewer",
            "less",
            "younger",
            "stole",
            "left",
        ),
    ),
]
_APPLY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda a, b: a / b if b else a,
}


class SimProvider:
    """The simulator for model id `sim:<name>` (any name; it only seeds the hash)."""

    def __init__(self, name: str = "default") -> None:
        self.model = f"sim:{name}"
        self.name, self.latency_s = _name_and_latency(name)

    def complete(self, request: CompletionRequest) -> Completion:
        """Answer deterministically by the rules in the module docstring."""
        started = time.perf_counter()
        prompt = f"{request.system_prompt}\n{request.user_prompt}"
        style = read_style(prompt)
        problem = _problem(request.user_prompt)
        rng = _Hasher(self.name, request)
        options = _OPTION.findall(problem)
        verdict = sim_semantic.grade(request)
        solved = sim_tasks.solve(problem) if verdict is None else None
        if verdict is not None:
            text, answer = verdict, verdict
        elif solved is not None:
            text, answer = self._family(solved, request, rng)
        elif len(options) >= 2:
            text, answer = _multiple_choice(problem, options, style, rng)
        elif style.words:
            text, answer = sim_replies.guess_reply(style.words[0], rng.unit)
        elif _has_numbers(problem):
            text, answer = _arithmetic(problem, style, rng, request.temperature)
        else:
            words = problem.split()[:12]
            text, answer = f"[simulated] Response to: {' '.join(words)}", "simulated"
        if request.response_schema is not None and verdict is None:
            try:
                text = json.dumps(schema_fill.fill(request.response_schema, answer, text))
            except schema_fill.SchemaFillError as exc:
                # What a real provider does with a schema it cannot follow: a 400 for this request.
                raise ModelRequestError(str(exc), model=self.model, status=400) from None
        words = text.split()
        finish = "STOP"
        if len(words) > request.max_tokens:
            text, finish = " ".join(words[: request.max_tokens]), "MAX_TOKENS"
        usage = Usage(len(prompt.split()), len(text.split()))
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

    def _family(self, solved: sim_tasks.Solved, request: CompletionRequest, rng: _Hasher) -> tuple[str, str]:
        """A task family's reply, as the landscape decides for this prompt and row."""
        text, demos = sim_features.instructions(request.system_prompt, request.user_prompt)
        features = sim_features.read_features(text, demos)
        land = sim_landscape.landscape(solved.family, self.name)
        prompt = f"{request.system_prompt}\x00{request.user_prompt}"

        def draw(purpose: str) -> float:
            return sim_landscape.row_draw(self.name, solved.problem, prompt, purpose)

        outcome = sim_replies.decide(solved, features, land, draw, rng.unit, request.temperature)
        style = dataclasses.replace(read_style(text), steps=features.reasoning)
        return sim_replies.family_reply(solved, style, outcome, rng.unit)

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        task_type: str | None = None,
        timeout_s: float = 60.0,
    ) -> EmbeddingResult:
        """Simulated embeddings (hashed bag of words, 256 dims); usage counts words, cost is 0."""
        started = time.perf_counter()
        model_id = f"sim:{embedding_model_name('sim', self.name, model, self.name)}"
        usage = Usage(
            input_tokens=sum(len(text.split()) for text in texts),
            input_characters=sum(len(text) for text in texts),
        )
        return EmbeddingResult(
            vectors=[sim_semantic.embed_text(text) for text in texts],
            usage=usage,
            cost_usd=pricing.cost(model_id, usage),
            latency_s=time.perf_counter() - started,
            model=model_id,
            calls=1 if texts else 0,
        )


_LATENCY = re.compile(r"^(?P<seed>.+?)@(?P<ms>\d{1,6})ms$")


def _name_and_latency(name: str) -> tuple[str, float]:
    """`name@200ms` -> ("name", 0.2): a simulator that takes 200 ms per call (benchmarks); else no wait.

    Only the part before "@" seeds the answers and the landscape, so a slow twin answers the same.
    """
    found = _LATENCY.match(name)
    if found is None:
        return name, 0.0
    return found.group("seed"), int(found.group("ms")) / 1000


class _Hasher:
    def __init__(self, name: str, request: CompletionRequest) -> None:
        self._seed = "\x00".join(
            (name, repr(request.temperature), request.system_prompt, request.user_prompt)
        )

    def unit(self, purpose: str) -> float:
        """A deterministic number in [0, 1) for this request and purpose."""
        digest = hashlib.sha256(f"{self._seed}\x00{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


def _problem(user_prompt: str) -> str:
    markers = list(_MARKER.finditer(user_prompt))
    return user_prompt[markers[-1].end() :].strip() if markers else user_prompt.strip()


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text) if m.replace(",", "").strip("-")]


def _has_numbers(problem: str) -> bool:
    """A digit, or two or more number words ("three", "twice", "a dozen"; "one" alone is a pronoun)."""
    return bool(_numbers(problem)) or len(_numbers(numerals(_ONE.sub("", problem)))) >= 2


def _fmt(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


# CPython 3.11's parser can fail with "SystemError: AST constructor recursion depth mismatch"
# when several threads parse at once (a batch chunk calls the simulator from 32 threads).
_PARSE_LOCK = threading.Lock()


def _safe_eval(expression: str) -> float | None:
    """Evaluate + - * / and parentheses over numbers only; None if anything else appears."""
    try:
        with _PARSE_LOCK:
            tree = ast.parse(expression.replace(_TIMES, "*").replace("x", "*"), mode="eval")
    except SyntaxError:
        return None
    binary: dict[type[ast.operator], Callable[[float, float], float]] = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
    }

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in binary:
            return binary[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("unsupported")

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError):
        return None


def _solve(problem: str) -> tuple[list[str], float] | None:
    """Steps (as text) and the answer, or None when the problem is not recognised."""
    problem = numerals(problem)
    match = _EXPRESSION.search(problem)
    if match and any(op in match.group(0) for op in "+-*/x" + _TIMES):
        value = _safe_eval(match.group(0).strip())
        if value is not None:
            return [f"{match.group(0).strip()} = {_fmt(value)}"], value
    spans = [(m.start(), m.end(), float(m.group(0).replace(",", ""))) for m in _NUMBER.finditer(problem)]
    if len(spans) < 2:
        return None
    value = spans[0][2]
    steps: list[str] = []
    for i in range(1, len(spans)):
        # This number's clause: the words since the previous number (from the start of the clause
        # they reach into) plus the rest of the clause after it.
        following = problem[spans[i][1] : spans[i + 1][0] if i + 1 < len(spans) else len(problem)]
        before = problem[spans[i - 1][1] : spans[i][0]]
        starts = list(_CLAUSE_START.finditer(before))
        if starts:
            before = before[starts[-1].end() :]
        context = (before + _CLAUSE_END.split(following, maxsplit=1)[0]).lower()
        symbol, word = "+", "plus"
        if spans[i][2] < 1 and _FRACTION_OF.match(following):
            symbol, word = "*", "times"  # "0.5 of the balls", "0.25 as many"
        else:
            for op_symbol, op_word, keys in _OPS:
                if any(k in context for k in keys):
                    symbol, word = op_symbol, op_word
                    break
        result = _APPLY[symbol](value, spans[i][2])
        steps.append(f"{_fmt(value)} {word} {_fmt(spans[i][2])} is {_fmt(result)}")
        value = result
    return steps, value


def _arithmetic(problem: str, style: Style, rng: _Hasher, temperature: float) -> tuple[str, str]:
    solved = _solve(problem)
    seen = _numbers(numerals(problem))
    if solved is None:
        steps, value = ["I could not work this out, so I estimate"], float(int(rng.unit("guess") * 100))
    else:
        steps, value = solved
        if not style.steps:
            steps = steps[:1]  # one-shot: only the first operation is carried out
            value = float(_NUMBER.findall(steps[0])[-1].replace(",", ""))
    if temperature > 0 and rng.unit("slip") < min(0.5, temperature / 4):
        value += (-2, -1, 1, 2)[int(rng.unit("delta") * 4)]
    answer = _fmt(value)
    if style.number_only:
        return answer, answer
    if style.steps:
        lines = ["Let's think step by step."]
        lines += [f"Step {i}: {step}." for i, step in enumerate(steps, 1)]
        lines.append(f"#### {answer}" if style.final else f"So the answer is {answer}.")
        return "\n".join(lines), answer
    if style.final:
        return f"{steps[0]}.\nThe answer is {answer}.\n#### {answer}", answer
    return (
        f"Hmm, let me see. Working it out, I get something like {answer}, give or take. "
        f"Then again, I counted {len(seen)} numbers in the question, so it may be worth "
        f"double-checking; problems with {len(seen)} numbers can be tricky.",
        answer,
    )


def _multiple_choice(
    problem: str, options: list[tuple[str, str]], style: Style, rng: _Hasher
) -> tuple[str, str]:
    stem = problem[: problem.find(f"({options[0][0]})")]
    chosen: str | None = None
    if style.steps:
        solved = _solve(stem)
        if solved is not None:
            target = _fmt(solved[1])
            chosen = next((letter for letter, text in options if text.strip() == target), None)
    if chosen is None:
        stem_words = set(_WORD.findall(stem.lower()))
        scored = [
            (len(stem_words & set(_WORD.findall(text.lower()))), rng.unit(f"tie-{letter}"), letter)
            for letter, text in options
        ]
        chosen = max(scored)[2]
    chosen_text = dict(options)[chosen].strip()
    others = [letter for letter, _ in options if letter != chosen]
    if style.letter:
        return f"({chosen})", chosen
    if style.steps:
        text = (
            f"Let's think step by step.\nLooking at each option, '{chosen_text}' fits the question best.\n"
            + (f"Final answer: ({chosen})" if style.final else f"So the answer is ({chosen}).")
        )
        return text, chosen
    if style.final:
        return f"'{chosen_text}' fits best.\nFinal answer: ({chosen})", chosen
    return (
        f"Interesting question. I keep coming back to '{chosen_text}'. Though ({others[0]}) "
        f"and ({others[-1]}) are tempting too, it is hard to say.",
        chosen,
    )
