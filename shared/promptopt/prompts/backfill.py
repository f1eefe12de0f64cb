"""Backfill `archived: false` on prompt heads written before the flag existed.

Listings filter on `archived == false` (an indexed equality), and Firestore leaves documents that
lack a field out of such a query, so prompts stored by an earlier deployment would vanish from
lists. This walks every tenant's prompt heads in document-name order and sets the flag where it is
missing, in batched writes, each conditional on the head not having changed since it was read (an
archive landing in between is never undone). `updated_at` is left alone: nothing a user sees
changed.

The schedule tick runs it once per deployment, a bounded slice per tick: a done-marker under
`migrations/` keeps the cursor between ticks and says when the walk finished. Running it twice, or
two ticks at once, is harmless: a head that already carries the flag is not written again. By hand:
`scripts/backfill-prompts-archived` (or `python -m promptopt.prompts.backfill`) walks to the end.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.clients import firestore_client
from promptopt.prompts.service import COLLECTION

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

log = logging.getLogger(__name__)
MIGRATION = "prompts-archived-flag"
PAGE = 300  # heads read and written per batch (a batch holds at most 500 writes)
PER_TICK = 3000  # heads one tick walks at most; the next tick carries on from the cursor


@dataclass(frozen=True)
class Progress:
    """What one call walked: heads scanned, heads given the flag, where it stopped, whether it finished."""

    scanned: int = 0
    updated: int = 0
    cursor: str | None = None
    done: bool = False


def deployment() -> str:
    """The running deployment: Cloud Run's revision of this function, or "local" off the cloud."""
    return os.environ.get("K_REVISION") or "local"


def marker_ref(name: str | None = None) -> DocumentReference:
    """The done-marker of this deployment's backfill."""
    return firestore_client().collection("migrations").document(f"{MIGRATION}@{name or deployment()}")


def run_once(*, limit: int = PER_TICK, page: int = PAGE, name: str | None = None) -> Progress:
    """One bounded slice of this deployment's backfill, resumed from its marker; a no-op once done."""
    from google.api_core import exceptions as gexc

    marker = marker_ref(name)
    snapshot = marker.get()
    state = snapshot.to_dict() or {}
    if state.get("done"):
        return Progress(cursor=state.get("cursor"), done=True)
    progress = walk(start_after=state.get("cursor"), limit=limit, page=page)
    fields = {
        "cursor": progress.cursor,
        "done": progress.done,
        "scanned": state.get("scanned", 0) + progress.scanned,
        "updated": state.get("updated", 0) + progress.updated,
    }
    try:  # a concurrent tick walked the same slice: whichever records it first, the other is moot
        if snapshot.exists:
            marker.update(fields, option=marker._client.write_option(last_update_time=snapshot.update_time))
        else:
            marker.create(fields)
    except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict, gexc.Aborted):
        log.info("backfill marker %s moved on concurrently", marker.id)
    if progress.updated or progress.done:
        log.info(
            "prompts backfill: %d heads given archived=false; %s",
            progress.updated,
            "finished" if progress.done else f"continues after {progress.cursor}",
            extra={"fields": {"migration": MIGRATION, "updated": progress.updated}},
        )
    return progress


def walk(*, start_after: str | None = None, limit: int | None = None, page: int = PAGE) -> Progress:
    """Set the flag on heads that lack it, after document path `start_after`, at most `limit` heads."""
    from google.cloud.firestore_v1.field_path import FieldPath

    client = firestore_client()
    scanned = updated = 0
    cursor = start_after
    while limit is None or scanned < limit:
        size = page if limit is None else min(page, limit - scanned)
        q: Any = client.collection_group(COLLECTION).order_by(FieldPath.document_id()).select(["archived"])
        if cursor is not None:
            q = q.start_after({FieldPath.document_id(): client.document(cursor)})
        snapshots = list(q.limit(size).stream())
        updated += _flag_missing([s for s in snapshots if "archived" not in (s.to_dict() or {})])
        scanned += len(snapshots)
        if snapshots:
            cursor = snapshots[-1].reference.path
        if len(snapshots) < size:
            return Progress(scanned=scanned, updated=updated, cursor=cursor, done=True)
    return Progress(scanned=scanned, updated=updated, cursor=cursor, done=False)


def _flag_missing(snapshots: list[Any]) -> int:
    """Write the flag on these heads in one batch; head by head when one of them changed meanwhile."""
    from google.api_core import exceptions as gexc

    if not snapshots:
        return 0
    client = firestore_client()
    batch = client.batch()
    for s in snapshots:
        batch.update(
            s.reference, {"archived": False}, option=client.write_option(last_update_time=s.update_time)
        )
    try:
        batch.commit()
        return len(snapshots)
    except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted, gexc.Conflict):
        pass  # a head was archived, edited or deleted after it was read: decide each one afresh
    return sum(_flag_one(s.reference) for s in snapshots)


def _flag_one(ref: Any) -> int:
    from google.api_core import exceptions as gexc

    for _ in range(3):
        snapshot = ref.get(field_paths=["archived"])
        if not snapshot.exists or "archived" in (snapshot.to_dict() or {}):
            return 0
        option = ref._client.write_option(last_update_time=snapshot.update_time)
        try:
            ref.update({"archived": False}, option=option)
            return 1
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted, gexc.Conflict):
            continue
    log.warning("prompt head %s kept changing; the next backfill run sets its flag", ref.path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """By hand: walk every tenant's prompt heads to the end (against FIRESTORE_EMULATOR_HOST if set)."""
    parser = argparse.ArgumentParser(prog="backfill-prompts-archived", description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=int, default=PAGE, help="heads read and written per batch (<= 500)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    progress = walk(page=max(1, min(args.page, 500)))
    log.info("scanned %d prompt heads, gave %d of them archived=false", progress.scanned, progress.updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
