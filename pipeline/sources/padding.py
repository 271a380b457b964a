"""Temporal padding of composite products (paper 3.2), implemented once.

A composite (8-day LST/ET, 16-day NDVI, a daily product as a 1-day
"composite", yearly land cover) serves the days of its own period. When the
composite whose period holds a date is missing, the latest earlier composite
still serves the date if the date lies at most ``max_pad_days`` after the last
day of that composite's period. Beyond that the input is missing.

MODIS periods restart every 1 January: 8-day composites begin on DOY 1, 9,
17, ..., 361 (the last is 5 or 6 days long); 16-day ones on DOY 1, 17, ...,
353 (the last is 13 or 14 days long).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

YEARLY = 366
"""``period_days`` value meaning one composite per calendar year (starting 1 January)."""


@dataclass(frozen=True, slots=True)
class CompositeChoice:
    """The composite serving a date: its first day, length (days) and days past its end."""

    start: dt.date
    days: int
    days_stale: int


def composite_length(start: dt.date, period_days: int) -> int:
    """Days covered by the composite starting at ``start`` (shortened at year end)."""
    year_end = dt.date(start.year, 12, 31)
    if period_days >= YEARLY:
        return (year_end - dt.date(start.year, 1, 1)).days + 1
    return min(period_days, (year_end - start).days + 1)


def composite_start(day: dt.date, period_days: int) -> dt.date:
    """First day of the composite period that holds ``day`` (MODIS DOY grid)."""
    if period_days >= YEARLY:
        return dt.date(day.year, 1, 1)
    doy0 = day.timetuple().tm_yday - 1
    return dt.date(day.year, 1, 1) + dt.timedelta(days=(doy0 // period_days) * period_days)


def composite_starts(start: dt.date, end: dt.date, period_days: int) -> list[dt.date]:
    """Every composite start whose period overlaps [start, end], in order."""
    out: list[dt.date] = []
    s = composite_start(start, period_days)
    while s <= end:
        out.append(s)
        s = s + dt.timedelta(days=composite_length(s, period_days))
    return out


def choose_composite(
    day: dt.date,
    available: Iterable[dt.date],
    period_days: int,
    max_pad_days: int,
) -> CompositeChoice | None:
    """The composite that serves ``day`` given the available composite start dates.

    The composite whose period holds ``day`` wins (``days_stale`` 0); otherwise
    the latest earlier one whose period ended at most ``max_pad_days`` before
    ``day``; otherwise None. Starts after ``day`` never serve it.
    """
    starts = sorted(set(available))
    i = bisect.bisect_right(starts, day)
    # Walk back from the latest start <= day; the first usable one wins.
    for s in reversed(starts[:i]):
        n = composite_length(s, period_days)
        last = s + dt.timedelta(days=n - 1)
        if day <= last:
            return CompositeChoice(s, n, 0)
        stale = (day - last).days
        if stale <= max_pad_days:
            return CompositeChoice(s, n, stale)
        return None
    return None
