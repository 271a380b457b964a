"""The 90 m truth as a Zarr v2 store that xarray opens (evaluation only, never the pipeline).

``soil_moisture`` (time, lat, lon) float32 m3 m-3, chunks (1, 600, 600),
NaN on water; values quantised to 1e-4 m3 m-3 (numcodecs Quantize) so the
store compresses, far below any error that matters for scoring.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from grids import Grid

TRUTH_NAME = "soil_moisture_90m.zarr"


def truth_path(root: Path) -> Path:
    """``<root>/truth/soil_moisture_90m.zarr``."""
    return root / "truth" / TRUTH_NAME


class TruthWriter:
    """Create the store for ``days`` on ``grid`` and write one day at a time."""

    def __init__(self, path: Path, grid: Grid, days: tuple[dt.date, ...]) -> None:
        import zarr
        from numcodecs import Blosc, Quantize

        self.path = path
        self.days = days
        self._index = {d: i for i, d in enumerate(days)}
        path.parent.mkdir(parents=True, exist_ok=True)
        root = zarr.open_group(str(path), mode="w", zarr_format=2)
        root.attrs.update(
            {
                "title": "smdown synthetic world: true daily 90 m soil moisture",
                "Conventions": "CF-1.8",
                "source": "pipeline.synth (synthetic; never read by the pipeline)",
            }
        )
        h, w = grid.shape
        chunk = (1, min(600, h), min(600, w))
        sm = root.create_array(
            "soil_moisture",
            shape=(len(days), h, w),
            chunks=chunk,
            dtype="f4",
            fill_value=np.nan,
            compressors=Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE),
            filters=[Quantize(digits=4, dtype="f4")],
        )
        sm.attrs.update(
            {
                "_ARRAY_DIMENSIONS": ["time", "lat", "lon"],
                "units": "m3 m-3",
                "long_name": "true volumetric soil moisture, top 5 cm",
                "grid_mapping": "spatial_ref",
            }
        )
        lat = root.create_array("lat", data=grid.y_coords(), chunks=(h,), fill_value=None)
        lat.attrs.update(
            {"_ARRAY_DIMENSIONS": ["lat"], "units": "degrees_north", "standard_name": "latitude"}
        )
        lon = root.create_array("lon", data=grid.x_coords(), chunks=(w,), fill_value=None)
        lon.attrs.update(
            {"_ARRAY_DIMENSIONS": ["lon"], "units": "degrees_east", "standard_name": "longitude"}
        )
        t = root.create_array(
            "time",
            data=np.arange(len(days), dtype=np.int32),
            chunks=(max(1, len(days)),),
            fill_value=None,
        )
        t.attrs.update(
            {
                "_ARRAY_DIMENSIONS": ["time"],
                "units": f"days since {days[0]:%Y-%m-%d}",
                "calendar": "proleptic_gregorian",
                "standard_name": "time",
            }
        )
        ref = root.create_array("spatial_ref", data=np.array(0, dtype=np.int32), fill_value=None)
        ref.attrs.update(
            {
                "_ARRAY_DIMENSIONS": [],
                "crs_wkt": grid.to_wkt(),
                "spatial_ref": grid.to_wkt(),
                "GeoTransform": " ".join(
                    repr(v)
                    for v in (
                        grid.transform[2],
                        grid.transform[0],
                        0.0,
                        grid.transform[5],
                        0.0,
                        grid.transform[4],
                    )
                ),
            }
        )
        self._sm = sm
        self._path = path

    def write(self, date: dt.date, values: np.ndarray) -> None:
        """Store the truth of ``date`` (shape of the grid)."""
        self._sm[self._index[date]] = values

    def close(self) -> None:
        import zarr

        zarr.consolidate_metadata(str(self._path))
