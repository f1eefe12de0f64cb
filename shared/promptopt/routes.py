"""Route paths: `{name}` matches one segment; `{name=**}` (API Gateway's double wildcard) any rest."""

from __future__ import annotations

import functools
import re

PATH_PARAM_RE = re.compile(r"\{([a-z_][a-z0-9_]*)(=\*\*)?\}")


def path_params(path: str) -> list[str]:
    """Names of the `{placeholders}` in a route path, in order."""
    return [name for name, _ in PATH_PARAM_RE.findall(path)]


@functools.cache  # a route's regex is built once per process, however often it is matched
def path_regex(path: str) -> re.Pattern[str]:
    """A regex matching concrete paths of the route `path`, capturing each parameter."""
    pattern = PATH_PARAM_RE.sub(
        lambda m: f"(?P<{m.group(1)}>{'.*' if m.group(2) else '[^/]+'})",
        re.escape(path).replace(r"\{", "{").replace(r"\}", "}").replace(r"\*", "*"),
    )
    return re.compile(f"^{pattern}$")
