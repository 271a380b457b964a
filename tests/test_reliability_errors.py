"""One line instead of a traceback: export of a damaged cube, an environment override whose
JSON does not parse, a relative store path; and the README's reading recipes, run on a
lazily opened cube that holds a published day and a half-written one."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_reliability_world import MODE, settings

from grids import Grid
from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.cube import (
    DAY_FINAL,
    Cube,
    CubeLayout,
    ModelInfo,
    StoreSpec,
    encode_tile,
    open_cube,
    write_region,
)
from pipeline.errors import ConfigError
from pipeline.run import build_plan

ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -98.0, 0.0, -ARCSEC3, 36.0), (64, 96))
PUBLISHED, HALF_WRITTEN = dt.date(2021, 3, 14), dt.date(2021, 3, 15)
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cube with one final day and one day whose chunks are written but not published."""
    root = tmp_path_factory.mktemp("cube")
    c = Cube(StoreSpec(str(root / "dense-121212121212.zarr")), CubeLayout(GRID, 32, 2021))
    c.create(ModelInfo("dense", "12" * 32, "0.1.0", "test"), 2021)
    mean = np.random.default_rng(7).uniform(0.05, 0.45, GRID.shape).astype(np.float32)
    flags = np.zeros(GRID.shape, np.uint8)
    for day in (PUBLISHED, HALF_WRITTEN):
        write_region(c.spec, c.layout, day, 0, 0, encode_tile(mean, mean * 0.2, mean * 0.1, flags))
    c.set_day_status(PUBLISHED, DAY_FINAL)
    c.consolidate()
    return Path(c.spec.url)


def _damaged(store: Path, tmp_path: Path, what: str) -> Path:
    copy = tmp_path / store.name
    shutil.copytree(store, copy)
    target = copy / what
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return copy


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith("smdown: error: ")
    return err


def test_export_of_a_cube_without_consolidated_metadata_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = _damaged(store, tmp_path, ".zmetadata")
    out = tmp_path / "day.nc"
    rc = main(["export", "--store", str(damaged), "--date", str(PUBLISHED), "--format", "netcdf",
               "--out", str(out)])  # fmt: skip
    err = _one_line_error(capsys, rc)
    assert f"{damaged}: no consolidated metadata (.zmetadata" in err
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["cog", "netcdf", "png"])
def test_export_of_a_cube_without_day_status_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    damaged = _damaged(store, tmp_path, "day_status")
    out = tmp_path / f"day.{fmt}"
    rc = main(["export", "--store", str(damaged), "--date", str(PUBLISHED), "--format", fmt,
               "--out", str(out)])  # fmt: skip
    err = _one_line_error(capsys, rc)
    assert f"{damaged}: no day_status array" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("SMDOWN__CLUSTER__OPTIONS", "{bad", "cluster.options"),
        ("SMDOWN__CLUSTER", "{'n_workers': 2}", "cluster"),
        ("SMDOWN__OUTPUT__STORAGE_OPTIONS", '{"anon": tru}', "output.storage_options"),
    ],
)
def test_env_override_with_a_dict_value_that_does_not_parse_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, key: str
) -> None:
    monkeypatch.delenv("SMDOWN_CONFIG", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings(None)
    msg = str(err.value)
    assert msg.startswith(f"{name}: environment override of '{key}' is not valid JSON (")
    assert "\n" not in msg


def test_relative_store_path_is_resolved_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings(tmp_path)
    s = s.model_copy(update={"output": s.output.model_copy(update={"store": "rel/cube/"})})
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pipeline.run.plan"):
        plan = build_plan(s, mode=MODE)
    assert plan.root.url == str(tmp_path / "rel" / "cube")
    assert plan.cube.url.startswith(str(tmp_path / "rel" / "cube") + "/")
    (line,) = [r.getMessage() for r in caplog.records if "output.store" in r.getMessage()]
    assert line == (
        f"output.store 'rel/cube' is a relative path: resolved against the working "
        f"directory to {tmp_path / 'rel' / 'cube'}"
    )


def _readme_recipe() -> str:
    """The lines of the README's reading example after the one that opens the store."""
    block = README.read_text(encoding="utf-8").split("## Reading the output", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S)
    assert code is not None
    lines = code.group(1).splitlines()
    (i,) = [n for n, line in enumerate(lines) if line.startswith("ds = ")]
    return "\n".join(lines[i + 1 :])


def test_readme_reading_recipes_work_on_a_lazily_opened_cube(store: Path) -> None:
    recipe = _readme_recipe()
    assert "day_status" in recipe
    ds = open_cube(str(store), chunks="zarr")  # dask-backed, as xr.open_zarr gives
    assert ds.soil_moisture.chunks is not None
    # The recipe on a published day: the final days, and the day itself.
    ns: dict[str, object] = {"ds": ds}
    exec(recipe.replace("2020-06-27", str(PUBLISHED)), ns)
    final = ns["final"]
    assert [str(t)[:10] for t in final.time.values] == [str(PUBLISHED)]  # type: ignore[attr-defined]
    assert np.isfinite(ns["day"].soil_moisture.values).all()  # type: ignore[attr-defined]
    # On the half-written day (chunks there, status 0) the recipe refuses to read it.
    assert np.isfinite(ds.soil_moisture.sel(time=str(HALF_WRITTEN)).values).all()
    with pytest.raises(LookupError, match="not published"):
        exec(recipe.replace("2020-06-27", str(HALF_WRITTEN)), {"ds": ds})
    # The old recipe fails on a freshly, lazily opened cube: the reason the README changed.
    fresh = open_cube(str(store), chunks="zarr")
    with pytest.raises(KeyError, match="boolean dask array"):
        fresh.where(fresh.day_status == 2, drop=True)
