"""The latent prompt features the SIMULATED model (`promptopt.llm.sim.provider`) reacts to.

`read_features(instructions)` reads what a prompt asks for from its instruction text (the prompt
without the problem being asked), tolerantly: every feature has several phrasings, so a
paraphrase works and no single magic string is needed. `promptopt.llm.sim.landscape` turns the
features into how often the simulator follows the format and how often it is right.

- format: an answer-only format (a stated word pair, the option letter, the number alone),
  read by `promptopt.llm.sim.style`; two different ones at once are a conflict;
- delimiter: a marked final answer ("####", "final answer", "end with ...", "on the last line",
  "then answer ...", "after your reasoning, give ...");
- reasoning: "step by step", "think", "reason through", "work through", "break it down", ...;
- brevity: "be concise", "keep it short", "no preamble", "nothing else", "one word", ...;
- role: "You are a ...", "Act as ...", "As an expert ...";
- rule: a conditional or attention sentence ("if ...", "when ...", "pay attention to ...",
  "watch out for ...", "make sure ...") and the topics it names (negation, truth, direction,
  quantity; "ambiguous"/"unsure" is a generic rule);
- demos: worked examples before the question (earlier "Question:"/"Q:" blocks with an answer);
- verbose (a distractor): "explain in detail", "be thorough", "elaborate", "justify", ...
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from promptopt.llm.sim.style import read_style

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_DELIMITER = re.compile(
    r"####|final answer|\blast line\b|\bon (?:its|a) (?:own|separate|final) line\b"
    r"|\b(?:end|finish|conclude|close)(?:s|ing)? (?:your \w+ |the \w+ )?(?:with|by)\b"
    r"|\bthen (?:give|state|write|answer|reply|respond|output|say)\b"
    r"|\bafter (?:your|the|you)\b[^.\n]{0,30}\b(?:give|state|write|answer)\b"
    r"|\banswer (?:line|tag)\b|\bmark (?:your|the) answer\b"
)
_REASONING = re.compile(
    r"step[\s-]by[\s-]step|\bthink(?:ing)?\b|\breason(?:ing)? (?:carefully|through|about|it|out)\b"
    r"|\bwork (?:it |this |the problem )?(?:through|out)\b|\bbreak (?:it|this|the problem) down\b"
    r"|\bbreak down\b|\bone (?:part|step) at a time\b|\bshow your (?:work|reasoning)\b"
    r"|\bchain of thought\b|\bwalk through\b"
)
_BREVITY = re.compile(
    r"\bconcise\b|\bbrief(?:ly)?\b|\bshort\b|\bno preamble\b|\bnothing else\b|\bterse\b"
    r"|\b(?:do not|don't|never|no) (?:add |give |include )?(?:any )?explanations?\b|\bwithout explanation"
    r"|\b(?:do not|don't) explain\b|\bone word\b|\bsingle word\b|\bonly the answer\b|\banswer alone\b"
    r"|\bno extra (?:text|words)\b"
)
_VERBOSE = re.compile(
    r"\bin (?:full |great )?detail\b|\bdetailed\b|\belaborat\w*|\bthorough(?:ly)?\b"
    r"|\bexplain (?:your|why|the|each|how|it)\b|\bjustify\b|\bat length\b|\bfull explanation\b"
    r"|\bexplain\w* (?:fully|everything)\b"
)
_NEGATED = re.compile(r"\b(?:do not|don't|never|no|without)\s+\w*\s*$")
_ROLE = re.compile(r"\byou are (?:a|an|the)\b|\bact as\b|\bas an? (?:expert|specialist)\b|\byour role\b")
_RULE_CUE = re.compile(
    r"\b(?:if|when|whenever|unless|careful|attention|watch out|beware|note that|remember"
    r"|make sure|double-check|edge case|tricky|keep track)\b"
)
TOPICS: dict[str, re.Pattern[str]] = {
    "negation": re.compile(r"\bnegat\w*|\bnot\b|'not'|\bnots\b"),
    "truth": re.compile(r"\blie\w*|\bliar\w*|\btruth\w*|\beach (?:claim|statement|speaker)\b"),
    "direction": re.compile(r"\bturn\w*|\bdirections?\b|\bfacing\b|\borientation\b|\bbackwards?\b"),
    "quantity": re.compile(
        r"\bquantit\w*|\bplurals?\b|\bnumber words?\b|\bhow many of each\b|\bkind\b|\bcategor\w*"
    ),
    "generic": re.compile(r"\bambiguous\b|\bunsure\b|\buncertain\b|\bunclear\b|\bnot sure\b"),
}
_MARKER = re.compile(r"(?:^|\n)\s*(?:question|q)\s*:", re.IGNORECASE)
_ANSWER = re.compile(r"(?:^|\n)\s*(?:answer|a)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Features:
    """What a prompt's instructions ask for (see the module docstring)."""

    format: bool = False
    conflict: bool = False
    delimiter: bool = False
    reasoning: bool = False
    brevity: bool = False
    role: bool = False
    rule_topics: frozenset[str] = frozenset()
    demos: int = 0
    verbose: bool = False
    phrasing: str = ""  # the matched phrasings, joined: near-identical prompts share it

    def rule_for(self, topic: str) -> float:
        """How well a stated rule covers `topic`: 1 for that topic, 0.25 for a generic one, else 0."""
        if topic in self.rule_topics:
            return 1.0
        return 0.25 if self.rule_topics else 0.0

    def names(self) -> list[str]:
        """The features present, by name (for reports)."""
        found = [n for n in ("format", "delimiter", "reasoning", "brevity", "role") if getattr(self, n)]
        if self.rule_topics:
            found.append("rule(" + ",".join(sorted(self.rule_topics)) + ")")
        if self.demos:
            found.append("demos")
        found += [n for n in ("verbose", "conflict") if getattr(self, n)]
        return found


