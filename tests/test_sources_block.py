"""FeatureBlock: every input on one target window, identical for a station and a map tile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from _writers_sources import STATION, TERRA, write_world

from grids.named import named_grid
from models.features import CATEGORICALS, FEATURE_NAMES
from pipeline.sources import Catalog, NativeRaster, Provenance, build_feature_block, sample

DAY = dt.date(2020, 6, 2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    write_world(root, [DAY])
    return root


def _blocks(world: Path, mode: str = "maps"):  # type: ignore[no-untyped-def]
    conus = named_grid("conus-90m")
    row, col = (int(v) for v in conus.xy_to_rowcol(*STATION))
    tile = conus.window(row - 60, row + 60, col - 70, col + 50)  # a 120 x 120 map tile
    station = conus.window(row, row + 1, col, col + 1)  # the station's pixel
    srcs = Catalog.from_root(world, family=TERRA).sources(mode)  # type: ignore[arg-type]
    out = []
    for target in (tile, station):
        inputs = {name: s.native(DAY, target.bounds) for name, s in srcs.items()}
        out.append(build_feature_block(inputs, target))
    return out


@pytest.mark.parametrize("mode", ["maps", "training"])
def test_station_pixel_equals_tile_pixel(world: Path, mode: str) -> None:
    big, one = _blocks(world, mode)
    assert big.x.shape == (len(FEATURE_NAMES), 120, 120) and big.x.dtype == np.float32
    assert one.x.shape == (len(FEATURE_NAMES), 1, 1)
    assert big.cats.shape == (len(CATEGORICALS), 120, 120) and big.cats.dtype == np.int16
    # The station sits at tile row 60, col 70: bit-identical features and codes.
    assert np.array_equal(big.x[:, 60, 70], one.x[:, 0, 0])
    assert np.array_equal(big.cats[:, 60, 70], one.cats[:, 0, 0])
    assert not one.missing[0, 0]
    vec = dict(zip(FEATURE_NAMES, one.x[:, 0, 0].tolist(), strict=True))
    assert vec["sand"] == pytest.approx(42.3, abs=1e-4) and vec["elevation"] == 320.0
    assert vec["smap"] == pytest.approx(0.2) and vec["et"] == pytest.approx(2.0, abs=1e-5)
    assert one.cats[:, 0, 0].tolist() == [7, 10, 14]  # loam, grasslands, Cfa
    prov = one.provenance["lst"]
    assert prov is not None and prov.product == ("MOD21A1D" if mode == "maps" else "MOD11A2")


def test_every_pixel_of_a_window_matches_the_one_pixel_read(world: Path) -> None:
    conus = named_grid("conus-90m")
    row, col = (int(v) for v in conus.xy_to_rowcol(*STATION))
    tile = conus.window(row - 20, row + 20, col - 20, col + 20)
    src = Catalog.from_root(world, family=TERRA).sources("maps")["ndvi"]
    big = sample(src.native(DAY, tile.bounds), tile)
    rng = np.random.default_rng(0)
    for r, c in rng.integers(0, 40, size=(15, 2)):
        one = conus.window(row - 20 + r, row - 19 + r, col - 20 + c, col - 19 + c)
        assert sample(src.native(DAY, one.bounds), one)[0, 0] == big[r, c]


def test_arrays_are_taken_as_on_target_and_missing_is_flagged() -> None:
    target = named_grid("conus-90m").window(1000, 1004, 2000, 2005)
    inputs: dict[str, NativeRaster | np.ndarray] = {
        n: np.full(target.shape, i + 1.0, np.float32) for i, n in enumerate(FEATURE_NAMES)
    }
    inputs["smap"] = inputs["smap"].copy()
    inputs["smap"][0, 0] = np.nan
    inputs["koppen"] = np.full(target.shape, 14.0, np.float32)
    block = build_feature_block(inputs, target)
    assert block.x[:, 1, 1].tolist() == [float(i + 1) for i in range(len(FEATURE_NAMES))]
    assert block.missing.sum() == 1 and block.missing[0, 0]
    assert (block.cats[0] == -1).all() and (block.cats[2] == 14).all()
    assert block.missing_any.all()  # texture and land cover absent
    assert block.provenance["smap"] is None and block.provenance["texture"] is None
    with pytest.raises(ValueError, match="elevation"):
        build_feature_block({k: v for k, v in inputs.items() if k != "elevation"}, target)
    with pytest.raises(ValueError, match="not on the target grid"):
        build_feature_block({**inputs, "ph": np.zeros((2, 2), np.float32)}, target)


def test_native_window_is_sampled_with_nan_outside() -> None:
    lattice = named_grid("conus-90m")
    native = NativeRaster(
        lattice.window(0, 2, 0, 2),
        np.array([[1, 2], [3, 4]], np.float32),
        Provenance("x", (), "test"),
        lattice,
        (0, 0),
    )
    target = lattice.window(1, 3, 1, 3)
    out = sample(native, target)
    assert out[0, 0] == 4 and np.isnan(out[1, 1])
