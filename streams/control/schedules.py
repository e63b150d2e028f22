"""Times and cron expressions of schedules, checked with errors that name their path.

Cron expressions are the classic five fields (minute hour day-of-month month day-of-week),
read by `croniter` and evaluated in the schedule's IANA time zone on **wall-clock** time:
"0 6 * * *" in Europe/Berlin runs at 06:00 local on every day, across DST changes. A local
time skipped by a spring-forward change runs at the same instant as the wall-clock time one
hour later (02:30 -> 03:30); a time repeated by a fall-back change runs once, at its first
occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ..errors import CommandError, field_error

__all__ = ["MAX_AT_MS", "CronSpec", "parse_at", "parse_cron", "parse_timezone"]


_ZONE_RE = re.compile(r"[A-Za-z0-9_+-]{1,30}(/[A-Za-z0-9_+-]{1,30}){0,2}")
"""The shape of an IANA time zone name ('America/Argentina/Buenos_Aires' is the longest kind)."""

MAX_AT_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant a schedule can name."""


def parse_timezone(name: Any, path: str = "timezone") -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise field_error(
            name,
            f"{path!r} must be an IANA time zone name such as 'Europe/Berlin' or 'UTC', "
            f"got {name!r}",
            path,
        )
    shown = name if len(name) <= 80 else f"{name[:80]}... ({len(name)} characters)"
    try:
        if not _ZONE_RE.fullmatch(name):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. a name too long
        raise CommandError(
            "bad_timezone",
            f"unknown time zone {shown!r} at {path}; expected an IANA name such as "
            "'Europe/Berlin', 'America/New_York' or 'UTC'",
            path,
        ) from None


class CronSpec:
    """A validated five-field cron expression in a time zone."""

    def __init__(self, expression: str, zone: ZoneInfo) -> None:
        self.expression = expression
        self.zone = zone

    def next_after(self, after_ms: int) -> int:
        """The first run strictly after `after_ms` (epoch ms)."""
        local = datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(self.zone)
        # iterate naive wall-clock times: croniter's own DST handling is off by an hour
        start = local.replace(tzinfo=None, microsecond=0)
        it = croniter(self.expression, start)
        for _ in range(1000):
            try:
                wall: datetime = it.get_next(datetime)
            except ValueError:  # CroniterBadDateError: no match within many years
                break
            moment = wall.replace(tzinfo=self.zone)
            # a wall time in a spring-forward gap: take the same time after the change
            if moment.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != wall:
                moment = (wall + timedelta(hours=1)).replace(tzinfo=self.zone)
            at = int(moment.timestamp() * 1000)
            if at > after_ms:
                return at
        raise CommandError(
            "bad_cron",
            f"cron {self.expression!r} never runs (e.g. the 31st of a 30-day month)",
            "cron",
        )


def parse_cron(expression: Any, zone: ZoneInfo, path: str = "cron") -> CronSpec:
    if not isinstance(expression, str) or not expression.strip():
        raise field_error(
            expression,
            f"{path!r} must be a cron expression string such as '0 6,12,18 * * *', "
            f"got {expression!r}",
            path,
        )
    fields = expression.split()
    if len(fields) != 5:
        raise CommandError(
            "bad_cron",
            f"cron {expression!r} at {path} has {len(fields)} fields; expected 5: "
            "minute hour day-of-month month day-of-week, e.g. '0 6,12,18 * * *'",
            path,
        )
    normal = " ".join(fields)
    try:
        croniter(normal, datetime(2000, 1, 1))
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            "bad_cron",
            f"invalid cron {expression!r} at {path}: {exc}; expected minute (0-59) hour (0-23) "
            "day-of-month (1-31) month (1-12) day-of-week (0-6), e.g. '0 6,12,18 * * *'",
            path,
        ) from None
    spec = CronSpec(normal, zone)
    spec.next_after(0)  # '0 0 31 2 *' parses but never runs
    return spec


def parse_at(raw: Any, path: str = "at") -> int:
    """Epoch milliseconds (int or digits) or an ISO-8601 time (UTC when no offset) -> ms."""
    if isinstance(raw, bool) or raw is None:
        raise field_error(
            raw,
            f"{path!r} must be epoch milliseconds or an ISO-8601 time such as "
            f"'2030-01-01T06:00:00+01:00', got {raw!r}",
            path,
        )
    at: int | None = None
    if isinstance(raw, int):
        at = raw
    elif isinstance(raw, str) and len(raw) <= 64:
        text = raw.strip()
        if re.fullmatch(r"[0-9]{1,16}", text):  # ASCII digits only: '²'.isdigit() is true
            at = int(text)
        else:
            try:
                moment = datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                at = int(moment.timestamp() * 1000)
            except (ValueError, OverflowError):
                pass
    if at is None:
        shown = raw if not isinstance(raw, str) or len(raw) <= 80 else f"{raw[:80]}..."
        raise CommandError(
            "invalid_value",
            f"{path}={shown!r} is neither epoch milliseconds nor an ISO-8601 time "
            "(e.g. '2030-01-01T06:00:00Z')",
            path,
        )
    if not 0 <= at <= MAX_AT_MS:
        raise CommandError(
            "invalid_value",
            f"{path}={at} is out of range; expected epoch milliseconds between 0 and "
            f"{MAX_AT_MS} (9999-12-31)",
            path,
        )
    return at
