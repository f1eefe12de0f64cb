"""Model ids (`gemini:<model>`, `openai:<model>`, `sim:<name>`) to providers.

`sim:optimizer` is the simulated optimizer model (promptopt.llm.sim.optimizer), which answers the
optimizer's proposal requests; every other `sim:<name>` is the simulated target model.
"""

from __future__ import annotations

import re
import threading
from typing import NamedTuple

from promptopt.config import settings
from promptopt.llm.types import ModelConfigError, Provider

PROVIDERS = ("gemini", "openai", "sim")
LOCAL_DEFAULT_MODEL = "sim:default"
_ID = re.compile(r"^(?P<provider>[a-z]+):(?P<name>[A-Za-z0-9][A-Za-z0-9._@/-]{0,127})$")

_lock = threading.Lock()
_providers: dict[str, Provider] = {}


class ModelId(NamedTuple):
    """A parsed model id."""

    provider: str
    name: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


def default_model() -> str:
    """The model used when a request names none: `PROMPTOPT_DEFAULT_MODEL`, else `sim:default`."""
    return settings().default_model.strip() or LOCAL_DEFAULT_MODEL


def parse_model_id(model_id: str) -> ModelId:
    """Split and validate `<provider>:<name>`; raises ModelConfigError."""
    match = _ID.match(model_id.strip())
    if not match:
        raise ModelConfigError(f"invalid model id {model_id!r}; expected e.g. gemini:gemini-2.5-flash")
    provider = match["provider"]
    if provider not in PROVIDERS:
        raise ModelConfigError(f"unknown model provider {provider!r}; known: {', '.join(PROVIDERS)}")
    return ModelId(provider, match["name"])


def provider(model_id: str) -> Provider:
    """The (cached, env-configured) provider for a model id; imports only the SDK it needs."""
    parsed = parse_model_id(model_id)
    key = str(parsed)
    found = _providers.get(key)
    if found is None:
        with _lock:
            found = _providers.get(key)
            if found is None:
                found = _make(parsed)
                _providers[key] = found
    return found


def _make(parsed: ModelId) -> Provider:
    if parsed.provider == "gemini":
        from promptopt.llm.gemini import GeminiProvider

        return GeminiProvider(parsed.name)
    if parsed.provider == "openai":
        from promptopt.llm.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(parsed.name)
    if parsed.name.split("@")[0] == "optimizer":  # the simulated optimizer model (`@<n>ms`: it waits)
        from promptopt.llm.sim.optimizer import SimOptimizer

        return SimOptimizer(parsed.name)
    from promptopt.llm.sim.provider import SimProvider

    return SimProvider(parsed.name)


def reset() -> None:
    """Forget cached providers (tests change the environment)."""
    with _lock:
        _providers.clear()
