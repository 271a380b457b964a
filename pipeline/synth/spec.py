"""What a synthetic world is: region, period, seed and station counts (a frozen value)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from grids import Grid
from models.variables import DEFAULT_FAMILY, FAMILIES
from pipeline.errors import SmdownError

# The conus-90m lattice: EPSG:4326, 3 arc-seconds, edges on multiples of 1/1200 degree.
PIXELS_PER_DEGREE = 1200
PIXEL_DEG = 1.0 / PIXELS_PER_DEGREE

DEFAULT_REGION: tuple[float, float, float, float] = (-98.5, 34.5, -96.5, 36.5)
DEFAULT_START = dt.date(2020, 4, 1)
DEFAULT_DAYS = 90


class SynthError(SmdownError):
    """A synthetic-world request is invalid (names the field or window at fault)."""


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """A synthetic world: region (west, south, east, north, degrees), inclusive period, seed.

    ``margin_deg`` widens the simulated domain around the region so that
    mosaics cropped "plus a margin" and the 9 km SMAP cells on the region's
    edge are complete. ``spinup_days`` is the soil-water model's look-back:
    the state of any day depends only on the rain of the previous
    ``spinup_days`` days, so any day can be generated on its own.
    """

    region: tuple[float, float, float, float] = DEFAULT_REGION
    start: dt.date = DEFAULT_START
    end: dt.date = DEFAULT_START + dt.timedelta(days=DEFAULT_DAYS - 1)
    seed: int = 0
    n_stations: int = 100
    n_ameriflux: int = 8
    margin_deg: float = 0.1
    spinup_days: int = 45
    smap_crid: str = "R19240"
    smap_old_crid: str = "R18290"
    # Mean rain relative to the default climate (1.0: the demo world's, bit for bit).
    rain_factor: float = 1.0
    # Product family of NDVI/LST/ET files (models.variables.FAMILIES), each in its format.
    family: str = DEFAULT_FAMILY

    def __post_init__(self) -> None:
        region = tuple(float(v) for v in self.region)
        if len(region) != 4 or not all(math.isfinite(v) for v in region):
            raise SynthError(
                f"region: need 4 finite numbers (west, south, east, north), got {self.region!r}"
            )
        w, s, e, n = region
        if not (-180.0 <= w < e <= 180.0 and -60.0 <= s < n <= 60.0):
            raise SynthError(
                f"region: {self.region!r} must satisfy -180<=west<east<=180, -60<=south<north<=60"
            )
        object.__setattr__(self, "region", region)
        if not isinstance(self.start, dt.date) or not isinstance(self.end, dt.date):
            raise SynthError("start/end: must be dates")
        if self.end < self.start:
            raise SynthError(f"end: {self.end} is before start {self.start}")
        if self.n_stations < 0 or self.n_ameriflux < 0:
            raise SynthError("n_stations/n_ameriflux: must be >= 0")
        if not 0.0 <= self.margin_deg <= 2.0:
            raise SynthError(f"margin_deg: {self.margin_deg} outside [0, 2] degrees")
        if self.spinup_days < 1:
            raise SynthError("spinup_days: must be >= 1")
        if not (math.isfinite(self.rain_factor) and 0.2 <= self.rain_factor <= 5.0):
            raise SynthError(f"rain_factor: {self.rain_factor} outside [0.2, 5]")
        if self.family not in FAMILIES:
            raise SynthError(f"family: {self.family!r} is not one of {', '.join(FAMILIES)}")

    # -- derived ----------------------------------------------------------------------
    @property
    def days(self) -> tuple[dt.date, ...]:
        """Every date of the period, inclusive."""
        n = (self.end - self.start).days + 1
        return tuple(self.start + dt.timedelta(days=i) for i in range(n))

    def region_grid(self) -> Grid:
        """The region on the conus-90m lattice (truth and maps)."""
        return Grid.from_bounds(self.region, PIXEL_DEG, "EPSG:4326")

    def domain_grid(self) -> Grid:
        """The simulated domain: the region plus ``margin_deg`` on every side, same lattice."""
        w, s, e, n = self.region
        m = self.margin_deg
        return Grid.from_bounds((w - m, s - m, e + m, n + m), PIXEL_DEG, "EPSG:4326")

    def key(self, *parts: object) -> int:
        """A stable 64-bit key for a named random stream of this world (same in every process)."""
        text = "|".join(str(p) for p in (self.seed, *parts))
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little")


def demo_spec(**overrides: object) -> WorldSpec:
    """The default demo world: Oklahoma 2 x 2 degrees, 90 days from 2020-04-01, 100 stations."""
    return WorldSpec(**overrides)  # type: ignore[arg-type]


HUMID_EAST_REGION: tuple[float, float, float, float] = (-84.0, 34.5, -82.0, 36.5)
"""The second world's default region: 2 x 2 degrees of the humid south-east (Cfa/Dfa)."""

WORLDS: dict[str, dict[str, object]] = {
    "demo": {},
    "humid-east": {"rain_factor": 1.6},
}
"""The project's synthetic worlds: name -> ``WorldSpec`` fields beyond region and seed.

``demo``: the default (semi-arid to humid Oklahoma climate, mean rain 3.2 mm/day);
``humid-east``: the second world used to check that a modelling choice holds on
another climate: 1.6 times the rain (about 5 mm/day), meant for
:data:`HUMID_EAST_REGION` with another seed.
"""


def world_spec(name: str, **overrides: object) -> WorldSpec:
    """The named world of :data:`WORLDS` (``overrides``: region, seed, period ...)."""
    if name not in WORLDS:
        raise SynthError(f"world: {name!r} is not one of {sorted(WORLDS)}")
    return WorldSpec(**{**WORLDS[name], **overrides})  # type: ignore[arg-type]


def global_pixel_origin(grid: Grid) -> tuple[int, int]:
    """(row, col) of ``grid``'s upper-left pixel on the global 1/1200-degree lattice.

    Row 0 starts at 90 N, column 0 at 180 W. Raises ``SynthError`` if the grid
    is not on the conus-90m lattice.
    """
    if grid.crs != "EPSG:4326" or not grid.is_axis_aligned:
        raise SynthError(f"window {grid!r}: must be an axis-aligned EPSG:4326 grid")
    rx, ry = grid.resolution
    if abs(rx - PIXEL_DEG) > 1e-12 or abs(ry - PIXEL_DEG) > 1e-12 or grid.transform[4] > 0:
        raise SynthError(f"window {grid!r}: resolution must be 1/1200 degree, north-up")
    col = (grid.transform[2] + 180.0) * PIXELS_PER_DEGREE
    row = (90.0 - grid.transform[5]) * PIXELS_PER_DEGREE
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        raise SynthError(f"window {grid!r}: edges are not on multiples of 1/1200 degree")
    return round(row), round(col)
