"""The SIMULATOR's embeddings and grading (`sim:*`): offline, deterministic, not a language model.

- `embed_text`: a hashed bag of words. Text is casefolded and split into word tokens; each
  unigram (weight 1, common English function words 0.25) and each adjacent bigram (weight 0.5)
  is hashed (BLAKE2b) to one of 256 dimensions with a hashed sign, and the vector is L2-normalised.
  Texts sharing words are therefore close in cosine; texts sharing none are near 0. Empty text
  gives the zero vector.
- `grade`: answers a grading request, i.e. a prompt that holds `<reference>...</reference>` and
  `<response>...</response>` blocks and asks for a score. The score is the token F1 between the
  two blocks mapped linearly onto the scale (the schema's `score` minimum/maximum, else "from X
  to Y" in the prompt, else 1 to 5), so it rises with the response's overlap with the reference.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from typing import Any

from promptopt.llm.types import CompletionRequest

DIMENSIONS = 256
_TOKEN = re.compile(r"\w+")
_FUNCTION_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i", "in",
     "is", "it", "its", "of", "on", "or", "that", "the", "their", "this", "to", "was", "were", "will",
     "with", "you", "your"}
)  # fmt: skip
_BLOCK = {name: re.compile(rf"<{name}>\n?(.*?)\n?</{name}>", re.DOTALL) for name in ("reference", "response")}
_SCALE = re.compile(r"from (-?\d+)\D{0,40}? to (-?\d+)", re.IGNORECASE)


def tokens(text: str) -> list[str]:
    """Casefolded word tokens."""
    return _TOKEN.findall(text.casefold())


def embed_text(text: str) -> list[float]:
    """The simulator's 256-dimensional, L2-normalised embedding of one text."""
    vector = [0.0] * DIMENSIONS
    words = tokens(text)
    features = [(w, 0.25 if w in _FUNCTION_WORDS else 1.0) for w in words]
    features += [(f"{a} {b}", 0.5) for a, b in itertools.pairwise(words)]
    for feature, weight in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % DIMENSIONS
        vector[index] += weight if digest[4] & 1 else -weight
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def token_f1(response: str, reference: str) -> float:
    """Word-token F1 of a response against a reference (both empty: 1.0)."""
    pred, ref = tokens(response), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def grade(request: CompletionRequest) -> str | None:
    """A JSON `{"reason", "score"}` verdict when `request` is a grading request, else None."""
    blocks = {name: pattern.search(request.user_prompt) for name, pattern in _BLOCK.items()}
    prompt = f"{request.system_prompt}\n{request.user_prompt}"
    if blocks["reference"] is None or blocks["response"] is None or "score" not in prompt.casefold():
        return None
    low, high = _scale(request.response_schema, prompt)
    overlap = token_f1(_unescape(blocks["response"].group(1)), _unescape(blocks["reference"].group(1)))
    score = low + round(overlap * (high - low))
    reason = f"[simulated judge] word overlap with the reference: token F1 {overlap:.2f}"
    return json.dumps({"reason": reason, "score": score})


def _scale(schema: dict[str, Any] | None, prompt: str) -> tuple[int, int]:
    props = (schema or {}).get("properties") if isinstance(schema, dict) else None
    prop = props.get("score") if isinstance(props, dict) else None
    bounds = [prop.get(k) for k in ("minimum", "maximum")] if isinstance(prop, dict) else []
    numbers = [float(b) for b in bounds if isinstance(b, int | float) and math.isfinite(b)]
    if len(numbers) == 2:
        return int(numbers[0]), int(numbers[1])
    found = _SCALE.search(prompt)
    if found and int(found.group(1)) < int(found.group(2)):
        return int(found.group(1)), int(found.group(2))
    return 1, 5


def _unescape(text: str) -> str:
    # Graders escape closing tags inside the texts they quote (`<\/response>`).
    return text.replace("<\\/", "</")
