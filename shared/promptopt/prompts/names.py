"""Label names and version ids: the rules the models and the service share, without pydantic.

The service imports these on every prompt function's cold start; the models re-export them.
"""

from __future__ import annotations

import re

LABEL_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
# Names a reader could take for a selector rather than a label: GET /prompts/{id} without a
# selector means the latest version, and "vN" is how ETags name version N.
RESERVED_LABELS = frozenset({"latest", "head", "current", "version", "versions"})
_VERSION_LIKE = re.compile(r"^v\d+$")


def check_assignable_label(label: str) -> str:
    """Raise ValueError for a label name that is reserved (see RESERVED_LABELS); returns it."""
    if label in RESERVED_LABELS or _VERSION_LIKE.match(label):
        reserved = ", ".join(sorted(RESERVED_LABELS))
        raise ValueError(f"label names {reserved} and v<number> are reserved")
    return label


def version_id(prompt_id: str, version: int) -> str:
    """The id naming one version."""
    return f"{prompt_id}@{version}"
