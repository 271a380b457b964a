"""Export one day of a cube: Cloud-Optimized GeoTIFF, CF NetCDF, or a quicklook PNG.

- COG (rasterio, driver ``COG``): four uint16 bands ``soil_moisture``,
  ``soil_moisture_sd``, ``member_spread`` (scale 1e-4 m3 m-3) and
  ``quality_flag`` (scale 1; the cube's flag fill 255 becomes 65535), nodata
  65535, the cube's CRS and transform, DEFLATE with predictor 2, 512-pixel
  blocks and nearest overviews. Written block by block into a temporary tiled
  GeoTIFF, then copied to COG, so a CONUS day never sits whole in memory.
- NetCDF (xarray, h5netcdf engine): the day as a CF-1.8 dataset with the cube's
  packing (uint16 + scale_factor, _FillValue), coordinates, ``spatial_ref`` and
  the day's provenance JSON as the global attribute ``provenance``.
- PNG: a map of soil moisture (m3 m-3, reversed viridis, colour bar) with water
  (pale blue), urban (dark grey), missing-input (hatched light grey) and
  not-computed (white) pixels told apart (``MASKS``), a title naming the date and
  model, decimated to at most ``max_pixels`` on the long side. No state outlines:
  no well-kept package ships boundaries offline (cartopy/geodatasets download
  Natural Earth at first use, which run and test time may not).

Only published days (``day_status`` > 0) are exported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.cube import DAY_ABSENT, FLAG_BITS, StoreSpec, read_layout
from pipeline.cube import encoding as enc
from pipeline.cube.store import Cube
from pipeline.errors import RunError

Format = Literal["cog", "netcdf", "png"]
FORMATS: tuple[str, ...] = ("cog", "netcdf", "png")
SUFFIX = {"cog": ".tif", "netcdf": ".nc", "png": ".png"}
BANDS: tuple[str, ...] = ("soil_moisture", "soil_moisture_sd", "member_spread", "quality_flag")


class ExportError(RunError):
    """A day cannot be exported from a store (absent day, unknown format, no store)."""


def resolve_store(output_root: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """The cube ``latest.json`` under the output folder points to (``ExportError`` if none)."""
    spec = StoreSpec(output_root.rstrip("/"), dict(storage_options or {})).child("latest.json")
    try:
        if spec.is_local:
            text = Path(spec.local_path).read_text("utf-8")
        else:
            fs, path = spec.filesystem()
            text = fs.cat_file(path).decode("utf-8")
        name = json.loads(text)["store"]
    except (OSError, KeyError, ValueError) as exc:
        raise ExportError(
            f"{spec}: no cube recorded here yet (run 'smdown run' first or pass --store)"
        ) from exc
    return f"{output_root.rstrip('/')}/{name}"


def _open_day(spec: StoreSpec, date: dt.date) -> tuple[Cube, Any, int]:
    from pipeline.cube.store import open_group

    layout = read_layout(spec)
    cube = Cube(spec, layout)
    if date.year < layout.first_year or layout.time_index(date) >= cube.n_times():
        raise ExportError(f"{spec}: {date} is outside the cube's time axis")
    try:
        status = cube.day_status(date)
    except KeyError as exc:
        raise ExportError(
            f"{spec}: no day_status array: not a cube smdown published, or a damaged one "
            "(nothing is exported from a store whose publication state is unknown)"
        ) from exc
    if status == DAY_ABSENT:
        raise ExportError(f"{spec}: {date} has not been published (day_status 0)")
    root = open_group(spec, "r")
    return cube, root, layout.time_index(date)


def default_out(store: str, date: dt.date, fmt: str) -> Path:
    """``<store name without .zarr>_<YYYY-MM-DD><suffix>`` in the current folder."""
    name = store.rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")
    return Path(f"{name}_{date.isoformat()}{SUFFIX[fmt]}")


Window = tuple[int, int, int, int]


def bbox_window(grid: Any, bbox: tuple[float, float, float, float] | None) -> Window:
    """(row0, row1, col0, col1) of the cube's pixels inside ``bbox`` (west, south, east,
    north in degrees); the whole grid for None (``ExportError`` when they do not meet)."""
    if bbox is None:
        return 0, grid.height, 0, grid.width
    from grids.errors import GridError
    from pipeline.sources.base import to_native_bounds

    try:
        return tuple(grid.window_of_bounds(to_native_bounds(bbox, grid.crs)))  # type: ignore[return-value]
    except (GridError, ValueError) as exc:
        w, s, e, n = bbox
        gw, gs, ge, gn = grid.bounds
        raise ExportError(
            f"--bbox {w},{s},{e},{n} does not overlap the cube "
            f"(x {gw:.4f}..{ge:.4f}, y {gs:.4f}..{gn:.4f}); give west,south,east,north "
            "inside it"
        ) from exc


def check_out_path(path: Path) -> None:
    """Refuse an output path whose folder cannot be made or written, naming the path."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"--out {path}: cannot create its folder {folder} ({exc.strerror or exc}); "
            "choose another --out"
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"--out {path}: folder {folder} is not writable; choose another --out")


