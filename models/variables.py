"""The variable registry: every input of the map, one entry each, one place per fact.

Each ``Variable`` says what the input is (name, unit, description), what kind it is
(``daily``: a new value each day; ``static``: one layer for all days; ``categorical``:
integer class codes, static or yearly), its physical valid range (in its unit), the
provider product serving it per product *family* and *mode*, how a composite is padded
past its period, and the quality bit it owns in the cube.

Everything else derives from this list, in this order:

- the model contract (``models.features.FEATURES``/``FEATURE_NAMES``: the non-categorical
  variables in registry order, the paper's order; every manifest records it),
  the categorical references (``CATEGORICALS``);
- the tile's daily inputs (``daily_names``), the static stack's layers
  (``static_feature_names``, ``categorical_names``);
- the quality flags (``flag_bits``: the variables' bits plus ``PIXEL_FLAGS``);
- the catalogue's products per mode (``pipeline.sources.catalog``), the physical ranges
  the readers check (``pipeline.sources.base.PHYSICAL_RANGE``);
- the training table's columns (``pipeline.table.schema``) and the docs table
  ``docs/variables.md`` (``markdown_table``; a test keeps the file equal to it).

The registry lives in ``models/`` because the feature order is a model contract and
``models`` never imports ``pipeline``; it is pure data (no I/O, no third-party import).

Adding a covariate: one ``Variable`` entry below (or ``register`` before anything reads
the registry, as the tests do) plus one product module whose source the catalogue builds
for the entry's product (``pipeline.sources.catalog.register_product``).
Families (``FAMILIES``, chosen by ``[sources] family``): ``modis-terra`` (MOD*, for history:
Terra produced its full suite until December 2025), ``modis-aqua`` (MYD*, until August 2026),
and the VIIRS collection-2 continuity products ``viirs-snpp`` (VNP*), ``viirs-noaa20`` (VJ1*)
and ``viirs-noaa21`` (VJ2*) for current days. A family names the product serving each optical
variable per mode; ``ANY_FAMILY`` entries (SMAP, CHIRPS, soils, DEM, Koeppen) serve all. Units
are the variable's whatever the family (each reader converts). Land cover is MCD12Q1 for
every family (no VIIRS land-cover product is released): the latest year on or before the day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["daily", "static", "categorical"]
Mode = Literal["training", "maps"]
MODES: tuple[Mode, ...] = ("training", "maps")
FlagWhen = Literal["missing", "padded"]

ANY_FAMILY = "*"
"""Key of ``Variable.products`` for a product that serves every family."""
FAMILIES: tuple[str, ...] = (
    "modis-terra",
    "modis-aqua",
    "viirs-snpp",
    "viirs-noaa20",
    "viirs-noaa21",
)
"""Product families of the optical covariates (NDVI, LST, ET, land cover)."""
DEFAULT_FAMILY = "viirs-snpp"
"""The default family (``[sources] family``, synthetic worlds): VIIRS for current days.
Tables and models made before families existed were ``"modis-terra"``."""


@dataclass(frozen=True, slots=True)
class Padding:
    """How far past its period a composite still serves a day (paper 3.2).

    ``setting``: the ``[sources]`` key holding the maximum days (None: ``days`` is fixed);
    ``days``: the default (or fixed) maximum. A daily product (period 1 day) is never padded.
    """

    setting: str | None
    days: int


@dataclass(frozen=True, slots=True)
class Flag:
    """One quality bit of the cube: its name (``flag_meanings``), bit and when it is set.

    ``when``: ``"missing"`` on pixels where the variable is missing, ``"padded"`` on every
    computed pixel of a tile whose composite for the variable was padded (days_stale > 0);
    None for the pixel flags that belong to no variable.
    """

    name: str
    bit: int
    when: FlagWhen | None
    meaning: str


@dataclass(frozen=True, slots=True)
class Variable:
    """One input of the map (see the module docstring)."""

    name: str
    unit: str
    description: str
    kind: Kind
    valid_range: tuple[float, float]
    products: Mapping[str, Mapping[Mode, str]] = field(repr=False)
    padding: Padding | None = None
    flag: Flag | None = None
    derived_from: tuple[str, ...] = ()
    """Inputs this one is computed from when no product serves it (texture: sand, clay)."""

    @property
    def is_feature(self) -> bool:
        """A float model input (categoricals are references/WDL inputs, not features)."""
        return self.kind != "categorical"

    def product(self, mode: Mode, family: str = DEFAULT_FAMILY) -> str:
        """The product serving this variable in ``mode`` for ``family``."""
        by_mode = self.products.get(family, self.products.get(ANY_FAMILY))
        if by_mode is None:
            raise KeyError(f"variable {self.name!r} has no product for family {family!r}")
        return by_mode[mode]


def _same(product: str) -> dict[str, dict[Mode, str]]:
    return {ANY_FAMILY: {"training": product, "maps": product}}


def _family(**by_family: tuple[str, str]) -> dict[str, dict[Mode, str]]:
    """{family: {"training": product, "maps": product}} from family=(training, maps)."""
    out: dict[str, dict[Mode, str]] = {
        f.replace("_", "-"): {"training": t, "maps": m} for f, (t, m) in by_family.items()
    }
    unknown = set(out) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown product family {sorted(unknown)}")
    return out


_REGISTRY: list[Variable] = [
    Variable(
        "smap",
        "m3 m-3",
        "SMAP L3 enhanced soil moisture, AM/PM mean (SPL3SMP_E, 9 km)",
        "daily",
        (0.0, 1.0),
        _same("SPL3SMP_E"),
        flag=Flag("smap_missing", 1, "missing", "SMAP has no valid retrieval at the pixel"),
    ),
    Variable(
        "ndvi",
        "1",
        "NDVI, 16-day (MODIS MOD13A1 500 m / MOD13Q1 250 m; VIIRS VNP13A1 500 m)",
        "daily",
        (-1.0, 1.0),
        _family(
            modis_terra=("MOD13A1", "MOD13Q1"),
            modis_aqua=("MYD13A1", "MYD13Q1"),
            viirs_snpp=("VNP13A1", "VNP13A1"),
            viirs_noaa20=("VJ113A1", "VJ113A1"),
            viirs_noaa21=("VJ213A1", "VJ213A1"),
        ),
        padding=Padding("ndvi_padding_days", 0),
        flag=Flag("ndvi_padded", 4, "padded", "NDVI from an earlier composite (padded)"),
    ),
    Variable(
        "lst",
        "degC",
        "Land surface temperature, day (8-day padded for training / daily for maps)",
        "daily",
        (-90.0, 70.0),
        _family(
            modis_terra=("MOD11A2", "MOD21A1D"),
            modis_aqua=("MYD11A2", "MYD21A1D"),
            viirs_snpp=("VNP21A2", "VNP21A1D"),
            # NOAA-20/21: the daily LST serves both modes (no 8-day VJ1/VJ2 LST is used).
            viirs_noaa20=("VJ121A1D", "VJ121A1D"),
            viirs_noaa21=("VJ221A1D", "VJ221A1D"),
        ),
        padding=Padding("lst_padding_days", 7),
        flag=Flag("lst_padded", 2, "padded", "LST from an earlier composite (padded)"),
    ),
    Variable(
        "precip",
        "mm day-1",
        "CHIRPS 2.0 daily precipitation (0.05 degree)",
        "daily",
        (0.0, 2000.0),
        _same("CHIRPS-2.0"),
    ),
    Variable(
        "sand",
        "%",
        "SoilGrids 2.0 sand fraction, 0-5 cm",
        "static",
        (0.0, 100.0),
        _same("SoilGrids-2.0"),
    ),
    Variable(
        "clay",
        "%",
        "SoilGrids 2.0 clay fraction, 0-5 cm",
        "static",
        (0.0, 100.0),
        _same("SoilGrids-2.0"),
    ),
    Variable(
        "ph",
        "pH",
        "SoilGrids 2.0 pH in water, 0-5 cm",
        "static",
        (0.0, 14.0),
        _same("SoilGrids-2.0"),
    ),
    Variable(
        "et",
        "mm day-1",
        "Evapotranspiration (8-day MOD16A2 / VNP16A2, padded), daily rate",
        "daily",
        (0.0, 100.0),
        _family(
            modis_terra=("MOD16A2", "MOD16A2"),
            modis_aqua=("MYD16A2", "MYD16A2"),
            viirs_snpp=("VNP16A2", "VNP16A2"),
            viirs_noaa20=("VJ116A2", "VJ116A2"),
            viirs_noaa21=("VJ216A2", "VJ216A2"),
        ),
        padding=Padding("et_padding_days", 7),
        flag=Flag("et_padded", 8, "padded", "ET from an earlier composite (padded)"),
    ),
    Variable(
        "elevation",
        "m",
        "MERIT DEM elevation (3 arc-second)",
        "static",
        (-500.0, 9000.0),
        _same("MERIT-DEM"),
    ),
    Variable(
        "texture",
        "1",
        "USDA soil texture class (1-12) of the SoilGrids sand and clay",
        "categorical",
        (1, 12),
        _same("SoilGrids-2.0 (USDA triangle)"),
        derived_from=("sand", "clay"),
    ),
    Variable(
        "landcover",
        "1",
        "MODIS MCD12Q1 LC_Type1 (IGBP) land cover class (1-17), yearly, every family",
        "categorical",
        (1, 17),
        _same("MCD12Q1"),
        # Yearly and published late: the latest year not after the date serves it.
        padding=Padding(None, 3660),
    ),
    Variable(
        "koppen",
        "1",
        "Koeppen-Geiger class (1-30) of Beck et al. (2018)",
        "categorical",
        (1, 30),
        _same("Beck-KG-V1"),
    ),
]

PIXEL_FLAGS: tuple[Flag, ...] = (
    Flag("input_missing", 16, None, "an input of the pixel is missing: not predicted"),
    Flag("water", 32, None, "water (static surface mask): never predicted"),
    Flag("urban", 64, None, "urban (static surface mask): never predicted"),
)
"""Quality bits that belong to no single variable."""

_sealed = False


def register(var: Variable) -> None:
    """Add a variable at the end of the registry (before anything has read it).

    Refuses a duplicate name or flag bit, and any registration once the registry was read
    (the derived orders would disagree).
    """
    if _sealed:
        raise RuntimeError(
            f"variable {var.name!r}: the registry was already read; register variables "
            "before importing models.features or pipeline"
        )
    if any(v.name == var.name for v in _REGISTRY):
        raise ValueError(f"variable {var.name!r} is already registered")
    if var.flag is not None and var.flag.bit in {f.bit for f in _flags(_REGISTRY)}:
        raise ValueError(f"variable {var.name!r}: flag bit {var.flag.bit} is taken")
    _REGISTRY.append(var)


def _flags(registry: list[Variable]) -> list[Flag]:
    return [*(v.flag for v in registry if v.flag is not None), *PIXEL_FLAGS]


def variables() -> tuple[Variable, ...]:
    """Every variable, in registry order (reading it seals the registry)."""
    global _sealed
    _sealed = True
    return tuple(_REGISTRY)


def variable(name: str) -> Variable:
    """The variable called ``name`` (KeyError names it)."""
    for v in variables():
        if v.name == name:
            return v
    raise KeyError(f"unknown variable {name!r}")


def feature_variables() -> tuple[Variable, ...]:
    """The model's float inputs in the paper's (registry) order: the model contract."""
    return tuple(v for v in variables() if v.is_feature)


def names(kind: Kind | None = None) -> tuple[str, ...]:
    """Names of every variable (of ``kind``), registry order."""
    return tuple(v.name for v in variables() if kind is None or v.kind == kind)


def daily_names() -> tuple[str, ...]:
    """The tile's daily inputs (a new file each day or composite period)."""
    return names("daily")


