"""Task families the simulated model (`promptopt.llm.sim.provider`) can work out from the question text.

`solve(problem)` recognises a family by its wording and works it out, or returns None. It sees
only the problem text, never a reference answer. The families (phrased as in BIG-Bench Hard):

- boolean: "not ( True ) and ( True ) is": evaluated exactly (parentheses first, then not, and, or).
- web_of_lies: "X tells the truth. Y says X lies. ... Does Z tell the truth?": each claim is
  checked against the speaker before it.
- navigate: "Always face forward. Take 3 steps left. Turn around. Take 2 steps. ... do you return
  to the starting point?": the moves are followed on a grid.
- object_counting: "I have a flute, two pianos, and a cat. How many musical instruments do I have?":
  quantities of the items whose kind is asked are added (promptopt.llm.sim.counting).

The result says whether the family takes several steps (all but boolean), which is when a
one-shot answer may slip (see promptopt.llm.sim.provider).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from promptopt.llm.sim import counting as sim_counting


@dataclass(frozen=True)
class Solved:
    """A worked-out problem: its family, answer (a truth value or a count) and the steps taken."""

    family: str
    value: bool | int
    steps: tuple[str, ...]
    multi_step: bool
    noun: str = ""  # what is counted (object_counting)
    listed: int = 0  # how many entries the list had (object_counting)
    problem: str = ""  # the question text it was worked out from (no instructions around it)

    @property
    def is_count(self) -> bool:
        """True when the answer is a number rather than a truth value."""
        return not isinstance(self.value, bool)


_BOOL_EXPR = re.compile(r"(?:^|\n)\s*((?:(?:not|and|or|True|False|\(|\))\s+)+)is\b")
_LIAR_BASE = re.compile(r"\b([A-Z]\w*) (tells the truth|lies)\.")
_LIAR_CLAIM = re.compile(r"\b([A-Z]\w*) says ([A-Z]\w*) (tells the truth|lies)\.")
_LIAR_QUESTION = re.compile(r"\bDoes ([A-Z]\w*) tell the truth\?")
_NAV_QUESTION = re.compile(r"return to the starting point", re.IGNORECASE)
_NAV_MOVE = re.compile(
    r"\b(?:Take (\d+) steps?(?: (forward|backward|left|right))?|Turn (left|right|around)"
    r"|(Always face forward))\.",
    re.IGNORECASE,
)


def solve(problem: str) -> Solved | None:
    """The family's answer worked out from `problem`, or None when no family is recognised."""
    for solver in _SOLVERS:
        found = solver(problem)
        if found is not None:
            return found
    return None


def _boolean(problem: str) -> Solved | None:
    match = _BOOL_EXPR.search(problem)
    if match is None:
        return None
    tokens = match.group(1).split()
    if not any(t in ("True", "False") for t in tokens):
        return None
    steps: list[str] = []
    value = _reduce(tokens, steps)
    if value is None:
        return None
    return Solved(
        "boolean_expressions", value, tuple(steps), multi_step=False, problem=match.group(0).strip()
    )


def _reduce(tokens: list[str], steps: list[str]) -> bool | None:
    """Evaluate Boolean tokens (Python's precedence), writing each reduction into `steps`."""
    tokens = list(tokens)
    while "(" in tokens:
        if ")" not in tokens:
            return None
        close = tokens.index(")")
        opens = [i for i in range(close) if tokens[i] == "("]
        if not opens:
            return None
        inner = _flat(tokens[opens[-1] + 1 : close], steps)
        if inner is None:
            return None
        tokens[opens[-1] : close + 1] = [str(inner)]
    if ")" in tokens:
        return None
    return _flat(tokens, steps)


