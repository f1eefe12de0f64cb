"""Aggregation queries (count, sum) read into a plain dict: one round trip, no documents read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def aggregate(
    query: Any, *, count: str | None = None, sums: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """Run `count()` (under alias `count`) and `sum(field)` (alias, field) over `query` (at most 5)."""
    from google.cloud.firestore_v1.aggregation import AggregationQuery
    from google.cloud.firestore_v1.collection import CollectionReference

    if isinstance(query, CollectionReference):
        query = query._query()  # the whole collection as a query
    aggregation: Any = AggregationQuery(query)
    if count is not None:
        aggregation.count(alias=count)
    for alias, field in sums:
        aggregation.sum(field, alias=alias)
    values: dict[str, Any] = {}
    for result in aggregation.get():
        for item in result:
            values[item.alias] = item.value
    return values