def static_feature_names() -> tuple[str, ...]:
    """Static float features (one layer for every day), in feature order."""
    return names("static")


def categorical_names() -> tuple[str, ...]:
    """Categorical references (integer class codes), registry order."""
    return names("categorical")


def flags() -> tuple[Flag, ...]:
    """Every quality bit, by bit value."""
    variables()
    return tuple(sorted(_flags(_REGISTRY), key=lambda f: f.bit))


def flag_bits() -> dict[str, int]:
    """{flag name: bit} in bit order (CF ``flag_meanings``/``flag_masks``)."""
    return {f.name: f.bit for f in flags()}


def flag_of(name: str, when: FlagWhen) -> str | None:
    """The flag ``name`` owns for ``when`` (``"missing"``/``"padded"``), or None."""
    f = variable(name).flag
    return f.name if f is not None and f.when == when else None


def physical_ranges() -> dict[str, tuple[float, float]]:
    """{feature: (low, high)} physical valid range in the feature's unit (readers check it)."""
    return {v.name: (float(v.valid_range[0]), float(v.valid_range[1])) for v in feature_variables()}


def products(mode: Mode, family: str = DEFAULT_FAMILY) -> dict[str, str]:
    """{variable: product} serving each variable in ``mode`` for ``family``."""
    check_family(family)
    return {v.name: v.product(mode, family) for v in variables()}


