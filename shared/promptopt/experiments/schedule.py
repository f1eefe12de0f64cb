"""Schedules: a five-field cron expression in an IANA time zone, and when it next fires (in UTC).

The next start is computed in the schedule's own zone (so `0 9 * * 1` stays 09:00 local across
daylight-saving changes) and stored in UTC, which is what the tick's query compares with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from promptopt.errors import InvalidRequest
from promptopt.experiments.models import Schedule

CRON_FIELDS = 5


def _invalid(detail: str) -> InvalidRequest:
    return InvalidRequest(detail, code="invalid_schedule")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; 400 invalid_schedule when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(f"time_zone {name[:64]!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def validate(schedule: Schedule) -> None:
    """400 invalid_schedule unless the cron has five valid fields and the time zone exists."""
    from croniter import croniter

    zone(schedule.time_zone)
    fields = schedule.cron.split()
    if len(fields) != CRON_FIELDS:
        raise _invalid(
            f"cron needs {CRON_FIELDS} fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    if not croniter.is_valid(schedule.cron):
        raise _invalid(f"cron {schedule.cron[:120]!r} is not a valid cron expression")
    _following(schedule, datetime.now(UTC))  # e.g. `0 0 31 2 *` parses but never fires


def _following(schedule: Schedule, after: datetime) -> datetime:
    from croniter import croniter

    local = after.astimezone(zone(schedule.time_zone))
    try:
        upcoming: datetime = croniter(schedule.cron, local).get_next(datetime)
    except ValueError:  # croniter's errors are ValueErrors: a date that never comes
        raise _invalid(f"cron {schedule.cron[:120]!r} never fires") from None
    return upcoming.astimezone(UTC)


def next_run_at(schedule: Schedule | None, *, after: datetime | None = None) -> datetime | None:
    """When an enabled schedule next fires after `after` (default: now), in UTC; None when off."""
    if schedule is None or not schedule.enabled:
        return None
    validate(schedule)
    return _following(schedule, after or datetime.now(UTC))
