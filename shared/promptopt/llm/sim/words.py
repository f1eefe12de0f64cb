"""Number words for the simulated model (`promptopt.llm.sim.provider`): "three" -> 3, "a dozen" -> 12.

`numerals(text)` rewrites the number words of a word problem as digits so the simulator's
left-to-right rule can use them:

- cardinals: "zero" to "nineteen", the tens ("twenty" ... "ninety"), joined by a space or a
  hyphen ("twenty-five", "twenty five"), scaled by "hundred", "thousand" and "million" ("two
  hundred and five" -> 205, "a hundred" -> 100);
- "dozen" (with "a", "one", "two" ... in front: "a dozen" -> 12, "two dozen" -> 24) and "dozens"
  -> 12 (the unit);
- multipliers: "twice" and "double" -> "2 times", "triple" and "thrice" -> "3 times";
- fractions: "half" -> 0.5 (also "a half", "one half"), "a third"/"one third" -> 0.3333333333,
  "two-thirds" -> 0.6666666667, "a quarter"/"one quarter" -> 0.25, "three-quarters" -> 0.75, and
  "two-fifths"-style forms up to tenths;
- a fraction written with a slash and followed by a word ("3/4 of the building", "1/2 pound") ->
  its decimal (0.75, 0.5); a slash between numbers not followed by a word ("12 / 4?") is left to
  the simulator's plain-expression rule;
- a percent sign stays where it is ("20%" stays "20%": the simulator does not read percentages).

Everything else (ordinals such as "first", the article "a" alone, words inside other words) is
left as written. Nothing here looks at answers: it is plain text rewriting.
"""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_DENOMINATORS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "thirds": 3,
    "quarter": 4,
    "quarters": 4,
    "fourth": 4,
    "fourths": 4,
    "fifth": 5,
    "fifths": 5,
    "sixth": 6,
    "sixths": 6,
    "seventh": 7,
    "sevenths": 7,
    "eighth": 8,
    "eighths": 8,
    "ninth": 9,
    "ninths": 9,
    "tenth": 10,
    "tenths": 10,
}
_MULTIPLIERS = {"twice": 2, "double": 2, "triple": 3, "thrice": 3}

_CARDINAL = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
# A run of cardinal words joined by spaces or hyphens ("twenty-five", "two hundred five").
_RUN = re.compile(rf"\b(?:{_CARDINAL})(?:[\s-]+(?:{_CARDINAL}))*\b", re.IGNORECASE)
_SCALE_AND = re.compile(rf"\b(hundred|thousand)\s+and\s+(?=(?:{_CARDINAL})\b)", re.IGNORECASE)
_FRACTION = re.compile(rf"\b(a|an|one|{'|'.join(_UNITS)})[\s-]+({'|'.join(_DENOMINATORS)})\b", re.IGNORECASE)
_DOZEN = re.compile(rf"\b(?:(a|{'|'.join(_UNITS)})\s+)?dozens?\b", re.IGNORECASE)
_HALF = re.compile(r"\bhalf\b", re.IGNORECASE)
_MULTIPLIER = re.compile(rf"\b({'|'.join(_MULTIPLIERS)})\b", re.IGNORECASE)
_SLASH = re.compile(r"(?<![\d/.])(\d+)/(\d+)(?![\d/])(?=\s+[a-z])", re.IGNORECASE)
_A_SCALE = re.compile(r"\ba\s+(hundred|thousand|million)\b", re.IGNORECASE)


def _cardinal(words: list[str]) -> int | None:
    """The value of cardinal words ("two", "hundred", "five"), or None when they do not form one."""
    total, current, seen = 0, 0, False
    for word in words:
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
            seen = True
        elif word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
            seen = True
    return total + current if seen else None


def _run_value(match: re.Match[str]) -> str:
    words = [w for w in re.split(r"[\s-]+", match.group(0).lower()) if w]
    # Numbers side by side ("three four") are kept apart: a new number starts at a unit or a ten
    # that follows a unit or a ten, except a ten followed by a unit from one to nine ("twenty five").
    groups: list[list[str]] = [[]]
    for word in words:
        previous = groups[-1][-1] if groups[-1] else None
        joined = previous in _TENS and 0 < _UNITS.get(word, 0) < 10
        if previous is not None and previous not in _SCALES and word not in _SCALES and not joined:
            groups.append([])
        groups[-1].append(word)
    values = [_cardinal(group) for group in groups]
    return " ".join(str(v) for v in values if v is not None)


def _decimal(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".")  # enough digits that 3 * 0.3333333333 rounds to 1


def _fraction_value(match: re.Match[str]) -> str:
    numerator = 1 if match.group(1).lower() in ("a", "an", "one") else _UNITS[match.group(1).lower()]
    return _decimal(numerator / _DENOMINATORS[match.group(2).lower()])


def _slash_value(match: re.Match[str]) -> str:
    denominator = int(match.group(2))
    return _decimal(int(match.group(1)) / denominator) if denominator else match.group(0)


def _dozen_value(match: re.Match[str]) -> str:
    count = match.group(1)
    if count is None or count.lower() == "a":
        return "12"
    return str(_UNITS[count.lower()] * 12)


def numerals(text: str) -> str:
    """`text` with its number words written as digits (see the module docstring)."""
    text = _SLASH.sub(_slash_value, text)
    text = _A_SCALE.sub(lambda m: f"one {m.group(1)}", text)
    text = _SCALE_AND.sub(lambda m: f"{m.group(1)} ", text)
    text = _DOZEN.sub(_dozen_value, text)
    text = _FRACTION.sub(_fraction_value, text)
    text = _HALF.sub("0.5", text)
    text = _MULTIPLIER.sub(lambda m: f"{_MULTIPLIERS[m.group(1).lower()]} times", text)
    return _RUN.sub(_run_value, text)
