"""promptopt: prompt versioning, evaluation and optimization on Google Cloud.

`from promptopt import Client` gives the Python client (`promptopt.client`). It is imported only
when asked for: every deployed function imports this package, and their cold start must not pay
for the client (which no function bundles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt import startup

startup.pause_if_configured()  # deployed functions only: see promptopt.startup

if TYPE_CHECKING:
    from promptopt.client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from promptopt.client import Client

        return Client
    raise AttributeError(f"module 'promptopt' has no attribute {name!r}")