def export_day(
    store: str,
    date: dt.date,
    fmt: str,
    out: str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    max_pixels: int = 2000,
    bbox: tuple[float, float, float, float] | None = None,
) -> Path:
    """Write day ``date`` of the cube at ``store`` as ``fmt`` (cog, netcdf, png); returns
    the path written. ``bbox`` (west, south, east, north, degrees) cuts the pixels inside
    it. The file appears whole or not at all (written beside, then renamed)."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    spec = StoreSpec(store, dict(storage_options or {}))
    path = Path(out) if out is not None else default_out(store, date, fmt)
    check_out_path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=SUFFIX[fmt], dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if fmt == "cog":
            _export_cog(spec, date, tmp, bbox)
        elif fmt == "netcdf":
            _export_netcdf(spec, date, tmp, bbox)
        else:
            _export_png(spec, date, tmp, max_pixels, bbox)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"--out {path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_range(
    store: str,
    start: dt.date,
    end: dt.date,
    fmt: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    log: Any = None,
) -> tuple[list[Path], list[dt.date]]:
    """Every published day of [start, end] as one file each in ``out_dir`` (named as
    ``default_out``); returns the files written and the days skipped (not published)."""
    from pipeline.cube import DAY_ABSENT

    spec = StoreSpec(store, dict(storage_options or {}))
    cube = Cube(spec, read_layout(spec))
    folder = Path(out_dir) if out_dir is not None else Path(".")
    written: list[Path] = []
    skipped: list[dt.date] = []
    day = start
    while day <= end:
        layout = cube.layout
        inside = day.year >= layout.first_year and layout.time_index(day) < cube.n_times()
        if not inside or cube.day_status(day) == DAY_ABSENT:
            skipped.append(day)
        else:
            target = folder / default_out(store, day, fmt)
            written.append(
                export_day(store, day, fmt, target, storage_options=storage_options, bbox=bbox)
            )
            if log is not None:
                log(f"wrote {target}")
        day += dt.timedelta(days=1)
    return written, skipped


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- COG -------------------------------------------------------------------------------------
def _export_cog(
    spec: StoreSpec, date: dt.date, path: Path, bbox: tuple[float, float, float, float] | None
) -> None:
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    cube, root, t = _open_day(spec, date)
    y0, y1, x0, x1 = bbox_window(cube.layout.grid, bbox)
    grid = cube.layout.grid.window(y0, y1, x0, x1)
    h, w = grid.shape
    attrs = root.attrs.asdict()
    profile = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": len(BANDS),
        "dtype": "uint16",
        "crs": grid.to_wkt(),
        "transform": grid.affine,
        "nodata": enc.FILL_U16,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "DEFLATE",
        "BIGTIFF": "IF_SAFER",
    }
    step = max(cube.layout.chunk, 512)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmpdir:
        tmp = Path(tmpdir) / "day.tif"
        with rasterio.open(tmp, "w", **profile) as dst:
            for r0 in range(0, h, step):
                for c0 in range(0, w, step):
                    r1, c1 = min(h, r0 + step), min(w, c0 + step)
                    win = Window(c0, r0, c1 - c0, r1 - r0)
                    for b, name in enumerate(BANDS, start=1):
                        block = np.asarray(root[name][t, y0 + r0 : y0 + r1, x0 + c0 : x0 + c1])
                        if name == "quality_flag":
                            block = np.where(
                                block == enc.FILL_FLAG, enc.FILL_U16, block.astype(np.uint16)
                            )
                        dst.write(block.astype(np.uint16), b, window=win)
            dst.scales = (enc.SCALE, enc.SCALE, enc.SCALE, 1.0)
            dst.offsets = (0.0, 0.0, 0.0, 0.0)
            dst.units = ("m3 m-3", "m3 m-3", "m3 m-3", "1")
            dst.descriptions = BANDS
            dst.update_tags(
                date=date.isoformat(),
                day_status=str(cube.day_status(date)),
                model_arch=str(attrs.get("model_arch", "")),
                model_manifest_hash=str(attrs.get("model_manifest_hash", "")),
                software_version=str(attrs.get("software_version", "")),
                source_store=spec.url,
            )
            dst.update_tags(
                4,
                flag_masks=" ".join(str(v) for v in FLAG_BITS.values()),
                flag_meanings=" ".join(FLAG_BITS),
            )
        rasterio.shutil.copy(
            tmp,
            path,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="2",
            BLOCKSIZE="512",
            OVERVIEW_RESAMPLING="NEAREST",
            BIGTIFF="IF_SAFER",
        )


# -- NetCDF ----------------------------------------------------------------------------------
def _export_netcdf(
    spec: StoreSpec, date: dt.date, path: Path, bbox: tuple[float, float, float, float] | None
) -> None:
    from pipeline.cube import open_cube

    cube, _, t = _open_day(spec, date)
    try:
        ds = open_cube(spec.url, spec.storage_options, chunks="zarr")
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise ExportError(
            f"{spec}: no consolidated metadata (.zmetadata; {type(exc).__name__}: {exc}): "
            "the cube is damaged or still being created; re-running a day re-consolidates it"
        ) from exc
    y0, y1, x0, x1 = bbox_window(cube.layout.grid, bbox)
    ydim, xdim = cube.layout.spatial_dims
    ds = ds.isel({"time": slice(t, t + 1), ydim: slice(y0, y1), xdim: slice(x0, x1)})
    ds = ds.drop_vars("day_status")
    prov = cube.read_provenance(date)
    attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float | list | tuple)}
    attrs["provenance"] = json.dumps(prov, sort_keys=True) if prov else ""
    attrs["day_status"] = cube.day_status(date)
    attrs["history"] = f"{attrs.get('history', '')}\n{_now()} exported {date} by smdown".strip()
    ds.attrs = attrs
    encoding: dict[str, dict[str, Any]] = {}
    for name in enc.CONTINUOUS:
        encoding[name] = {
            "dtype": "uint16",
            "scale_factor": enc.SCALE,
            "add_offset": 0.0,
            "_FillValue": enc.FILL_U16,
            "zlib": True,
            "complevel": 4,
        }
    encoding["quality_flag"] = {"dtype": "uint8", "_FillValue": enc.FILL_FLAG, "zlib": True}
    encoding["time"] = {"units": "days since 1970-01-01", "dtype": "int32"}
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- PNG -------------------------------------------------------------------------------------
# Mask colours of the quicklook, apart from each other and from every colour of the soil
# moisture map (viridis, reversed: dry is yellow, wet is dark blue; perceptually uniform,
# so 0-0.1 m3 m-3 is a saturated yellow, never near white). "missing" is also hatched.
MASKS = {
    "water": "#74b9e8",  # light blue
    "urban": "#3a3a3a",  # dark grey
    "missing": "#cccccc",  # light grey, hatched: computed, but an input was missing
    "not_computed": "#ffffff",  # white: tiles without land, outside the region
}
GREYS = MASKS  # the former name
SM_CMAP = "viridis_r"
SM_RANGE = (0.0, 0.5)
MISSING_HATCH = "////"


def _export_png(
    spec: StoreSpec,
    date: dt.date,
    path: Path,
    max_pixels: int,
    bbox: tuple[float, float, float, float] | None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    cube, root, t = _open_day(spec, date)
    y0, y1, x0, x1 = bbox_window(cube.layout.grid, bbox)
    grid = cube.layout.grid.window(y0, y1, x0, x1)
    h, w = grid.shape
    step = max(1, -(-max(h, w) // max_pixels))
    sm = enc.unpack_u16(np.asarray(root["soil_moisture"][t, y0:y1:step, x0:x1:step]))
    flags = np.asarray(root["quality_flag"][t, y0:y1:step, x0:x1:step])
    west, south, east, north = grid.bounds
    computed = flags != enc.FILL_FLAG
    water = computed & ((flags & FLAG_BITS["water"]) != 0)
    urban = computed & ((flags & FLAG_BITS["urban"]) != 0) & ~water
    missing = computed & (~np.isfinite(sm)) & ~water & ~urban
    attrs = root.attrs.asdict()
    fig, ax = plt.subplots(figsize=(10, 10 * h / w * 0.9 + 1.2), dpi=120)
    ax.set_facecolor(MASKS["not_computed"])
    extent = (west, east, south, north)
    cls = np.full(sm.shape, np.nan)
    cls[missing] = 0
    cls[water] = 1
    cls[urban] = 2
    ax.imshow(
        cls,
        extent=extent,
        cmap=ListedColormap([MASKS["missing"], MASKS["water"], MASKS["urban"]]),
        vmin=-0.5,
        vmax=2.5,
        interpolation="nearest",
    )
    if missing.any():  # hatch the missing-input areas so they read as "no data"
        ys = np.linspace(north, south, missing.shape[0])
        xs = np.linspace(west, east, missing.shape[1])
        plt.rcParams["hatch.color"] = "#808080"
        ax.contourf(
            xs, ys, missing.astype(float), levels=[0.5, 1.5], colors="none",
            hatches=[MISSING_HATCH],
        )  # fmt: skip
    im = ax.imshow(
        np.ma.masked_invalid(sm),
        extent=extent,
        cmap=SM_CMAP,
        vmin=SM_RANGE[0],
        vmax=SM_RANGE[1],
        interpolation="nearest",
    )
    bar = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("soil moisture (m3 m-3)")
    model = f"{attrs.get('model_arch', '?')}-{str(attrs.get('model_manifest_hash', ''))[:12]}"
    status = {1: "provisional", 2: "final"}.get(cube.day_status(date), "?")
    ax.set_title(f"smdown soil moisture 0-5 cm, {date.isoformat()} ({status}), model {model}")
    geographic = grid.is_geographic
    if geographic:  # equal ground distances along both axes at the map's centre
        ax.set_aspect(1.0 / max(0.1, float(np.cos(np.radians((south + north) / 2)))))
    ax.set_xlabel("longitude (degrees east)" if geographic else "x (m)")
    ax.set_ylabel("latitude (degrees north)" if geographic else "y (m)")
    ax.legend(
        handles=[
            Patch(facecolor=MASKS["water"], label="water"),
            Patch(facecolor=MASKS["urban"], label="urban"),
            Patch(
                facecolor=MASKS["missing"],
                hatch=MISSING_HATCH,
                edgecolor="#9a9a9a",
                label="input missing (e.g. SMAP swath gap)",
            ),
            Patch(facecolor=MASKS["not_computed"], edgecolor="#9a9a9a", label="not computed"),
        ],
        loc="lower left",
        fontsize="small",
        framealpha=0.9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
