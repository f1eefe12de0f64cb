"""The SIMULATED model's score landscape: how prompt features change how often and how well it answers.

Per task family and seed (the simulator's name: `sim:default` has seed "default") a `Landscape`
is drawn from a hash, so no test or optimizer can hard-code it. For a prompt's `Features`
(`promptopt.llm.sim.features`) it gives two probabilities per row:

- comply: that a reply follows the stated format (else it rambles, as with no format). The format
  alone gives `comply`; brevity, demonstrations (most where the format is unusual: `demo_format`)
  and a role each close part of the remaining gap (diminishing returns), up to `comply_max`;
  verbosity ("explain in detail") and conflicting formats take a share away.
- correct: that the worked-out answer is kept (else it slips). One-shot error `error`; reasoning
  removes a share `reasoning` of it only when a final-answer delimiter is asked for too (without
  one, a fifth of that share); a role and demonstrations remove smaller shares. Edge-case rows
  (a trait of the question, per family: double negations, a chain that starts with a liar, turning
  around, several counted quantities) add `edge_error` unless a rule about that topic is stated (a
  generic rule covers a quarter); an irreducible `floor` keeps the best reachable score below 1
  on some tasks.

A row's outcome compares these probabilities with draws that mostly belong to the row (its
difficulty: every prompt finds the same rows hard) and partly to the prompt (so near-identical
prompts differ a little, as real models do). A prompt's phrasing also moves its error by up to
±3%. `best` reports the best expected score and the features that reach it; it is for
benchmarks only, never reachable through the model API.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from promptopt.llm.sim.features import Features

PROMPT_SHARE = 0.05  # how often a row's draw belongs to the prompt rather than to the row
PHRASING = 0.06  # the range of a phrasing's effect on the error rate (±half of it)
MULTI_STEP = ("web_of_lies", "navigate", "object_counting")
TOPIC = {
    "boolean_expressions": "negation",
    "web_of_lies": "truth",
    "navigate": "direction",
    "object_counting": "quantity",
}
_EDGE = {
    "boolean_expressions": re.compile(r"\bnot not\b"),
    "web_of_lies": re.compile(r"^\s*(?:question:\s*)?\w+ lies\.", re.IGNORECASE),
    "navigate": re.compile(r"\bturn around\b", re.IGNORECASE),
    "object_counting": re.compile(r"(?:\b(?:two|three|four|five)\b.*){2}", re.IGNORECASE),
}


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts`."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _draw(seed: str, family: str, name: str, low: float, high: float) -> float:
    return low + (high - low) * unit("landscape", seed, family, name)


@dataclass(frozen=True)
class Landscape:
    """One family's effects under one seed (see the module docstring)."""

    family: str
    seed: str
    comply: float
    comply_max: float
    brevity: float
    demo_format: float
    role_format: float
    verbose_hit: float
    conflict_hit: float
    error: float
    reasoning: float
    role: float
    demo_error: float
    edge_error: float
    floor: float

    @property
    def topic(self) -> str:
        """The topic a rule must name to cover this family's edge cases."""
        return TOPIC.get(self.family, "generic")

    def edge(self, problem: str) -> bool:
        """Whether `problem` is one of this family's edge cases."""
        pattern = _EDGE.get(self.family)
        return bool(pattern and pattern.search(problem))

    def comply_chance(self, f: Features) -> float:
        """The probability that a reply follows a stated format."""
        gap = 1 - self.comply
        if f.brevity:
            gap *= 1 - self.brevity
        if f.demos:
            gap *= 1 - self.demo_format
        if f.role:
            gap *= 1 - self.role_format
        chance = min(self.comply_max, 1 - gap)
        if f.verbose:
            chance *= 1 - self.verbose_hit
        if f.conflict:
            chance *= 1 - self.conflict_hit
        return chance

    def correct_chance(self, f: Features, edge: bool) -> float:
        """The probability that the worked-out answer is kept (not slipped) on a row."""
        error = self.error
        if f.reasoning:
            error *= 1 - (self.reasoning if f.delimiter else self.reasoning / 5)
        if f.role:
            error *= 1 - self.role
        if f.demos:
            error *= 1 - self.demo_error
        if f.phrasing:
            error *= 1 + PHRASING * (unit("phrasing", self.seed, f.phrasing) - 0.5)
        if edge:
            covered = f.rule_for(self.topic)
            worked = 0.5 if f.reasoning and f.delimiter else 0.0
            error = 1 - (1 - error) * (1 - self.edge_error * (1 - covered) * (1 - worked))
        return (1 - self.floor) * (1 - min(1.0, error))


