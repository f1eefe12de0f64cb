"""How the simulated model words its answer to a task family (`promptopt.llm.sim.tasks`).

The rules are in `promptopt.llm.sim.provider`'s docstring; `unit(purpose)` is the simulator's
deterministic pseudo-random number in [0, 1) for the request.
"""

from __future__ import annotations

from collections.abc import Callable

from promptopt.llm.sim.style import Style
from promptopt.llm.sim.tasks import Solved

# Without "step by step" (or "think"), a multi-step family is answered in one go and slips this often.
ONE_SHOT_SLIP = 0.45

Unit = Callable[[str], float]


def slip_chance(solved: Solved, style: Style, temperature: float) -> float:
    """The probability that the answer is wrong (one-shot slips and temperature slips combined)."""
    one_shot = ONE_SHOT_SLIP if solved.multi_step and not style.steps else 0.0
    heat = min(0.5, temperature / 4) if temperature > 0 else 0.0
    return 1 - (1 - one_shot) * (1 - heat)


def family_reply(solved: Solved, style: Style, unit: Unit, temperature: float) -> tuple[str, str]:
    """The reply text and the bare answer for a worked-out family problem."""
    value = solved.value
    if unit("family-slip") < slip_chance(solved, style, temperature):
        if isinstance(value, bool):
            value = not value
        else:
            value = value + 1 if value == 0 or unit("family-delta") < 0.5 else value - 1
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
