"""``smdown synth`` end to end on tiny worlds: same seed, same data; another seed, another world."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from pipeline.cli import main

ARGS = [
    "synth",
    "--region=-97.8,35.2,-97.6,35.4",
    "--start=2020-04-01",
    "--end=2020-04-03",
    "--stations=4",
    "--ameriflux=1",
]


def _arrays(root: Path) -> dict[str, np.ndarray]:
    """The data arrays of every CHIRPS and SMAP file of a world (not the file bytes).

    SMAP is read over rows 300-420, columns 820-940 of the global grid (Oklahoma);
    elsewhere the files hold fill only.
    """
    out: dict[str, np.ndarray] = {}
    for p in sorted((root / "CHIRPS").rglob("*.tif")):
        with rasterio.open(p) as src:
            out[p.name] = src.read(1)
    for p in sorted((root / "SMAP").rglob("*.h5")):
        with h5py.File(p, "r") as f:
            for g in ("AM", "PM"):
                grp = f[f"Soil_Moisture_Retrieval_Data_{g}"]
                for name in grp:
                    out[f"{p.name}/{g}/{name}"] = grp[name][300:420, 820:940]
    return out


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        root = tmp_path_factory.mktemp(f"world_{name}")
        assert main([*ARGS, f"--seed={seed}", f"--out={root}"]) == 0
        out[name] = root
    return out


def test_cli_writes_a_world_and_reports_it(
    worlds: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    meta = json.loads((worlds["a"] / "world.json").read_text())
    assert meta["region"] == [-97.8, 35.2, -97.6, 35.4]
    assert meta["start"] == "2020-04-01" and meta["end"] == "2020-04-03"
    assert len(list((worlds["a"] / "CHIRPS").rglob("*.tif"))) == 3
    assert len(list((worlds["a"] / "AmeriFlux").glob("*.zip"))) == 1


def test_same_seed_same_arrays_other_seed_other_world(worlds: dict[str, Path]) -> None:
    a, b, c = (_arrays(worlds[k]) for k in "abc")
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # station files are byte-identical too
    for p in sorted((worlds["a"] / "ISMN").rglob("*.stm")):
        assert p.read_bytes() == (worlds["b"] / p.relative_to(worlds["a"])).read_bytes()
    shared = [k for k in a if k in c and k.endswith(("soil_moisture", ".tif"))]
    assert shared
    assert any(not np.array_equal(a[k], c[k]) for k in shared if k.endswith(".tif"))
    assert any(not np.array_equal(a[k], c[k]) for k in shared if "soil_moisture" in k)


def test_bad_region_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["synth", "--region=-97,35,-98", f"--out={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "--region" in err
    code = main(["synth", "--region=-97,36,-98,35", f"--out={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "region" in err and "Traceback" not in err
    code = main(["synth", "--start=2020-13-01", f"--out={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--start" in err


def test_family_picks_the_native_format(
    worlds: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default family (viirs-snpp): HDF-EOS5 tiles under VIIRS/, no MODIS NDVI/LST/ET.
    meta = json.loads((worlds["a"] / "world.json").read_text())
    assert meta["family"] == "viirs-snpp"
    daily = sorted((worlds["a"] / "VIIRS" / "VNP21A1D.002").rglob("*.h5"))
    tiles = {p.name.split(".")[2] for p in daily}
    assert tiles == {"h09v05", "h10v05"}  # the region straddles the tile edge at -97.7
    assert len(daily) == 3 * 2 and all(p.read_bytes()[:4] == b"\x89HDF" for p in daily)
    assert not list((worlds["a"] / "MODIS").glob("MOD21A1D.061"))
    # MODIS Aqua: the MYD GeoTIFF layers.
    assert main([*ARGS, "--family=modis-aqua", f"--out={tmp_path / 'aqua'}"]) == 0
    assert "family modis-aqua" in capsys.readouterr().out
    aqua = sorted((tmp_path / "aqua" / "MODIS" / "MYD21A1D.061").rglob("*_LST_1KM.tif"))
    assert len(aqua) == 3 * 2
    assert not (tmp_path / "aqua" / "VIIRS").exists()
    # An unknown family: one line naming it and the choices.
    code = main([*ARGS, "--family=viirs-x", f"--out={tmp_path / 'bad'}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "viirs-x" in err and "viirs-noaa20" in err
