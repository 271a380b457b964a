"""The variable registry (models.variables) is the one place the inputs are listed.

Feature order, the tile's daily inputs, the static stack, quality flags, products, ranges,
table columns and docs/variables.md all derive from it; a covariate added through the
registry alone (plus its product reader) is read, sampled, fed to the model at its place
and published by a real day run on the synthetic world.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from models import features, variables
from models.features import CATEGORY_TABLES

SRC = Path(__file__).resolve().parents[1]


def test_the_paper_order_is_the_registry_order() -> None:
    # The paper's order is a model contract (Poehls et al. 2025); stated here on purpose.
    assert features.FEATURE_NAMES == (
        "smap", "ndvi", "lst", "precip", "sand", "clay", "ph", "et", "elevation",
    )  # fmt: skip
    assert features.FEATURE_NAMES == tuple(v.name for v in variables.feature_variables())
    assert features.CATEGORICALS == ("texture", "landcover", "koppen")
    assert variables.daily_names() == ("smap", "ndvi", "lst", "precip", "et")
    assert [f.unit for f in features.FEATURES] == [
        variables.variable(n).unit for n in features.FEATURE_NAMES
    ]


def test_everything_derived_agrees_with_the_registry() -> None:
    from pipeline.cube import FLAG_BITS
    from pipeline.cube.encoding import variable_attrs
    from pipeline.run.static import STATIC_CODES, STATIC_FLOAT, STATIC_READ
    from pipeline.run.tile import DAILY, MISSING_FLAGS, PADDED_FLAGS
    from pipeline.sources.base import PHYSICAL_RANGE
    from pipeline.sources.catalog import PRODUCTS, STATIC
    from pipeline.table.build import STATIC_LAYERS
    from pipeline.table.schema import COLUMNS

    assert FLAG_BITS == {
        "smap_missing": 1, "lst_padded": 2, "ndvi_padded": 4, "et_padded": 8,
        "input_missing": 16, "water": 32, "urban": 64,
    }  # fmt: skip
    attrs = variable_attrs("quality_flag")
    assert attrs["flag_meanings"].split() == list(FLAG_BITS)
    assert attrs["valid_range"] == [0, 127]
    assert DAILY == variables.daily_names()
    assert MISSING_FLAGS == {"smap": "smap_missing"}
    assert PADDED_FLAGS == {"ndvi": "ndvi_padded", "lst": "lst_padded", "et": "et_padded"}
    assert STATIC_FLOAT == ("sand", "clay", "ph", "elevation")
    assert STATIC_CODES == features.CATEGORICALS
    assert STATIC_READ == ("sand", "clay", "ph", "elevation", "landcover", "koppen")
    assert set(STATIC) == set(STATIC_LAYERS) == {
        "sand", "clay", "ph", "elevation", "texture", "koppen"
    }  # fmt: skip
    # The default family is VIIRS Suomi NPP; MODIS Terra stays for history.
    assert variables.DEFAULT_FAMILY == "viirs-snpp"
    assert PRODUCTS["training"]["lst"] == "VNP21A2" and PRODUCTS["maps"]["lst"] == "VNP21A1D"
    assert PRODUCTS["training"]["ndvi"] == "VNP13A1" == PRODUCTS["maps"]["ndvi"]
    terra = variables.family_products("modis-terra")
    assert terra["training"]["lst"] == "MOD11A2" and terra["maps"]["lst"] == "MOD21A1D"
    assert terra["training"]["ndvi"] == "MOD13A1" and terra["maps"]["ndvi"] == "MOD13Q1"
    aqua = variables.family_products("modis-aqua")
    assert aqua["training"]["et"] == "MYD16A2" and aqua["maps"]["ndvi"] == "MYD13Q1"
    assert set(PRODUCTS["maps"]) == set(variables.names())
    assert PHYSICAL_RANGE == variables.physical_ranges()
    assert list(PHYSICAL_RANGE) == list(features.FEATURE_NAMES)
    for name in (*features.FEATURE_NAMES, *features.CATEGORICALS):
        assert name in COLUMNS
    # Categorical ranges are the code tables'.
    for name in features.CATEGORICALS:
        codes = CATEGORY_TABLES[name]
        assert variables.variable(name).valid_range == (min(codes), max(codes))


def test_the_docs_table_is_the_registry() -> None:
    page = (SRC / "docs" / "variables.md").read_text(encoding="utf-8")
    assert page == variables.docs_page(), "regenerate: python -m models.variables > docs/..."
    assert "| `lst` | daily | degC | -90 .. 70 | MOD11A2 | MOD21A1D |" in page


def test_registration_is_refused_after_the_registry_was_read() -> None:
    var = variables.Variable(
        "late", "1", "too late", "daily", (0.0, 1.0), {variables.ANY_FAMILY: {}}
    )
    with pytest.raises(RuntimeError, match="'late': the registry was already read"):
        variables.register(var)


def test_every_catalog_product_has_a_reader() -> None:
    from pipeline.sources.catalog import PRODUCT_BUILDERS

    for mode in variables.MODES:
        for fam in variables.FAMILIES:
            for name, product in variables.products(mode, fam).items():
                assert product in PRODUCT_BUILDERS, (name, product)


DUMMY_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, json, sys
    from pathlib import Path
    import numpy as np

    # 1. The registry entries: one daily and one static covariate (nothing else edited).
    from models import variables as V
    for name, kind in (("dummy_daily", "daily"), ("dummy_static", "static")):
        V.register(V.Variable(name, "1", f"test {kind} covariate", kind, (0.0, 10.0),
                              {V.ANY_FAMILY: {"training": name.upper(), "maps": name.upper()}}))

    # 2. Their product readers: an analytic field on a 0.01 degree lattice.
    from grids import Grid
    from pipeline.sources.base import NativeRaster, Provenance, window_rows_cols
    from pipeline.sources.catalog import register_product

    LATTICE = Grid("EPSG:4326", (0.01, 0.0, -98.0, 0.0, -0.01, 36.0), (100, 100))

    class DummySource:
        def __init__(self, variable, static):
            self.variable, self.static = variable, static

        def available(self, date):
            start = None if self.static else date
            return Provenance(self.variable, (f"dummy/{self.variable}",), "DUMMY",
                              composite_start=start)

        def native(self, date, bounds):
            rc = window_rows_cols(LATTICE, bounds, 2)
            win = LATTICE.window(*rc)
            x, y = win.pixel_centres()
            data = (1.0 + 10.0 * (x + 97.7) if self.static else 2.0 + 0.0 * x)
            return NativeRaster(win, data.astype(np.float32), self.available(date),
                                lattice=LATTICE, offset=(rc[0], rc[2]))

    for name, static in (("dummy_daily", False), ("dummy_static", True)):
        register_product(name.upper(),
                         lambda cat, var, mode, built, s=static: DummySource(var.name, s))

    # 3. A model that takes the eleven features and maps the two new ones.
    from models.features import FEATURE_NAMES

    class Pred:
        def __init__(self, m):
            self.mean, self.sd, self.spread = m, m * 0 + 0.01, m * 0 + 0.001

    class Model:
        manifest_hash = "cd" * 32
        needs_categoricals = False
        def predict(self, x, cats=None):
            assert x.shape[1] == len(FEATURE_NAMES) == 11, x.shape
            i, j = FEATURE_NAMES.index("dummy_daily"), FEATURE_NAMES.index("dummy_static")
            return Pred((0.01 * x[:, i] * x[:, j]).astype(np.float32))

    from distributed import Client
    from pipeline.config import Settings
    from pipeline.cube import open_cube
    from pipeline.run import build_plan, run_day
    from pipeline.run.tile import DAILY
    from pipeline.table.schema import COLUMNS

    world, out = Path(sys.argv[1]), Path(sys.argv[2])
    region = [-97.7, 35.3, -97.5, 35.5]
    s = Settings(sources={"root": str(world)},
                 grid={"name": "conus-90m", "region": region, "tile_size": 128},
                 models={"dir": str(out / "m"), "arch": "rf"},
                 output={"store": str(out / "cube"), "chunk_size": 64, "first_year": 2020},
                 cluster={"n_workers": 1, "dashboard": False})
    day = dt.date(2020, 6, 1)
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=None) as client:
        plan = build_plan(s, mode="training", model_loader=lambda d: Model())
        res = run_day(s, day, client=client, plan=plan, today=dt.date(2020, 7, 1))
    ds = open_cube(plan.cube.url).sel(time=str(day))
    sm = ds.soil_moisture.values
    lon = ds.lon.values
    ok = np.isfinite(sm)
    expect = 0.02 * (1.0 + 10.0 * (np.floor((lon + 98.0) / 0.01) * 0.01 + 0.005 - 0.3))
    err = np.abs(sm - np.broadcast_to(expect, sm.shape))[ok]
    print(json.dumps({
        "features": list(FEATURE_NAMES), "daily": list(DAILY),
        "in_table": [c for c in COLUMNS if c.startswith("dummy")],
        "coverage": res.coverage, "n_ok": int(ok.sum()), "max_err": float(err.max()),
        "inputs": sorted(res.inputs) if hasattr(res, "inputs") else None,
    }))
    """
)


def test_a_covariate_added_through_the_registry_runs_a_tile(tmp_path: Path) -> None:
    import datetime as dt
    import json

    from pipeline.synth import WorldSpec, write_world

    world = tmp_path / "world"
    day = dt.date(2020, 6, 1)
    spec = WorldSpec(
        region=(-97.7, 35.3, -97.5, 35.5), start=day, end=day, seed=3,
        n_stations=1, n_ameriflux=1, spinup_days=2,
    )  # fmt: skip
    write_world(spec, world)
    script = tmp_path / "dummy.py"
    script.write_text(DUMMY_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(world), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["features"][-2:] == ["dummy_daily", "dummy_static"]
    assert got["features"][:9] == list(features.FEATURE_NAMES)
    assert got["daily"][-1] == "dummy_daily"
    assert got["in_table"] == ["dummy_daily", "dummy_static"]
    assert got["coverage"] > 0 and got["n_ok"] > 1000
    # Published = 0.01 * daily * static (nearest sampling of the 0.01 degree lattice),
    # within the 1e-4 packing step.
    assert got["max_err"] <= 0.6e-4, got