def check_family(family: str) -> str:
    """``family`` when it is one of ``FAMILIES`` (ValueError naming the choices otherwise)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown product family {family!r}; one of {', '.join(FAMILIES)}")
    return family


def family_products(family: str) -> dict[str, dict[str, str]]:
    """{mode: {variable: product}} of ``family`` (what tables and manifests record)."""
    return {mode: products(mode, family) for mode in MODES}


def markdown_table() -> str:
    """The table of every variable and of the quality flags (``docs/variables.md``)."""
    fams = list(FAMILIES)
    head = ["variable", "kind", "unit", "valid range"]
    head += [f"{fam} {mode}" for fam in fams for mode in MODES]
    head += ["padding (days)", "quality flag", "description"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for v in variables():
        lo, hi = v.valid_range
        pad = ""
        if v.padding is not None:
            pad = (
                f"`{v.padding.setting}` (default {v.padding.days})"
                if v.padding.setting
                else str(v.padding.days)
            )
        flag = f"`{v.flag.name}` ({v.flag.bit})" if v.flag else ""
        cells = [f"`{v.name}`", v.kind, v.unit, f"{lo:g} .. {hi:g}"]
        cells += [v.product(mode, fam) for fam in fams for mode in MODES]
        cells += [pad, flag, v.description]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Quality flags (`quality_flag`, CF `flag_masks`):", ""]
    lines += ["| bit | name | set when |", "| --- | --- | --- |"]
    lines += [f"| {f.bit} | `{f.name}` | {f.meaning} |" for f in flags()]
    return "\n".join(lines) + "\n"


def docs_page() -> str:
    """``docs/variables.md``, exactly (``python -m models.variables > docs/variables.md``)."""
    return (
        "# Variables\n\n"
        "<!-- generated from models/variables.py: python -m models.variables > "
        "docs/variables.md; tests/test_variables.py checks it -->\n\n"
        "Every input of the map, in the model's feature order (categoricals last), with the\n"
        "product serving it per family and mode (`training` builds the table, `maps` makes\n"
        "the daily map).\n\n" + markdown_table()
    )


if __name__ == "__main__":
    print(docs_page(), end="")
