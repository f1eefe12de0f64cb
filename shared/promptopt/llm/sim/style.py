"""The instructions the simulated model (`promptopt.llm.sim.provider`) reads from a prompt.

`read_style(prompt)` takes the whole prompt (system + user) and returns which instructions it
states. The rules are listed in `promptopt.llm.sim.provider`'s docstring; the patterns live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "step by step", "step-by-step", or the word "think"/"thinking" ("Let's think", "think it through").
_STEPS = re.compile(r"step[\s-]by[\s-]step|\bthink(?:ing)?\b")
_LETTER = ("answer with the letter", "only the letter", "just the letter")
_PAIR = r"""["'(]?(true|yes)["')]?\s*(?:or|/)\s*["'(]?(false|no)\b"""
# A pair of answer words stated as the format: after a verb of answering ("Answer with Yes or No",
# "reply 'True' or 'False'", "respond only yes/no") or after only/just/either ("only True or False").
_WORDS = re.compile(
    rf"\b(?:answer|reply|respond|output|say|write)\w*\b[^.\n]{{0,30}}?{_PAIR}|\b(?:only|just|either)\s+{_PAIR}"
)
_NUMBER_ONLY = re.compile(r"\b(?:only|just) (?:the |a )?(?:final )?number\b|\bnumber only\b")


@dataclass(frozen=True)
class Style:
    """What the prompt asks for (see `promptopt.llm.sim.provider`)."""

    steps: bool = False
    final: bool = False
    letter: bool = False
    number_only: bool = False
    words: tuple[tuple[str, str], ...] = ()

    def pair(self, preferred: tuple[str, str]) -> tuple[str, str] | None:
        """The answer words the prompt asks for: `preferred` if stated, else the pair stated, else None."""
        if preferred in self.words:
            return preferred
        return self.words[0] if self.words else None


def read_style(prompt: str) -> Style:
    """The instructions stated anywhere in `prompt` (casefolded before matching)."""
    text = prompt.casefold()
    pairs: list[tuple[str, str]] = []
    for match in _WORDS.finditer(text):
        first = match.group(1) or match.group(3)
        pair = ("True", "False") if first == "true" else ("Yes", "No")
        if pair not in pairs:
            pairs.append(pair)
    return Style(
        steps=_STEPS.search(text) is not None,
        final="####" in text or "final answer" in text,
        letter=any(k in text for k in _LETTER),
        number_only=_NUMBER_ONLY.search(text) is not None,
        words=tuple(pairs),
    )
