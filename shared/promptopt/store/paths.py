"""Tenant-scoped Firestore locations: the only way code reaches a collection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptopt.clients import firestore_client

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, DocumentReference


def tenant_doc(tenant: str) -> DocumentReference:
    """The tenant's root document (never written; it only scopes subcollections)."""
    return firestore_client().collection("tenants").document(tenant)


def tenant_collection(tenant: str, name: str) -> CollectionReference:
    """A top-level collection of one tenant, e.g. prompts."""
    return tenant_doc(tenant).collection(name)
