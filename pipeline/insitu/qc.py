"""Quality-control bookkeeping and the site-level rules (CONUS outline, wetlands, depth).

Every rule reports how many readings (or days, files) it kept and dropped, in
the order the rules ran, so ``smdown insitu`` can print exactly what happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

# Contiguous United States as a lat/lon box (west, south, east, north), degrees WGS 84.
CONUS_BOUNDS: tuple[float, float, float, float] = (-125.0, 24.5, -66.9, 49.5)


def in_box(lat: float, lon: float, bounds: Sequence[float] = CONUS_BOUNDS) -> bool:
    """True when (lat, lon) in degrees lies inside ``bounds`` = (west, south, east, north)."""
    west, south, east, north = bounds
    return bool(
        np.isfinite(lat) and np.isfinite(lon) and south <= lat <= north and west <= lon <= east
    )


def in_conus(lat: float, lon: float, bounds: Sequence[float] = CONUS_BOUNDS) -> bool:
    """True when (lat, lon) lies inside the CONUS outline (``grids.conus``: the 48
    contiguous states and DC, US Census cartographic boundaries) and inside ``bounds``
    (``insitu.conus_bounds``, a box that can only narrow the outline)."""
    from grids.conus import in_conus as in_outline

    return in_box(lat, lon, bounds) and bool(in_outline(lat, lon))


def is_wetland(
    site_id: str, station: str, igbp: str | None, sites: Iterable[str], igbp_classes: Iterable[str]
) -> bool:
    """A wetland / permanently inundated site: IGBP class listed, or the site named in the list."""
    names = {s.strip().upper() for s in sites}
    if site_id.upper() in names or station.upper() in names:
        return True
    return igbp is not None and igbp.strip().upper() in {c.strip().upper() for c in igbp_classes}


class QCStep(NamedTuple):
    """One rule's outcome: ``(rule, kept, dropped)`` first, then its network and unit."""

    rule: str
    kept: int
    dropped: int
    network: str
    unit: str = "readings"


class SkippedFile(NamedTuple):
    """A file that was not used, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class QCReport:
    """Counts per rule in the order applied, files skipped, and per-site notes."""

    steps: tuple[QCStep, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    notes: tuple[str, ...] = ()

    def step(self, network: str, rule: str) -> QCStep:
        """The step of ``rule`` for ``network`` (KeyError when absent)."""
        for s in self.steps:
            if s.network == network and s.rule == rule:
                return s
        raise KeyError(f"{network}: {rule}")

    def table(self) -> str:
        """A plain-text table: network, rule, kept, dropped, unit."""
        rows = [("network", "rule", "kept", "dropped", "unit")]
        rows += [(s.network, s.rule, str(s.kept), str(s.dropped), s.unit) for s in self.steps]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for r in rows:
            cells = [
                r[i].rjust(widths[i]) if i in (2, 3) else r[i].ljust(widths[i]) for i in range(5)
            ]
            lines.append("  ".join(cells).rstrip())
        if self.skipped:
            lines.append(f"skipped files ({len(self.skipped)}):")
            lines += [f"  {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written beside the Parquet files)."""
        return {
            "steps": [s._asdict() for s in self.steps],
            "skipped": [s._asdict() for s in self.skipped],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QCReport:
        """Inverse of ``to_dict``."""
        return cls(
            steps=tuple(QCStep(**s) for s in data.get("steps", [])),
            skipped=tuple(SkippedFile(**s) for s in data.get("skipped", [])),
            notes=tuple(data.get("notes", [])),
        )


@dataclass
class QCCounter:
    """Accumulates counts per (network, rule) keeping the first-seen order."""

    _counts: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def declare(self, network: str, rules: Iterable[tuple[str, str]]) -> None:
        """Fix the print order of a network's rules (rule, unit) before any count arrives."""
        for rule, unit in rules:
            self._counts.setdefault((network, rule), [0, 0, unit])

    def add(self, network: str, rule: str, kept: int, dropped: int, unit: str = "readings") -> None:
        """Add counts to a rule."""
        entry = self._counts.setdefault((network, rule), [0, 0, unit])
        entry[0] += int(kept)
        entry[1] += int(dropped)

    def skip(self, path: object, reason: str) -> None:
        """Record a file that was not used."""
        self.skipped.append(SkippedFile(str(path), reason))

    def report(self) -> QCReport:
        """The frozen report."""
        steps = tuple(QCStep(r, k, d, n, u) for (n, r), (k, d, u) in self._counts.items())
        return QCReport(steps, tuple(self.skipped), tuple(self.notes))
