"""VIIRS products of the synthetic world as HDF-EOS5 grid tiles, in the real layout.

One ``.h5`` per tile and composite: ``HDFEOS/GRIDS/<grid>/Data Fields/<layer>`` for the
science layer and its QC, the grid in ``HDFEOS INFORMATION/StructMetadata.0``
(UpperLeftPointMtrs, LowerRightMtrs, HE5_GCTP_SNSOID, as the real VNP21A1D granules in
the test data carry it), ``scale_factor``/``add_offset``/``valid_range`` and the fill on
each dataset (spelt ``_Fillvalue`` on LST layers as the real granules do, ``_FillValue``
elsewhere; QC layers of LST carry the string ``n/a``), and the root attributes
``ShortName``, ``RangeBeginningDate``, ``PlatformShortName`` and the tile numbers.
Chunks never written are not stored (HDF5 fill value), so a world covering a corner of
a tile costs only that corner.

The values come from the same simulation as the MODIS writer (``pipeline.synth.modis``):
the layers are given in MODIS naming (science layer first, QC second) and renamed here.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from pipeline.sources.viirs import COLLECTION, LAYOUTS, PLATFORMS, PRODUCTS
from pipeline.synth import lattices
from pipeline.synth.modis import ModisCells

VALID_RANGE: dict[str, tuple[int, int]] = {
    "lst": (7500, 65535),
    "ndvi": (-10000, 10000),
    "et": (-32767, 32700),
}
CHUNK = 400


def tile_path(root: Path, short: str, start: dt.date, h: int, v: int, stamp: str) -> Path:
    """``<root>/VIIRS/<SHORT>.002/YYYY.MM.DD/<SHORT>.AYYYYDDD.hHHvVV.002.<stamp>.h5``."""
    doy = start.timetuple().tm_yday
    name = f"{short}.A{start.year}{doy:03d}.h{h:02d}v{v:02d}.{COLLECTION}.{stamp}.h5"
    return root / "VIIRS" / f"{short}.{COLLECTION}" / f"{start:%Y.%m.%d}" / name


def struct_metadata(grid_name: str, n: int, h: int, v: int, fields: list[tuple[str, str]]) -> str:
    """The HDF-EOS5 ``StructMetadata.0`` text of one sinusoidal tile of ``n`` x ``n`` cells."""
    tile = lattices.MODIS_TILE
    ulx = lattices.MODIS_X0 + h * tile
    uly = lattices.MODIS_Y0 - v * tile
    lines = [
        "GROUP=SwathStructure",
        "END_GROUP=SwathStructure",
        "GROUP=GridStructure",
        "\tGROUP=GRID_1",
        f'\t\tGridName="{grid_name}"',
        f"\t\tXDim={n}",
        f"\t\tYDim={n}",
        f"\t\tUpperLeftPointMtrs=({ulx:.6f},{uly:.6f})",
        f"\t\tLowerRightMtrs=({ulx + tile:.6f},{uly - tile:.6f})",
        "\t\tProjection=HE5_GCTP_SNSOID",
        "\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)",
        "\t\tSphereCode=-1",
        "\t\tGridOrigin=HE5_HDFE_GD_UL",
        "\t\tGROUP=DataField",
    ]
    for i, (name, h5type) in enumerate(fields, start=1):
        lines += [
            f"\t\t\tOBJECT=DataField_{i}",
            f'\t\t\t\tDataFieldName="{name}"',
            f"\t\t\t\tDataType={h5type}",
            '\t\t\t\tDimList=("YDim","XDim")',
            f"\t\t\tEND_OBJECT=DataField_{i}",
        ]
    lines += ["\t\tEND_GROUP=DataField", "\tEND_GROUP=GRID_1", "END_GROUP=GridStructure", "END"]
    return "\n".join(lines) + "\n"


_H5TYPES = {
    "uint8": "H5T_NATIVE_UCHAR",
    "int8": "H5T_NATIVE_SCHAR",
    "uint16": "H5T_NATIVE_USHORT",
    "int16": "H5T_NATIVE_SHORT",
}


def write_tiles(
    root: Path,
    short: str,
    start: dt.date,
    stamp: str,
    cells: ModisCells,
    layers: dict[str, tuple[np.ndarray, int | float, float | None]],
) -> list[Path]:
    """Write one HDF-EOS5 file per tile of ``cells``; ``layers`` as ``synth.modis`` makes them.

    ``layers``: (science layer, QC layer) in that order, name -> (block raw values, fill,
    scale); the names are replaced by the VIIRS product's, the science fill by its fill.
    """
    import h5py

    prod = PRODUCTS[short]
    (sci_block, sci_fill, sci_scale), (qc_block, qc_fill, _qs) = list(layers.values())[:2]
    fill = prod.fills[0]
    sci = np.where(sci_block == sci_fill, fill, sci_block).astype(sci_block.dtype)
    period = prod.period_days
    end = start + dt.timedelta(days=max(period, 1) - 1)
    written: list[Path] = []
    i = cells.index
    for h, v in cells.tiles:
        tr0, tc0 = v * cells.n, h * cells.n
        br0, br1 = max(i.r0, tr0), min(i.r0 + i.height, tr0 + cells.n)
        bc0, bc1 = max(i.c0, tc0), min(i.c0 + i.width, tc0 + cells.n)
        rs = slice(br0 - tr0, br1 - tr0)
        cs = slice(bc0 - tc0, bc1 - tc0)
        src = (slice(br0 - i.r0, br1 - i.r0), slice(bc0 - i.c0, bc1 - i.c0))
        path = tile_path(root, short, start, h, v, stamp)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".h5.tmp")
        fields = [
            (prod.layer, _H5TYPES[sci.dtype.name]),
            (str(prod.qc_layer), _H5TYPES[qc_block.dtype.name]),
        ]
        with h5py.File(tmp, "w") as f:
            f.attrs["ShortName"] = np.bytes_(short)
            f.attrs["RangeBeginningDate"] = np.bytes_(start.isoformat())
            f.attrs["RangeEndingDate"] = np.bytes_(end.isoformat())
            f.attrs["PlatformShortName"] = np.bytes_(PLATFORMS[short[:3]])
            f.attrs["HorizontalTileNumber"] = np.bytes_(f"{h:02d}")
            f.attrs["VerticalTileNumber"] = np.bytes_(f"{v:02d}")
            text = struct_metadata(LAYOUTS[short].grid, cells.n, h, v, fields)
            f.create_dataset("HDFEOS INFORMATION/StructMetadata.0", data=np.bytes_(text))
            g = f.create_group(f"HDFEOS/GRIDS/{LAYOUTS[short].grid}/Data Fields")
            chunk = min(CHUNK, cells.n)
            for name, block, fv, scale, is_qc in (
                (prod.layer, sci, fill, sci_scale, False),
                (str(prod.qc_layer), qc_block, qc_fill, None, True),
            ):
                ds = g.create_dataset(
                    name,
                    shape=(cells.n, cells.n),
                    dtype=block.dtype,
                    chunks=(chunk, chunk),
                    compression="gzip",
                    compression_opts=1,
                    fillvalue=fv,
                )
                ds[rs, cs] = block[src]
                lst = prod.kind == "lst"
                if is_qc:
                    ds.attrs["_Fillvalue" if lst else "_FillValue"] = (
                        np.bytes_("n/a") if lst else np.array([fv], dtype=block.dtype)
                    )
                    ds.attrs["scale_factor"] = np.array([1.0])
                else:
                    lo, hi = VALID_RANGE[prod.kind]
                    ds.attrs["_Fillvalue" if lst else "_FillValue"] = np.array(
                        [fv], dtype=block.dtype
                    )
                    ds.attrs["scale_factor"] = np.array([float(scale or 1.0)])
                    ds.attrs["valid_range"] = np.array([lo, hi], dtype=block.dtype)
                ds.attrs["add_offset"] = np.array([0.0])
        tmp.replace(path)
        written.append(path)
    return written