@functools.lru_cache(maxsize=256)
def landscape(family: str, seed: str) -> Landscape:
    """The landscape of `family` under `seed` (drawn from a hash; the same seed, the same landscape)."""

    def d(name: str, low: float, high: float) -> float:
        return _draw(seed, family, name, low, high)

    multi = family in MULTI_STEP
    floor = d("floor", -0.06, 0.1)
    return Landscape(
        family=family,
        seed=seed,
        comply=d("comply", 0.7, 0.9),
        comply_max=min(1.0, d("comply_max", 0.95, 1.05)),
        brevity=d("brevity", 0.3, 0.7),
        demo_format=d("demo_format", 0.05, 0.8),
        role_format=d("role_format", 0.0, 0.2),
        verbose_hit=d("verbose_hit", 0.3, 0.6),
        conflict_hit=d("conflict_hit", 0.4, 0.7),
        error=d("error", 0.3, 0.5) if multi else d("error", 0.1, 0.25),
        reasoning=d("reasoning", 0.65, 0.95),
        role=d("role", 0.0, 0.25),
        demo_error=d("demo_error", 0.05, 0.3),
        edge_error=d("edge_error", 0.25, 0.5),
        floor=max(0.0, floor),
    )


def row_draw(seed: str, problem: str, prompt: str, purpose: str) -> float:
    """A row's draw for `purpose`: the row's own most of the time, the prompt's otherwise."""
    if unit("share", seed, prompt, problem, purpose) < PROMPT_SHARE:
        return unit("prompt", seed, prompt, problem, purpose)
    return unit("row", seed, problem, purpose)


# --- what is reachable (benchmarks only) -------------------------------------------------------

NEGLIGIBLE = 0.005  # a feature adding less than this to the best score is not reported as needed
SEARCHED = ("format", "delimiter", "reasoning", "brevity", "role", "rule", "demos")


def scored(f: Features, family: str, metric: str) -> bool:
    """Whether replies under `f` can score on `metric` at all (their surface can match)."""
    if metric == "numeric":
        return f.format or f.delimiter or f.reasoning
    return f.format  # exact_match and the like need the answer alone


def expected(f: Features, family: str, seed: str, problems: Sequence[str], metric: str) -> float:
    """The expected mean score of a prompt with features `f` over `problems` (temperature 0)."""
    if not problems or not scored(f, family, metric):
        return 0.0
    land = landscape(family, seed)
    stated = f.format or f.delimiter
    # A numeric metric also reads the "So the answer is N." that worked steps end with when a
    # stated format is not kept; other metrics need the stated format.
    comply = land.comply_chance(f) if stated and not (metric == "numeric" and f.reasoning) else 1.0
    total = sum(land.correct_chance(f, land.edge(p)) for p in problems)
    return comply * total / len(problems)


def combos(family: str) -> list[Features]:
    """Every combination of the helpful features (no distractors), for `best`."""
    topic = TOPIC.get(family, "generic")
    out = []
    for bits in itertools.product((False, True), repeat=len(SEARCHED)):
        on = dict(zip(SEARCHED, bits, strict=True))
        out.append(
            Features(
                format=on["format"],
                delimiter=on["delimiter"],
                reasoning=on["reasoning"],
                brevity=on["brevity"],
                role=on["role"],
                rule_topics=frozenset({topic}) if on["rule"] else frozenset(),
                demos=3 if on["demos"] else 0,
            )
        )
    return out


@dataclass(frozen=True)
class Best:
    """The best expected score of a family under a seed, and a feature set that reaches it."""

    score: float
    features: Features


def best(family: str, seed: str, problems: Sequence[str], metric: str) -> Best:
    """The best expected score over `problems` and a feature set reaching it.

    Features that add less than `NEGLIGIBLE` to it are left out of the set reported. For
    benchmarks and tests only: the optimizer never sees this (it talks to the model API).
    """
    found = [(expected(f, family, seed, problems, metric), f) for f in combos(family)]
    score, features = max(found, key=lambda t: t[0])
    without: dict[str, Callable[[Features], Features]] = {
        "role": lambda f: replace(f, role=False),
        "demos": lambda f: replace(f, demos=0),
        "brevity": lambda f: replace(f, brevity=False),
        "rule_topics": lambda f: replace(f, rule_topics=frozenset()),
        "delimiter": lambda f: replace(f, delimiter=False),
        "reasoning": lambda f: replace(f, reasoning=False),
    }
    for name, drop in without.items():
        fewer = drop(features)
        if getattr(features, name) and expected(fewer, family, seed, problems, metric) >= score - NEGLIGIBLE:
            features = fewer
    return Best(score=score, features=features)
