"""Which experiments use a prompt: the lookup prompts' archive and delete consult before acting.

An experiment starts from `prompt.prompt_id`; one with a schedule (enabled or paused) is listed as
a schedule too, since that is what would start runs on the prompt later. An experiment being
deleted no longer counts.
"""

from __future__ import annotations

from typing import Any

from promptopt.experiments import paths

_LIMIT = 20  # enough to name them; the answer says how many more there are only up to this


def prompt_users(tenant: str, prompt_id: str) -> list[dict[str, Any]]:
    """The experiments (and schedules) of `tenant` that start from prompt `prompt_id`."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        paths.experiments(tenant)
        .where(filter=FieldFilter("prompt.prompt_id", "==", prompt_id))
        .select(["name", "schedule", "deleting"])
        .limit(_LIMIT)
    )
    used: list[dict[str, Any]] = []
    for snapshot in query.stream():
        data = snapshot.to_dict() or {}
        if data.get("deleting"):
            continue
        used.append({"kind": "experiment", "id": snapshot.id, "name": data.get("name")})
        schedule = data.get("schedule")
        if schedule:
            used.append(
                {
                    "kind": "schedule",
                    "id": snapshot.id,
                    "name": data.get("name"),
                    "cron": schedule.get("cron"),
                    "enabled": bool(schedule.get("enabled", True)),
                }
            )
    return used
