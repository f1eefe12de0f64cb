"""Prompt templates: `{name}` placeholders in str.format syntax, `{{`/`}}` for literal braces."""

from __future__ import annotations

import re
import string

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class TemplateError(ValueError):
    """The template cannot be rendered safely."""


def placeholders(template: str) -> list[str]:
    """The distinct placeholder names, in order of first use; raises TemplateError if malformed.

    Only plain names are allowed: attribute access, indexing, conversions and format specs
    (`{x.y}`, `{x[0]}`, `{x!r}`, `{x:>10}`) are refused so rendering can never reach into objects.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "":
            raise TemplateError("empty placeholder {} (name it, e.g. {input})")
        if not _IDENT.match(field):
            # Not echoed: what stands between the braces may be prompt text, not a name.
            raise TemplateError(
                "a placeholder is not a plain name (letters, digits and _, at most 64, e.g. {input})"
            )
        if spec or conversion:
            raise TemplateError(f"placeholder {{{field}}} may not carry a conversion or format spec")
        if field not in names:
            names.append(field)
    return names


def render(template: str, variables: dict[str, str]) -> str:
    """Fill the placeholders; every placeholder must be supplied."""
    missing = [name for name in placeholders(template) if name not in variables]
    if missing:
        raise TemplateError(f"missing template variables: {', '.join(missing)}")
    return template.format(**{k: variables[k] for k in placeholders(template)})
