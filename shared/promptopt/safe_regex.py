"""User regular expressions, run only with RE2: linear time in the input, whatever the pattern.

Python's `re` backtracks, so a pattern like `^(a+)+$` on "aaaa…!" can hold a worker for minutes.
Every pattern a caller sends (the regex metric, JSON Schema `pattern`/`patternProperties`) goes
through `compile` here instead. RE2 has no backreferences or lookaround; such a pattern is refused
with `UnsafePatternError`, as is one longer than MAX_PATTERN_CHARS or one whose compiled program
would exceed MAX_PROGRAM_BYTES. `search` refuses subjects longer than MAX_SUBJECT_CHARS.

`re2` (the google-re2 package) is imported on first use: only functions that run user patterns
pay for it at cold start.
"""

from __future__ import annotations

import functools
from typing import Any

MAX_PATTERN_CHARS = 2_000
# After `{reference}` is substituted (an escaped reference of up to 20,000 characters doubles).
MAX_EXPANDED_PATTERN_CHARS = 50_000
MAX_SUBJECT_CHARS = 200_000
MAX_PROGRAM_BYTES = 8 << 20  # RE2's own default; stated so a bigger default never sneaks in


class UnsafePatternError(ValueError):
    """A pattern RE2 cannot run (syntax it lacks, too long, too large) or a subject too long."""


def escape(text: str) -> str:
    """`text` as a pattern that matches it literally (RE2 syntax)."""
    import re2

    return str(re2.escape(text))


def check(pattern: object, *, what: str = "pattern", max_chars: int = MAX_PATTERN_CHARS) -> str:
    """Raise UnsafePatternError unless `pattern` is a string RE2 compiles; returns it."""
    if not isinstance(pattern, str) or not pattern:
        raise UnsafePatternError(f"{what} must be a non-empty string")
    compile_pattern(pattern, max_chars=max_chars, what=what)
    return pattern


def compile_pattern(
    pattern: str, *, ignore_case: bool = False, max_chars: int = MAX_PATTERN_CHARS, what: str = "pattern"
) -> Any:
    """The RE2 program for `pattern` (cached); raises UnsafePatternError when RE2 refuses it."""
    if len(pattern) > max_chars:
        raise UnsafePatternError(f"{what} is longer than {max_chars} characters")
    return _compiled(pattern, ignore_case, what)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, ignore_case: bool, what: str) -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    options.max_mem = MAX_PROGRAM_BYTES
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        # RE2 quotes the offending fragment; keep only its first words so no user text is echoed.
        summary = str(reason).split(":", 1)[0][:80]
        raise UnsafePatternError(
            f"{what} is not valid RE2 syntax ({summary}); backreferences and lookaround are not supported"
        ) from None


def search(program: Any, subject: str) -> bool:
    """Whether `program` matches anywhere in `subject`."""
    if len(subject) > MAX_SUBJECT_CHARS:
        raise UnsafePatternError(f"the text is longer than {MAX_SUBJECT_CHARS} characters")
    return program.search(subject) is not None
