"""List orders shared by the list endpoints: `sort=created|updated|name`, `-` prefix for descending.

Every order ends on the resource's id field (the document id), so items with equal sort values
still come in one stable order and a page cursor (sort value, id) resumes exactly after the last
item. The sort is part of each list's page-token scope, so a token replayed with another sort is
refused. Firestore needs a composite index per (filter, sort, direction); Terraform derives them
from `firestore_sorted_lists` (terraform/modules/data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

Sort = Literal["created", "-created", "updated", "-updated", "name", "-name"]
TimeSort = Literal["created", "-created", "updated", "-updated"]  # for resources without a name
SORT_DESCRIPTION = "created, updated or name; a leading '-' sorts descending (default -created: newest first)"
TIME_SORT_DESCRIPTION = "created or updated; a leading '-' sorts descending (default -created: newest first)"
_TIMESTAMPS = {"created": "created_at", "updated": "updated_at"}


class Order(NamedTuple):
    """One list order: the document field sorted on, its direction and the id tiebreak."""

    key: str
    field: str
    descending: bool
    id_field: str

    def apply(self, query: Any) -> Any:
        """`query` ordered by the sort field, then the id, both in this order's direction."""
        from google.cloud.firestore import Query

        direction = Query.DESCENDING if self.descending else Query.ASCENDING
        return query.order_by(self.field, direction=direction).order_by(self.id_field, direction=direction)

    def cursor(self, data: dict[str, Any]) -> list[Any]:
        """The JSON cursor of the last item shown (its sort value and id)."""
        value = data.get(self.field)
        if isinstance(value, datetime):
            value = value.isoformat()
        return [value, data[self.id_field]]

    def start_after(self, query: Any, cursor: tuple[Any, str]) -> Any:
        """`query` resumed after `cursor` (as `parse` read it)."""
        return query.start_after({self.field: cursor[0], self.id_field: cursor[1]})

    def parse(self, values: list[Any], id_ok: Any) -> tuple[Any, str]:
        """A cursor from a page token, checked for shape; `id_ok(str) -> bool` checks the id."""
        value, item_id = values  # exactly two, else ValueError
        if not isinstance(item_id, str) or not id_ok(item_id):
            raise ValueError("malformed cursor")
        if self.key in _TIMESTAMPS:
            if not isinstance(value, str):
                raise ValueError("malformed cursor")
            return datetime.fromisoformat(value), item_id
        if value is not None and not isinstance(value, str):
            raise ValueError("malformed cursor")
        return value, item_id


def order(sort: str, *, id_field: str, name_field: str = "name") -> Order:
    """The order `sort` names for a collection whose id field is `id_field`."""
    key = sort.removeprefix("-")
    field = _TIMESTAMPS.get(key, name_field)
    return Order(key=key, field=field, descending=sort.startswith("-"), id_field=id_field)