def _flat(tokens: list[str], steps: list[str]) -> bool | None:
    """Evaluate tokens without parentheses: every `not` (innermost first), then `and`, then `or`."""
    tokens = list(tokens)
    while "not" in tokens:
        at = max(i for i, t in enumerate(tokens) if t == "not")
        if at + 1 >= len(tokens) or tokens[at + 1] not in ("True", "False"):
            return None
        result = str(tokens[at + 1] != "True")
        steps.append(f"not {tokens[at + 1]} = {result}")
        tokens[at : at + 2] = [result]
    for op in ("and", "or"):
        while op in tokens:
            at = tokens.index(op)
            if at == 0 or at + 1 >= len(tokens):
                return None
            left, right = tokens[at - 1], tokens[at + 1]
            if left not in ("True", "False") or right not in ("True", "False"):
                return None
            both = (left == "True", right == "True")
            result = str(all(both) if op == "and" else any(both))
            steps.append(f"{left} {op} {right} = {result}")
            tokens[at - 1 : at + 2] = [result]
    if len(tokens) != 1 or tokens[0] not in ("True", "False"):
        return None
    return tokens[0] == "True"


def _web_of_lies(problem: str) -> Solved | None:
    question = _LIAR_QUESTION.search(problem)
    if question is None:
        return None
    truthful: dict[str, bool] = {}
    steps: list[str] = []
    claims = {m.start(): m for m in _LIAR_CLAIM.finditer(problem)}
    for match in _LIAR_BASE.finditer(problem):
        if any(start <= match.start() < claim.end() for start, claim in claims.items()):
            continue  # the tail of a claim ("Y says X lies."), not a statement of its own
        truthful[match.group(1)] = match.group(2) == "tells the truth"
        steps.append(f"{match.group(1)} {'tells the truth' if truthful[match.group(1)] else 'lies'}.")
        break
    if not truthful:
        return None
    for claim in claims.values():
        speaker, subject, says = claim.group(1), claim.group(2), claim.group(3) == "tells the truth"
        if subject not in truthful:
            return None
        truthful[speaker] = truthful[subject] == says
        verdict = "tells the truth" if truthful[speaker] else "lies"
        steps.append(
            f"{speaker} says {subject} {claim.group(3)}; {subject} "
            f"{'tells the truth' if truthful[subject] else 'lies'}, so {speaker} {verdict}."
        )
    asked = question.group(1)
    if asked not in truthful:
        return None
    starts = [m.start() for m in _LIAR_BASE.finditer(problem)] + list(claims)
    text = problem[min(starts) : question.end()]
    return Solved("web_of_lies", truthful[asked], tuple(steps), multi_step=True, problem=text)


_TURNS: dict[str, Callable[[int, int], tuple[int, int]]] = {
    "left": lambda dx, dy: (-dy, dx),
    "right": lambda dx, dy: (dy, -dx),
    "around": lambda dx, dy: (-dx, -dy),
}


def _navigate(problem: str) -> Solved | None:
    question = _NAV_QUESTION.search(problem)
    if question is None:
        return None
    x = y = 0
    dx, dy = 0, 1  # facing "forward" (north)
    steps: list[str] = []
    begin, end = question.start(), question.end()
    for move in _NAV_MOVE.finditer(problem):
        begin, end = min(begin, move.start()), max(end, move.end())
        count, direction, turn, _fixed = move.groups()
        if turn:
            dx, dy = _TURNS[turn.lower()](dx, dy)
            steps.append(f"Turn {turn.lower()}: now facing ({dx}, {dy}).")
        elif count:
            n = int(count)
            mx, my = dx, dy
            if direction and direction.lower() != "forward":
                mx, my = (-dx, -dy) if direction.lower() == "backward" else _TURNS[direction.lower()](dx, dy)
            x, y = x + n * mx, y + n * my
            steps.append(f"Take {n} step{'s' if n != 1 else ''} {direction or 'forward'}: now at ({x}, {y}).")
    if not steps:
        return None
    back = x == 0 and y == 0
    steps.append(f"End at ({x}, {y}): {'back at' if back else 'not at'} the start.")
    return Solved("navigate", back, tuple(steps), multi_step=True, problem=problem[begin:end])


def _object_counting(problem: str) -> Solved | None:
    counted = sim_counting.count(problem)
    if counted is None:
        return None
    return Solved(
        "object_counting",
        counted.total,
        tuple(counted.steps),
        multi_step=True,
        noun=counted.noun,
        listed=counted.listed,
        problem=counted.text,
    )


_SOLVERS: tuple[Callable[[str], Solved | None], ...] = (_boolean, _web_of_lies, _navigate, _object_counting)
