"""Which strategy proposes each candidate; under `auto`, a bandit spends slots where gains come from.

The bandit is UCB1 on improvement per call: each arm's reward rate is its total gain (score points
over the parent, negative gains counted as none) divided by the calls it spent, normalised by the
best rate seen so that the exploration term keeps its usual scale. Every arm is tried once first.
A choice counts as a pull at once, so the parallel slots of one iteration spread over arms before
any result is in. Its state is a small JSON-able dict kept in the run document between steps.

One iteration's slots are assigned together (`assign`): no arm takes more than half of them, so
an arm that won early (often by the noise of a small minibatch) cannot crowd out the others, and
every iteration still explores. This matters most for `history`, whose proposals all start from
the best prompt so far: several of its slots in one iteration mostly propose the same rewrite.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

ARMS: tuple[str, ...] = ("reflective", "history", "fewshot")
FIXED = ("reflective", "history", "fewshot", "random")
EXPLORATION = 0.5  # UCB1's exploration weight on rates normalised to [0, 1]
_TIE = 1e-12


@dataclass
class _Arm:
    chosen: int = 0  # slots given to this arm
    updates: int = 0  # results received
    calls: int = 0  # calls those results cost
    gain: float = 0.0  # improvement they brought (non-negative)

    @property
    def rate(self) -> float:
        return self.gain / max(1, self.calls)


@dataclass
class Bandit:
    """UCB1 over strategies (see the module docstring); deterministic given its state and the rng."""

    arms: dict[str, _Arm] = field(default_factory=lambda: {name: _Arm() for name in ARMS})

    def choose(self, rng: random.Random, exclude: frozenset[str] = frozenset()) -> str:
        """The arm for the next slot: an untried one first, else the highest upper bound (ties: rng).

        Arms in `exclude` are passed over while any other arm is left.
        """
        names = [n for n in self.arms if n not in exclude] or list(self.arms)
        untried = [n for n in names if self.arms[n].chosen == 0]
        if untried:
            pick = untried[rng.randrange(len(untried))]
        else:
            total = sum(a.chosen for a in self.arms.values())
            best_rate = max(self.arms[n].rate for n in names)
            scale = best_rate if best_rate > 0 else 1.0
            values = {
                n: self.arms[n].rate / scale
                + EXPLORATION * math.sqrt(2 * math.log(total) / self.arms[n].chosen)
                for n in names
            }
            top = max(values.values())
            tied = [n for n in names if values[n] >= top - _TIE]
            pick = tied[rng.randrange(len(tied))]
        self.arms[pick].chosen += 1
        return pick

    def update(self, arm: str, gain: float, calls: int) -> None:
        """Record what a candidate of `arm` brought (`gain` over its parent) and what it cost."""
        if arm not in self.arms:
            raise ValueError(f"unknown arm {arm!r}; known: {', '.join(self.arms)}")
        state = self.arms[arm]
        state.updates += 1
        state.calls += max(0, int(calls))
        state.gain += max(0.0, float(gain)) if math.isfinite(gain) else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy of the state."""
        return {
            "arms": {
                name: {"chosen": a.chosen, "updates": a.updates, "calls": a.calls, "gain": a.gain}
                for name, a in self.arms.items()
            }
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bandit:
        """The bandit `to_dict` described; missing arms start fresh. Raises ValueError on bad data."""
        raw = data.get("arms") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise ValueError("bandit state needs an 'arms' mapping")
        arms = {name: _Arm() for name in ARMS}
        for name, state in raw.items():
            if not isinstance(name, str) or not isinstance(state, dict):
                raise ValueError("bandit arms map names to state objects")
            try:
                arms[name] = _Arm(
                    chosen=int(state.get("chosen", 0)),
                    updates=int(state.get("updates", 0)),
                    calls=int(state.get("calls", 0)),
                    gain=float(state.get("gain", 0.0)),
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(f"bad state for arm {name!r}: {exc}") from None
        return cls(arms=arms)


def strategy_for(setting: str, index: int, bandit: Bandit | None, rng: random.Random) -> str:
    """The strategy of candidate slot `index`: a fixed setting is itself; `auto` asks the bandit.

    Without a bandit, `auto` cycles through ARMS by slot.
    """
    if setting in FIXED:
        return setting
    if setting != "auto":
        raise ValueError(f"unknown strategy setting {setting!r}")
    if bandit is None:
        return ARMS[index % len(ARMS)]
    return bandit.choose(rng)


def assign(setting: str, slots: int, bandit: Bandit | None, rng: random.Random) -> list[str]:
    """The strategies of one iteration's `slots` candidate slots (see the module docstring).

    A fixed setting fills every slot; `auto` asks the bandit slot by slot, passing over an arm
    once it holds half of the slots (rounded up), so each iteration tries at least two arms.
    """
    if setting != "auto" or bandit is None:
        return [strategy_for(setting, index, bandit, rng) for index in range(slots)]
    cap = max(1, math.ceil(slots / 2))
    chosen: list[str] = []
    for _ in range(slots):
        full = frozenset(arm for arm in bandit.arms if chosen.count(arm) >= cap)
        chosen.append(bandit.choose(rng, exclude=full))
    return chosen
