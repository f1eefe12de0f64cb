"""Object counting for the simulated model ("I have a flute, two cats, ... How many animals do I have?").

The list after "I have" is split at commas and "and"; each entry is a quantity ("a", "an", a
number word or digits) and a thing. A small built-in lexicon says which kind each thing is
(fruits, vegetables, musical instruments, animals, and household objects); things it does not
know are not counted. "objects" counts every entry it knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptopt.llm.sim.words import numerals


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_KINDS: dict[str, frozenset[str]] = {
    "fruit": _words(
        "apple banana blackberry grape nectarine orange peach plum raspberry strawberry "
        "pear mango lemon lime cherry melon watermelon kiwi pineapple apricot"
    ),
    "vegetable": _words(
        "broccoli cabbage carrot cauliflower celery garlic lettuce onion potato yam "
        "pea bean spinach pepper cucumber zucchini radish beet turnip"
    ),
    "musical instrument": _words(
        "accordion clarinet drum flute piano trombone trumpet violin "
        "guitar cello harp saxophone tuba oboe bassoon banjo harmonica"
    ),
    "animal": _words(
        "bear cat chicken cow dog donkey duck fish frog goat mouse pig rabbit snail snake "
        "horse sheep lion tiger bird owl goose"
    ),
    "object": _words(
        "bed car chair couch fridge lamp microwave oven stove table toaster sofa desk bookshelf television"
    ),
}
_IRREGULAR = {"mice": "mouse", "geese": "goose", "fish": "fish", "sheep": "sheep"}
_QUESTION = re.compile(r"\bI have (.+?)\.\s*How many ([a-z ]+?) do I have\?", re.IGNORECASE | re.DOTALL)
_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_QUANTITY = re.compile(r"^(an?|\d+)\s+(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Counted:
    """The count of one kind in a list, with one step per list entry."""

    total: int
    noun: str
    listed: int
    steps: list[str]
    text: str = ""  # the problem as matched ("I have ... How many ... do I have?")


def _singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, replacement in (("ies", "y"), ("oes", "o"), ("ches", "ch"), ("shes", "sh"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + replacement
    return word


def kind_of(thing: str) -> str | None:
    """The kind of a thing ("heads of broccoli" -> "vegetable"), or None when unknown."""
    for word in reversed(thing.lower().split()):
        singular = _singular(word)
        for kind, members in _KINDS.items():
            if singular in members or word in members:
                return kind
    return None


def count(problem: str) -> Counted | None:
    """The count asked for by an "I have ... How many X do I have?" problem, or None."""
    match = _QUESTION.search(problem)
    if match is None:
        return None
    asked = " ".join(match.group(2).lower().split())
    kind = _singular(asked.split()[-1])
    kind = " ".join([*asked.split()[:-1], kind])
    if kind not in _KINDS:
        return None
    entries = [e.strip() for e in _SPLIT.split(match.group(1)) if e.strip()]
    total, steps = 0, []
    for entry in entries:
        found = _QUANTITY.match(numerals(entry))
        if found is None:
            return None
        quantity = 1 if found.group(1).lower() in ("a", "an") else int(found.group(1))
        known = kind_of(found.group(2))
        if known is not None and kind in ("object", known):
            total += quantity
            steps.append(f"{entry}: {quantity} (total {total}).")
        else:
            steps.append(f"{entry}: not {asked} (total {total}).")
    return Counted(total=total, noun=asked, listed=len(entries), steps=steps, text=match.group(0))
