"""Archiving and deleting prompts, refused while something still uses the prompt.

A prompt is *in use* while
- a label points at one of its versions (every stored label was set by someone, e.g. `production`,
  for something to read; `latest` is implicit and never stored, so it never counts), or
- an experiment starts from it (its `prompt.prompt_id`), scheduled or not: a scheduled one would
  start runs on it, and any experiment's runs and candidates name its versions.
Labels are checked here; experiments are found by the `users` lookup the caller passes in (the
experiments domain sits above prompts and knows where experiments live). Both answers are a 409
`prompt_in_use` whose body lists what uses the prompt (`used_by`).

Archiving hides the prompt from listings and keeps everything readable; unarchiving undoes it.
Deleting marks the head `deleting` first, so reads and new experiments see it as gone while the
check runs (an experiment created in that instant finds a 404), then removes the versions in
batched deletes and the head last: a repeated DELETE after a crash finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from promptopt.auth import Principal
from promptopt.errors import Conflict, NotFound
from promptopt.prompts.service import PROMPT_ID_RE, head_ref, head_snapshot, summary_from

log = logging.getLogger(__name__)

# (tenant, prompt_id) -> what uses the prompt besides its labels, e.g.
# [{"kind": "experiment", "id": "ex_…", "name": "nightly"}, {"kind": "schedule", "id": "ex_…", …}]
UsersLookup = Callable[[str, str], list[dict[str, Any]]]
_DELETE_BATCH = 400  # under Firestore's 500 writes per batch


def _label_users(data: dict[str, Any]) -> list[dict[str, Any]]:
    labels: dict[str, int] = data.get("labels") or {}
    return [{"kind": "label", "name": name, "version": labels[name]} for name in sorted(labels)]


def _describe(use: dict[str, Any]) -> str:
    if use["kind"] == "label":
        return f"label {use['name']!r} (v{use['version']})"
    what = "the schedule of experiment" if use["kind"] == "schedule" else "experiment"
    name = f" ({use['name']!r})" if use.get("name") else ""
    return f"{what} {use['id']}{name}"


def _refuse(prompt_id: str, action: str, used_by: list[dict[str, Any]]) -> Conflict:
    listed = ", ".join(_describe(u) for u in used_by[:5])
    more = f" and {len(used_by) - 5} more" if len(used_by) > 5 else ""
    return Conflict(
        f"prompt {prompt_id} cannot be {action}: it is still used by {listed}{more}; "
        "remove the labels (DELETE .../labels/{label}) and delete those experiments first",
        code="prompt_in_use",
        used_by=used_by,
    )


def archive_prompt(*, principal: Principal, prompt_id: str, users: UsersLookup) -> dict[str, Any]:
    """Hide the prompt from listings (409 while in use); archiving an archived prompt is a no-op."""
    head = head_snapshot(principal, prompt_id)
    data = head.to_dict() or {}
    if not data.get("archived"):
        used_by = _label_users(data) + users(principal.tenant, prompt_id)
        if used_by:
            raise _refuse(prompt_id, "archived", used_by)
        now = datetime.now(UTC)
        head.reference.update({"archived": True, "archived_at": now, "updated_at": now})
        log.info("prompt %s archived", prompt_id, extra={"fields": {"prompt_id": prompt_id}})
    return summary_from(head.reference.get())


def unarchive_prompt(*, principal: Principal, prompt_id: str) -> dict[str, Any]:
    """Show the prompt in listings again (a no-op for a prompt that is not archived)."""
    head = head_snapshot(principal, prompt_id)
    if (head.to_dict() or {}).get("archived") is not False:  # True, or a head from before the flag
        head.reference.update({"archived": False, "archived_at": None, "updated_at": datetime.now(UTC)})
    return summary_from(head.reference.get())


def delete_prompt(*, principal: Principal, prompt_id: str, users: UsersLookup) -> None:
    """Delete the prompt with every version and label (409 while in use, 404 once gone)."""
    from google.cloud.firestore_v1.field_path import FieldPath

    if not PROMPT_ID_RE.fullmatch(prompt_id):
        raise NotFound(f"prompt {prompt_id[:40]} not found", code="prompt_not_found")
    ref = head_ref(principal.tenant, prompt_id)
    snapshot = ref.get()
    data = snapshot.to_dict() or {}
    if not snapshot.exists:
        raise NotFound(f"prompt {prompt_id} not found", code="prompt_not_found")
    if not data.get("deleting"):  # a deletion cut short earlier was already checked: finish it
        ref.update({"deleting": True})
        used_by = _label_users(data) + users(principal.tenant, prompt_id)
        if used_by:
            ref.update({"deleting": False})
            raise _refuse(prompt_id, "deleted", used_by)
    client = ref._client
    versions = ref.collection("versions")
    removed = 0
    while True:
        page = list(versions.order_by(FieldPath.document_id()).select([]).limit(_DELETE_BATCH).stream())
        if not page:
            break
        batch = client.batch()
        for version in page:
            batch.delete(version.reference)
        batch.commit()
        removed += len(page)
    ref.delete()  # the head last, with the labels it holds: nothing is left pointing anywhere
    log.info("prompt %s deleted", prompt_id, extra={"fields": {"prompt_id": prompt_id, "versions": removed}})
