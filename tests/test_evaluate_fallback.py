"""Skill of filled pixels: a hand-made cube read at held-out stations, split by SMAP age."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grids import Grid
from pipeline.cube import (
    DAY_FINAL,
    FALLBACK_BITS,
    Cube,
    CubeLayout,
    ModelInfo,
    StoreSpec,
    encode_tile,
    write_region,
)
from pipeline.evaluate.fallback import (
    age_group,
    coverage_table,
    lst_source,
    sd_by_age,
    skill_by_age,
    skill_by_lst,
    station_days,
)

ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -98.0, 0.0, -ARCSEC3, 36.0), (100, 100))
DAYS = [dt.date(2021, 3, 10) + dt.timedelta(days=i) for i in range(4)]
MODEL = ModelInfo("dense", "34" * 32, "0.1.0", "test")
# Two validation stations (and one training station the tables must ignore).
SITES = {"V1": (10, 10), "V2": (60, 70), "T1": (30, 30)}
SPLIT = {"V1": "validation", "V2": "validation", "T1": "training"}
AGES = [0, 1, 2, 3]  # the SMAP age of every pixel on each day


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("fb")
    c = Cube(StoreSpec(str(root / "dense-343434343434.zarr")), CubeLayout(GRID, 50, 2021))
    c.create(MODEL, 2021)
    rows = []
    obs = []
    for i, (day, age) in enumerate(zip(DAYS, AGES, strict=True)):
        mean = np.full(GRID.shape, 0.20 + 0.01 * i, dtype=np.float32)
        sd = np.full(GRID.shape, 0.02, dtype=np.float32)
        flags = np.zeros(GRID.shape, np.uint8)
        ages = np.full(GRID.shape, age, dtype=np.uint8)
        fb = np.full(GRID.shape, FALLBACK_BITS["smap_earlier"] if age else 0, dtype=np.uint8)
        fb[:, 50:] |= FALLBACK_BITS["lst_composite"]  # V2 has composite LST
        write_region(c.spec, c.layout, day, 0, 0, encode_tile(mean, sd, sd / 2, flags, ages, fb))
        c.write_provenance(
            day,
            {
                "n_land": GRID.size,
                "coverage": 1.0,
                "smap_age_pixels": {str(age): GRID.size},
                "fallback_pixels": {"lst": {"daily": 5000, "composite": 5000}},
                "missing_pixels": {},
            },
        )
        c.set_day_status(day, DAY_FINAL)
        for site, (r, col) in SITES.items():
            # The in-situ error grows with the age: 0.01 * (age + 1), alternating sign.
            sign = 1 if site == "V1" else -1
            obs.append(
                {"site_id": site, "date": day, "sm": 0.20 + 0.01 * i + sign * 0.01 * (age + 1)}
            )
            rows.append(
                {
                    "site_id": site,
                    "date": pd.Timestamp(day),
                    "smap": 0.30 + 0.01 * i,
                    "split": SPLIT[site],
                    "row": r,
                    "col": col,
                }
            )
    c.consolidate()
    return {"cube": c.spec.url, "table": pd.DataFrame(rows), "insitu": pd.DataFrame(obs)}


def test_groups() -> None:
    assert [age_group(a) for a in (0, 1, 2, 3, 7)] == ["0", "1", "2", "3+", "3+"]
    assert age_group(255) is None and age_group(float("nan")) is None
    assert lst_source(0) == "daily" and lst_source(FALLBACK_BITS["lst_composite"]) == "composite"
    both = FALLBACK_BITS["lst_composite"] | FALLBACK_BITS["lst_earlier"]
    assert lst_source(both) == "earlier composite" and lst_source(255) is None


def test_station_days_take_the_cube_and_the_serving_smap(made: dict[str, object]) -> None:
    frame = station_days(made["cube"], made["table"], made["insitu"])  # type: ignore[arg-type]
    assert set(frame["site_id"]) == {"V1", "V2"} and len(frame) == 8
    v1 = frame[frame["site_id"] == "V1"].set_index("date")
    assert v1["pred"].tolist() == pytest.approx([0.20, 0.21, 0.22, 0.23], abs=1e-4)
    assert v1["smap_age"].tolist() == AGES
    # SMAP on the same station-day is the retrieval that served it: age days before.
    day2 = pd.Timestamp(DAYS[2])
    assert v1.loc[day2, "smap"] == pytest.approx(0.30)  # the table's smap of DAYS[0]
    assert v1.loc[pd.Timestamp(DAYS[3]), "smap"] == pytest.approx(0.30)  # 3 days before
    assert set(frame.loc[frame["site_id"] == "V2", "lst_source"]) == {"composite"}


def test_skill_by_age_grows_and_the_sd_fit_follows(made: dict[str, object]) -> None:
    frame = station_days(made["cube"], made["table"], made["insitu"])  # type: ignore[arg-type]
    by_age = skill_by_age(frame)
    assert by_age["age_group"].tolist() == ["0", "1", "2", "3+"]
    got = dict(zip(by_age["age_group"], by_age["rmse"], strict=True))
    assert got["0"] == pytest.approx(0.01, abs=1e-4) and got["2"] == pytest.approx(0.03, abs=1e-4)
    assert by_age.set_index("age_group")["n"].tolist() == [2, 2, 2, 2]
    extra = sd_by_age(by_age)
    assert extra[0] == pytest.approx(np.sqrt(0.02**2 - 0.01**2), abs=2e-4)
    assert extra[1] == pytest.approx(np.sqrt(0.03**2 - 0.01**2), abs=2e-4)
    assert extra[2] == pytest.approx(np.sqrt(0.04**2 - 0.01**2), abs=2e-4)
    assert skill_by_lst(frame).set_index("lst_source").loc["composite", "sites"] == 1


def test_coverage_table_reads_the_provenance(made: dict[str, object]) -> None:
    cov = coverage_table(Path(str(made["cube"])))
    assert cov["date"].tolist() == [d.isoformat() for d in DAYS]
    assert cov["mapped"].tolist() == [1.0] * 4
    assert cov["smap_age_3+"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert cov["lst_composite"].tolist() == pytest.approx([0.5] * 4)