def instructions(system_prompt: str, user_prompt: str) -> tuple[str, int]:
    """The instruction text of a prompt (the asked problem cut out) and how many demos precede it.

    The problem is what follows the last "Question:"/"Q:" marker (else the whole user prompt);
    earlier marked blocks that carry an answer are demonstrations, cut out so their content is
    never read as an instruction. Of the rest, the system prompt is kept whole and the user
    prompt sentence by sentence where a sentence states something a feature reads (the problem
    sentences of the task families carry none of those cues).
    """
    markers = list(_MARKER.finditer(user_prompt))
    demos = sum(1 for a, b in itertools.pairwise(markers) if _ANSWER.search(user_prompt[a.end() : b.start()]))
    if markers:
        user = user_prompt[: markers[0].start()] + "\n" + user_prompt[markers[-1].end() :]
    else:
        user = user_prompt
    kept = [s.strip() for line in user.splitlines() for s in _SENTENCE.findall(line) if _is_instruction(s)]
    return "\n".join((system_prompt, *kept)), demos


def _is_instruction(sentence: str) -> bool:
    text = sentence.casefold()
    if any(p.search(text) for p in (_DELIMITER, _REASONING, _BREVITY, _VERBOSE, _ROLE, _RULE_CUE)):
        return True
    style = read_style(sentence)
    return bool(style.words or style.letter or style.number_only)


def read_features(text: str, demos: int = 0) -> Features:
    """The features stated in instruction `text` (see `instructions`), casefolded before matching."""
    folded = text.casefold()
    style = read_style(text)
    formats = len(style.words) + int(style.letter) + int(style.number_only)
    matched: list[str] = []
    verbose = False
    for m in _VERBOSE.finditer(folded):
        if not _NEGATED.search(folded[max(0, m.start() - 20) : m.start()]):
            verbose = True
            matched.append(m.group(0))
    topics: set[str] = set()
    for sentence in _SENTENCE.findall(folded):
        if _RULE_CUE.search(sentence):
            for topic, pattern in TOPICS.items():
                if pattern.search(sentence):
                    topics.add(topic)
                    matched.append(sentence.strip())
    flags = {}
    for name, pattern in (
        ("delimiter", _DELIMITER),
        ("reasoning", _REASONING),
        ("brevity", _BREVITY),
        ("role", _ROLE),
    ):
        found = pattern.findall(folded)
        flags[name] = bool(found)
        matched += [str(f) for f in found]
    return Features(
        format=formats > 0,
        conflict=formats > 1,
        delimiter=flags["delimiter"],
        reasoning=flags["reasoning"],
        brevity=flags["brevity"],
        role=flags["role"],
        rule_topics=frozenset(topics),
        demos=demos,
        verbose=verbose,
        phrasing="|".join(sorted(matched)),
    )
