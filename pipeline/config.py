"""One TOML configuration, validated by pydantic, with environment overrides.

Environment variables ``SMDOWN__<SECTION>__<KEY>`` override the file, e.g.
``SMDOWN__CLUSTER__N_WORKERS=4``. Unknown keys are errors, never ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from models.variables import DEFAULT_FAMILY, check_family
from pipeline.errors import ConfigError

CONFIG_ENV = "SMDOWN_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcesConfig(_Section):
    """Where covariate products live: one root laid out as the providers name files.

    A per-product entry overrides the root for that product (a path or a URL).
    """

    root: str = "smdown-data/world"
    smap: str | None = None
    modis: str | None = None
    viirs: str | None = None
    chirps: str | None = None
    soilgrids: str | None = None
    merit: str | None = None
    koppen: str | None = None
    landcover: str | None = None
    # Product family of NDVI, LST and ET (models.variables.FAMILIES): the VIIRS continuity
    # products "viirs-snpp" (VNP*, default: current days), "viirs-noaa20" (VJ1*),
    # "viirs-noaa21" (VJ2*), or for history "modis-terra" (MOD*, to December 2025) and
    # "modis-aqua" (MYD*, to August 2026).
    family: str = DEFAULT_FAMILY
    # `smdown run` refuses a model trained on another family's inputs unless this is true.
    allow_family_mismatch: bool = False
    smap_quality: Literal["recommended", "any"] = "recommended"
    lst_padding_days: int = Field(7, ge=0, le=16)
    et_padding_days: int = Field(7, ge=0, le=16)
    ndvi_padding_days: int = Field(0, ge=0, le=16)
    # Fallback chains of the maps (pipeline.run.fallback): SMAP from the newest valid
    # retrieval of up to this many days before when the day's own has none at a pixel;
    # the daily LST falls back to the 8-day composite; NDVI, ET and the LST composite to
    # this many earlier composites where the serving one has no value at a pixel.
    smap_max_age_days: int = Field(3, ge=0, le=10)
    lst_composite_fallback: bool = True
    earlier_composites: int = Field(1, ge=0, le=4)
    # MODIS QC: "good" (best only), "usable" (+ LST other-quality, NDVI marginal), "any".
    modis_qc: Literal["good", "usable", "any"] = "usable"
    # Native pixels read beyond the requested bounds on every side.
    margin_pixels: int = Field(2, ge=1, le=64)
    # Fraction of a window's valid pixels that may be out of physical range and be set
    # to NaN (counted in provenance); more raises OutOfRangeError naming the file.
    range_tolerance: float = Field(0.01, ge=0, le=1)
    # MODIS tiles `smdown fetch` downloads (default: the tiles covering CONUS).
    modis_tiles: list[str] = Field(
        default_factory=lambda: [
            "h08v04", "h08v05", "h08v06", "h09v04", "h09v05", "h09v06", "h10v04",
            "h10v05", "h10v06", "h11v04", "h11v05", "h12v04", "h12v05", "h13v04",
        ]
    )  # fmt: skip

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        return check_family(v)


class GridConfig(_Section):
    """Target grid of the maps and how it is tiled."""

    name: str = "conus-90m"
    # (west, south, east, north) in degrees; None (or [] in TOML) means the whole named grid.
    region: tuple[float, float, float, float] | None = (-98.5, 34.5, -96.5, 36.5)
    tile_size: int = Field(1200, ge=16, le=8192)

    @field_validator("region", mode="before")
    @classmethod
    def _empty_region_is_whole_grid(cls, v: Any) -> Any:
        if isinstance(v, list | tuple) and len(v) not in (0, 4):
            raise ValueError(
                f"needs four numbers [west, south, east, north] in degrees, got {len(v)} "
                "(or [] for the whole grid)"
            )
        return None if isinstance(v, list | tuple) and len(v) == 0 else v

    @field_validator("region")
    @classmethod
    def _region_ordered(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is not None and not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError(
                "region must be (west, south, east, north) with west<east, south<north"
            )
        return v


class InsituConfig(_Section):
    """Ground truth: which files, and the quality rules of the paper.

    ``ismn``/``ameriflux`` default to ``<sources.root>/ISMN`` and ``/AmeriFlux``.
    A sensor passes the depth rule when its ``depth_field`` (m) <= ``max_depth_m``.
    ``wetland_sites`` holds site ids (``AMF:US-Myb``, ``ISMN:NET:STATION``) or bare
    station/site names. With ``conus_only`` a site is kept when it lies inside the CONUS
    outline (``grids.conus``: 48 states + DC, US Census cartographic boundaries) and
    inside ``conus_bounds`` (west, south, east, north) in degrees, a box that can only
    narrow the outline.
    """

    ismn: str | None = None
    ameriflux: str | None = None
    max_depth_m: float = Field(0.05, gt=0, le=2.0)
    depth_field: Literal["depth_to", "depth_from"] = "depth_to"
    # AmeriFlux SWC columns whose depth the BADM does not give: keep (counted) or drop.
    unknown_depth: Literal["keep", "drop"] = "keep"
    min_obs_per_day: int = Field(1, ge=1, le=96)
    min_soil_temperature_c: float = 3.0
    # Drop AmeriFlux readings with neither TS_* nor MODIS LST (else kept and counted).
    require_temperature: bool = False
    max_swc: float = Field(0.7, gt=0, le=1.0)
    wetland_sites: list[str] = Field(default_factory=list)
    wetland_igbp: list[str] = Field(default_factory=lambda: ["WET"])
    conus_only: bool = True
    conus_bounds: tuple[float, float, float, float] = (-125.0, 24.5, -66.9, 49.5)
    # Stop at the first file that is not ISMN/AmeriFlux instead of skipping and reporting it.
    strict: bool = False

    @field_validator("conus_bounds")
    @classmethod
    def _bounds_ordered(
        cls, v: tuple[float, float, float, float]
    ) -> tuple[float, float, float, float]:
        if not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError("conus_bounds must be (west, south, east, north), west<east")
        return v


class TableConfig(_Section):
    """Training table: splits, sample-weight binning and feature screening.

    Bin edges (clay/sand in %, pH in pH units) follow ``np.digitize`` with
    ``right=False``: class i holds edges[i-1] <= x < edges[i]; below the first
    edge is class 0, at or above the last is class len(edges).
    """

    path: str = "smdown-data/table.parquet"
    # Daily in-situ table (``smdown insitu`` output); None: ``insitu.parquet`` beside ``path``.
    insitu_path: str | None = None
    split_seed: int = 42
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    n_folds: int = Field(10, ge=2, le=50)
    clay_bins: list[float] = Field(default_factory=lambda: [10.0, 20.0, 30.0, 40.0])
    sand_bins: list[float] = Field(default_factory=lambda: [20.0, 40.0, 60.0, 80.0])
    ph_bins: list[float] = Field(default_factory=lambda: [5.5, 6.5, 7.5])
    # What validation rows carry in w_*: "class" = the weight of their class as counted
    # over the training rows (1.0 for a class unseen in training), "one" = 1.0.
    validation_weights: Literal["class", "one"] = "class"
    # Sites are read in groups of target-grid blocks this many pixels on a side (90 m:
    # 4800 = 4 degrees); each source is read once per group and date over its sites.
    group_pixels: int = Field(4800, ge=1)
    # Feature screening (paper 2.0.1/2.0.2).
    screen_corr_threshold: float = Field(0.1, gt=0, lt=1)
    screen_rf_fraction: float = Field(0.25, gt=0, lt=1)
    screen_marks_to_drop: int = Field(2, ge=1, le=4)
    screen_max_rows: int = Field(200_000, ge=100)
    screen_rf_trees: int = Field(50, ge=5, le=1000)
    screen_seed: int = 0

    @field_validator("clay_bins", "sand_bins", "ph_bins")
    @classmethod
    def _edges_increasing(cls, v: list[float]) -> list[float]:
        if not v or any(v[i + 1] <= v[i] for i in range(len(v) - 1)):
            raise ValueError("bin edges must be a non-empty, strictly increasing list")
        return v


class ModelsConfig(_Section):
    """Trained ensembles: where they are and which one makes the maps."""

    dir: str = "smdown-data/models"
    arch: Literal["dense", "prob", "wdl", "rf"] = "dense"
    seed: int = 0
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(512, ge=1)
    patience: int = Field(10, ge=1)
    # Trees per texture-class forest (rf); 100 in the paper.
    n_estimators: int = Field(100, ge=1)
    # Threads for TensorFlow / scikit-learn while training.
    threads: int = Field(2, ge=1)
    # Posterior weight samples baked into each Prob ONNX graph.
    prob_samples: int = Field(64, ge=1, le=4096)


class OutputConfig(_Section):
    """The published Zarr cubes (local path or s3:// URL of their folder).

    One store per model version: ``<store>/<arch>-<manifest_hash[:12]>.zarr``.
    """

    store: str = "smdown-data/cube"
    # Days per chunk: one (a task owns whole chunks of one day).
    chunk_time: int = Field(1, ge=1, le=1)
    # Spatial chunk edge in pixels; must divide grid.tile_size. None: the largest
    # divisor of tile_size not above 1024 (1200 -> 600, 2400 -> 800).
    chunk_size: int | None = Field(None, ge=16, le=8192)
    # First calendar year of the time axis (SMAP L3 enhanced starts 2015-03-31).
    first_year: int = Field(2015, ge=1950, le=2200)
    # A day is final when its inputs cover at least this fraction of the land pixels
    # and it is at least final_after_days old (UTC); else provisional.
    min_coverage_final: float = Field(0.5, ge=0, le=1)
    final_after_days: int = Field(3, ge=0, le=365)
    # Seconds a run waits for another run holding the same store/day (0: fail at once),
    # and the age after which a lock is taken as stale.
    lock_timeout_s: float = Field(0.0, ge=0)
    lock_stale_after_s: float = Field(12 * 3600.0, gt=0)
    storage_options: dict[str, Any] = Field(default_factory=dict)


class ClusterConfig(_Section):
    """The Dask cluster: a LocalCluster by default, or an existing scheduler."""

    kind: Literal["local", "address", "gateway", "kubernetes"] = "local"
    address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = "auto"
    dashboard: bool = True
    # Seconds to reach an existing scheduler before failing with one line.
    connect_timeout_s: float = Field(10.0, gt=0)
    # A tile task running longer than this fails the day naming the tile (None: no limit).
    task_timeout_s: float | None = Field(3600.0, gt=0)
    # A task waiting on a worker paused for memory this long fails the day naming the tile.
    paused_timeout_s: float | None = Field(120.0, gt=0)
    # Keyword arguments of the dask-gateway / dask-kubernetes cluster constructor.
    options: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseSettings):
    """The whole configuration of one smdown deployment."""

    model_config = SettingsConfigDict(
        env_prefix="SMDOWN__",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    sources: SourcesConfig = SourcesConfig()
    grid: GridConfig = GridConfig()
    insitu: InsituConfig = InsituConfig()
    table: TableConfig = TableConfig()
    models: ModelsConfig = ModelsConfig()
    output: OutputConfig = OutputConfig()
    cluster: ClusterConfig = ClusterConfig()
    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment overrides the file, which overrides defaults.
        return env_settings, init_settings


def _format_validation_error(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (misspelt?)"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{origin}: key '{key}': {msg}{more}"


ENV_PREFIX = "SMDOWN__"


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse ``SMDOWN__<SECTION>__<KEY>`` variables naming no section or key (pydantic
    settings would silently ignore an unknown section such as ``SMDOWN__CLUSTR__...``)."""
    env = os.environ if environ is None else environ
    fields = Settings.model_fields
    for name in sorted(env):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        section = parts[0]
        if section not in fields:
            known = ", ".join(fields)
            raise ConfigError(
                f"environment {name}: unknown section {section!r} (misspelt?); sections: {known}"
            )
        annotation = fields[section].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if len(parts) < 2 or not parts[1]:
                if env[name].lstrip().startswith("{"):
                    continue  # the whole section as JSON: its keys are checked on load
                raise ConfigError(
                    f"environment {name}: name a key, SMDOWN__{section.upper()}__<KEY>, "
                    "or give the whole section as a JSON object"
                )
            if parts[1] not in annotation.model_fields:
                known = ", ".join(annotation.model_fields)
                raise ConfigError(
                    f"environment {name}: section [{section}] has no key {parts[1]!r} "
                    f"(misspelt?); keys: {known}"
                )


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the configuration; ``None`` means $SMDOWN_CONFIG or the defaults."""
    check_environment()
    if path is None:
        path = os.environ.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    origin = "configuration (defaults + SMDOWN__* environment)"
    if path is not None:
        p = Path(path)
        origin = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{p}: configuration file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin)) from exc
    except SettingsError as exc:  # an SMDOWN__* value that should be JSON (a dict or list)
        raise ConfigError(_format_env_parse_error(exc)) from exc


def _format_env_parse_error(err: SettingsError) -> str:
    """One line naming the ``SMDOWN__*`` variable whose JSON value does not parse."""
    m = re.search(r'field "(\w+)"', str(err))
    field = m.group(1) if m else ""
    prefix = f"SMDOWN__{field.upper()}"
    for name in sorted(os.environ):
        if not (name.upper() == prefix or name.upper().startswith(prefix + "__")):
            continue
        value = os.environ[name]
        if not value.lstrip().startswith(("{", "[")):
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            key = ".".join(p.lower() for p in name.split("__")[1:])
            return (
                f"{name}: environment override of '{key}' is not valid JSON ({exc}); "
                "a dict or list value is written as JSON, e.g. '{\"k\": 1}'"
            )
    cause = f" ({err.__cause__})" if err.__cause__ else ""
    return f"{prefix}__*: environment override of '{field}' does not parse{cause}"


def settings_to_toml(settings: Settings) -> str:
    """Render settings as TOML (what ``smdown config show`` prints)."""
    data = settings.model_dump(mode="json")
    lines: list[str] = []
    for key, value in data.items():
        if not isinstance(value, dict) and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    defaults = Settings.model_construct().model_dump(mode="json")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append("")
            lines.append(f"[{key}]")
            for k, v in value.items():
                if v is None and defaults.get(key, {}).get(k) is not None:
                    lines.append(f"{k} = []  # none: the whole extent")
                elif v is None:
                    lines.append(f"# {k} = (unset)")
                else:
                    lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot render {type(v).__name__} as TOML")
