"""Where an experiment's documents live, and their ids.

    tenants/{t}/experiments/{experiment_id}          the experiment: settings, schedule, latest run
        runs/{run_id}                                one run: status, step, usage, state of the search
            candidates/{candidate_id}                one proposed prompt: text, provenance, scores
            events/{event_id}                        what happened (steps, retries, sweeps, rejections)
            claims/propose-{NNN}                     which delivery makes an iteration's optimizer calls

Runs are read by id and listed per experiment; the schedule tick finds due experiments with a
collection-group query on `next_run_at`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, DocumentReference

EXPERIMENTS = "experiments"
EXPERIMENT_ID_RE = re.compile(r"^ex_[0-9a-f]{20}$")
RUN_ID_RE = re.compile(r"^run_[0-9a-f]{20}$")
CANDIDATE_ID_RE = re.compile(r"^c[0-9]{3}_[0-9]{2}$")


def new_experiment_id() -> str:
    """A random experiment id."""
    return "ex_" + secrets.token_hex(10)


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic id from its parts (idempotency keys, scheduled slots)."""
    return prefix + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def scheduled_run_id(experiment_id: str, slot: datetime) -> str:
    """The one run id of an experiment's scheduled slot: a duplicated or late tick finds the same run."""
    return derived_id("run_", experiment_id, slot.isoformat())


def candidate_id(iteration: int, index: int) -> str:
    """Candidate `index` of `iteration` (c000_00 is the baseline)."""
    return f"c{iteration:03d}_{index:02d}"


def experiments(tenant: str) -> CollectionReference:
    """The tenant's experiments."""
    return tenant_collection(tenant, EXPERIMENTS)


def experiment_ref(tenant: str, experiment_id: str) -> DocumentReference:
    """One experiment."""
    return experiments(tenant).document(experiment_id)


def runs(tenant: str, experiment_id: str) -> CollectionReference:
    """An experiment's runs."""
    return experiment_ref(tenant, experiment_id).collection("runs")


def run_ref(tenant: str, experiment_id: str, run_id: str) -> DocumentReference:
    """One run."""
    return runs(tenant, experiment_id).document(run_id)


def candidates(run: DocumentReference) -> CollectionReference:
    """A run's candidates."""
    return run.collection("candidates")


def events(run: DocumentReference) -> CollectionReference:
    """A run's events."""
    return run.collection("events")
