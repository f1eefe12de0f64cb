"""Validated candidates become immutable prompt versions with their parent and provenance.

A version is looked up by its candidate key (`run_id/candidate_id`) before it is created, so a
repeated effect (a redelivered step, a crash between creating the version and recording it)
never makes a second version of one candidate.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from promptopt.experiments import paths
from promptopt.experiments.jobs import run_principal

if TYPE_CHECKING:
    from promptopt.experiments.engine import Run

log = logging.getLogger(__name__)
_ATTEMPTS = 5


def _existing(run: Run, key: str) -> int | None:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.prompts.service import COLLECTION
    from promptopt.store.paths import tenant_collection

    versions = (
        tenant_collection(run.tenant, COLLECTION).document(run.config["prompt_id"]).collection("versions")
    )
    query = versions.where(filter=FieldFilter("provenance.details.candidate_key", "==", key)).limit(1)
    for snapshot in query.stream():
        return int((snapshot.to_dict() or {})["version"])
    return None


def ensure(run: Run, cid: str) -> int:
    """The prompt version of candidate `cid`, created if it does not exist yet."""
    from promptopt.errors import PreconditionFailed
    from promptopt.prompts import service as prompts
    from promptopt.prompts.models import PromptUpdate, Provenance

    key = f"{run.run_id}/{cid}"
    found = _existing(run, key)
    if found is not None:
        return found
    cands: dict[str, Any] = run.state.get("cands") or {}
    entry = cands.get(cid) or {}
    doc = paths.candidates(run.ref).document(cid).get().to_dict() or {}
    parent = entry.get("parent")
    parent_version = (cands.get(parent) or {}).get("version") if parent else None
    accept = entry.get("accept") or {}
    provenance = Provenance(
        source="optimizer",
        message=(
            f"experiment {run.experiment_id} run {run.run_id} iteration {entry.get('iteration')} "
            f"({entry.get('strategy')})"
        ),
        details={
            "experiment_id": run.experiment_id,
            "run_id": run.run_id,
            "candidate": cid,
            "candidate_key": key,
            "iteration": entry.get("iteration"),
            "strategy": entry.get("strategy"),
            "parent_candidate": parent,
            "critique": str(doc.get("critique") or "")[:2000],
            "shown_rows": list(doc.get("shown_rows") or [])[:50],
            "rung_means": entry.get("rung_means") or [],
            "validation_mean": accept.get("mean"),
            "validation_ci": [accept.get("ci_low"), accept.get("ci_high")],
            "lift": entry.get("lift"),
        },
    )
    body = PromptUpdate(
        system_prompt=str(doc.get("system_prompt") or ""),
        output_prompt=str(doc.get("output_prompt") or ""),
        message=provenance.message,
    )
    for _ in range(_ATTEMPTS):
        try:
            created = prompts.update_prompt(
                principal=run_principal(run.tenant, run.experiment_id),
                prompt_id=run.config["prompt_id"],
                if_match=None,
                body=body,
                provenance=provenance,
                parent=int(parent_version) if parent_version is not None else None,
            )
            return created.version
        except PreconditionFailed:  # someone else added a version meanwhile: base on the new latest
            continue
    raise RuntimeError(f"could not add a version for {key} under contention")


def promote(run: Run, cid: str, label: str) -> None:
    """Point `label` at the candidate's version (idempotent)."""
    from promptopt.prompts import service as prompts

    version = (run.state.get("cands") or {}).get(cid, {}).get("version") or ensure(run, cid)
    prompts.set_label(
        principal=run_principal(run.tenant, run.experiment_id),
        prompt_id=run.config["prompt_id"],
        label=label,
        version=int(version),
    )
    log.info("run %s promoted %s to version %s", run.run_id, label, version)
