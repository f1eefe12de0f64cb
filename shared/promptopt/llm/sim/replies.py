"""How the simulated model words its answer to a task family (`promptopt.llm.sim.tasks`).

The rules are in `promptopt.llm.sim.provider`'s docstring; `unit(purpose)` is the simulator's
deterministic pseudo-random number in [0, 1) for the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from promptopt.llm.sim.features import Features
from promptopt.llm.sim.landscape import Landscape
from promptopt.llm.sim.style import Style
from promptopt.llm.sim.tasks import Solved

Unit = Callable[[str], float]


@dataclass(frozen=True)
class Outcome:
    """What the landscape decided for one row: whether the answer slipped and the format was kept."""

    slipped: bool
    complied: bool


def decide(
    solved: Solved,
    features: Features,
    land: Landscape,
    draw: Callable[[str], float],
    unit: Unit,
    temperature: float,
) -> Outcome:
    """Whether this row's answer slips and whether the reply keeps a stated format.

    `draw(purpose)` is the row's draw (mostly the row's own, see promptopt.llm.sim.landscape);
    `unit(purpose)` the request's own, for temperature slips.
    """
    correct = land.correct_chance(features, land.edge(solved.problem))
    slipped = draw("correct") >= correct
    if temperature > 0 and unit("family-heat") < min(0.5, temperature / 4):
        slipped = True
    complied = draw("comply") < land.comply_chance(features)
    return Outcome(slipped=slipped, complied=complied)


def family_reply(solved: Solved, style: Style, outcome: Outcome, unit: Unit) -> tuple[str, str]:
    """The reply text and the bare answer for a worked-out family problem."""
    value = solved.value
    if outcome.slipped:
        if isinstance(value, bool):
            value = not value
        else:
            value = value + 1 if value == 0 or unit("family-delta") < 0.5 else value - 1
    if not outcome.complied:
        style = Style(steps=style.steps)  # the stated format is not kept: as if none were stated
    if isinstance(value, bool):
        return _truth_reply(solved, value, style)
    return _count_reply(solved, value, style)


def _truth_reply(solved: Solved, value: bool, style: Style) -> tuple[str, str]:
    natural = ("True", "False") if solved.family == "boolean_expressions" else ("Yes", "No")
    stated = style.pair(natural)
    words = stated or natural
    word, other = (words[0], words[1]) if value else (words[1], words[0])
    if stated is not None:
        return word, word  # an answer-only format wins: the word alone
    if style.steps:
        lines = ["Let's think step by step."]
        lines += [f"Step {i}: {step}" for i, step in enumerate(solved.steps, 1)]
        lines.append(f"Final answer: {word}" if style.final else f"So the answer is {word}.")
        return "\n".join(lines), word
    if style.final:
        return f"Working it out in one go.\nFinal answer: {word}", word
    return (
        f"Hmm, let me see. I lean towards {word}, though {other} is not out of the question; "
        "it is easy to lose track here.",
        word,
    )


def _count_reply(solved: Solved, value: int, style: Style) -> tuple[str, str]:
    answer = str(value)
    if style.number_only:
        return answer, answer
    if style.steps:
        lines = ["Let's think step by step."]
        lines += [f"Step {i}: {step}" for i, step in enumerate(solved.steps, 1)]
        lines.append(f"#### {answer}" if style.final else f"So the answer is {answer}.")
        return "\n".join(lines), answer
    if style.final:
        return f"I count {answer} {solved.noun}.\n#### {answer}", answer
    return (
        f"Let me count... I make it {answer} {solved.noun}, more or less. "
        f"There were {solved.listed} things on the list in all.",
        answer,
    )


def guess_reply(pair: tuple[str, str], unit: Unit) -> tuple[str, str]:
    """A stated yes/no (or true/false) format on a question the simulator cannot work out: a guess."""
    word = pair[0] if unit("guess-word") < 0.5 else pair[1]
    return word, word
