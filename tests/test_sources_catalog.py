"""Padding rules, the newest SMAP release, the daily check and one-scan availability."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from _writers_sources import TERRA, write_modis_value, write_smap, write_world

from models.features import CATEGORICALS, FEATURE_NAMES
from pipeline.config import SourcesConfig
from pipeline.sources import Catalog, Source
from pipeline.sources.padding import (
    YEARLY,
    choose_composite,
    composite_length,
    composite_start,
    composite_starts,
)

D = dt.date


# -- padding (paper 3.2) -----------------------------------------------------------------------
def test_composite_grid_restarts_each_year() -> None:
    assert composite_start(D(2020, 6, 5), 8) == D(2020, 6, 1)  # DOY 153 = 1 + 19 * 8
    assert composite_start(D(2021, 1, 3), 8) == D(2021, 1, 1)
    assert composite_start(D(2020, 12, 31), 8) == D(2020, 12, 26)  # DOY 361 in a leap year
    assert composite_length(D(2020, 12, 26), 8) == 6  # leap year: 361..366
    assert composite_length(D(2021, 12, 27), 8) == 5  # 361..365
    assert composite_length(D(2021, 12, 19), 16) == 13  # DOY 353..365
    assert composite_length(D(2020, 1, 1), YEARLY) == 366
    starts = composite_starts(D(2020, 12, 20), D(2021, 1, 10), 8)
    assert starts == [D(2020, 12, 18), D(2020, 12, 26), D(2021, 1, 1), D(2021, 1, 9)]


def test_inside_its_period_a_composite_is_fresh() -> None:
    c = choose_composite(D(2020, 6, 8), [D(2020, 6, 1), D(2020, 6, 9)], 8, 7)
    assert c is not None and (c.start, c.days, c.days_stale) == (D(2020, 6, 1), 8, 0)


def test_missing_next_composite_pads_up_to_the_limit() -> None:
    have = [D(2020, 6, 1)]  # period 6-1..6-8; the 6-9 composite is missing
    c = choose_composite(D(2020, 6, 9), have, 8, 7)
    assert c is not None and c.start == D(2020, 6, 1) and c.days_stale == 1
    c = choose_composite(D(2020, 6, 15), have, 8, 7)
    assert c is not None and c.days_stale == 7
    assert choose_composite(D(2020, 6, 16), have, 8, 7) is None
    # The available next composite always wins over padding.
    c = choose_composite(D(2020, 6, 10), [*have, D(2020, 6, 9)], 8, 7)
    assert c is not None and c.start == D(2020, 6, 9) and c.days_stale == 0
    # A later composite never serves an earlier day; NDVI without padding.
    assert choose_composite(D(2020, 5, 31), have, 8, 7) is None
    assert choose_composite(D(2020, 6, 17), [D(2020, 6, 1)], 16, 0) is None


def test_padding_across_the_year_end() -> None:
    c = choose_composite(D(2021, 1, 2), [D(2020, 12, 26)], 8, 7)
    assert c is not None and c.days == 6 and c.days_stale == 2


# -- catalogue -------------------------------------------------------------------------------
DAYS = [D(2020, 6, 1) + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    write_world(root, DAYS)
    return root


def test_sources_follow_the_feature_contract(world: Path) -> None:
    cat = Catalog.from_root(world, family=TERRA)
    for mode in ("training", "maps"):
        srcs = cat.sources(mode)  # type: ignore[arg-type]
        assert list(srcs) == [*FEATURE_NAMES, *CATEGORICALS]
        assert all(isinstance(s, Source) for s in srcs.values())
        assert all(s.variable == k for k, s in srcs.items())
    rows = {r.variable: r for r in cat.check(DAYS[1], "maps")}
    assert rows["lst"].product == "MOD21A1D" and rows["ndvi"].product == "MOD13Q1"
    rows = {r.variable: r for r in cat.check(DAYS[1], "training")}
    assert rows["lst"].product == "MOD11A2" and rows["ndvi"].product == "MOD13A1"


def test_check_lists_file_age_and_status(world: Path) -> None:
    rows = {r.variable: r for r in Catalog.from_root(world, family=TERRA).check(DAYS[2])}
    assert all(r.status == "ok" for k, r in rows.items() if k != "landcover"), rows
    # Land cover of 2019 serves 2020 (yearly, published late): padded past its year.
    assert rows["landcover"].status == "padded"
    assert rows["landcover"].days_stale == (DAYS[2] - D(2019, 12, 31)).days
    assert rows["smap"].files[0].endswith("SMAP_L3_SM_P_E_20200603_R19240_001.h5")
    assert rows["lst"].age_days == 2 and rows["lst"].days_stale == 0  # composite of 6-1
    assert rows["landcover"].files[0].split(os.sep)[-2] == "2019.01.01"
    assert rows["sand"].age_days is None and rows["elevation"].status == "ok"


def test_check_padded_and_missing(world: Path) -> None:
    day = D(2020, 6, 12)  # the 6-9 composites are absent: LST/ET padded 4 days
    rows = {r.variable: r for r in Catalog.from_root(world, family=TERRA).check(day)}
    assert rows["lst"].status == "padded" and rows["lst"].days_stale == 4
    assert rows["et"].status == "padded" and rows["lst"].age_days == 11
    assert rows["smap"].status == "missing" and rows["precip"].status == "missing"
    # 16-day NDVI of 2020 starts on DOY 145 (5-24, covers to 6-8) and 161 (6-9, absent);
    # NDVI is not padded by default.
    assert rows["ndvi"].status == "missing"


def test_newest_release_chosen_and_recorded(tmp_path: Path) -> None:
    write_smap(tmp_path, DAYS[0], 0.1, 0.1, crid=19240, number=1)
    write_smap(tmp_path, DAYS[0], 0.1, 0.1, crid=19540, number=1)
    (row,) = [
        r for r in Catalog.from_root(tmp_path, family=TERRA).check(DAYS[0]) if r.variable == "smap"
    ]
    assert row.files[0].endswith("R19540_001.h5") and "newest of 2" in row.note


def test_availability_is_one_scan(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_walk = os.walk

    def counting_walk(top: str, *a: object, **k: object):  # type: ignore[no-untyped-def]
        calls.append(str(top))
        return real_walk(top, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "walk", counting_walk)
    cat = Catalog.from_root(world, family=TERRA)
    table = cat.availability(D(2020, 5, 30), D(2020, 6, 20))
    walks = len(calls)
    assert walks <= 3  # SMAP, MODIS, CHIRPS trees: once each, whatever the number of days
    assert table.shape == (22, 12) and list(table.columns[:9]) == list(FEATURE_NAMES)
    assert table.loc["2020-06-02", "smap"] == "ok" and table.loc["2020-06-04", "smap"] == "missing"
    assert (
        table.loc["2020-06-09", "lst"] == "padded" and table.loc["2020-06-16", "lst"] == "missing"
    )
    assert table.loc["2020-05-31", "lst"] == "missing"
    assert (table["sand"] == "ok").all() and (table["landcover"] == "padded").all()
    cat.availability(D(2020, 1, 1), D(2020, 12, 31))
    assert len(calls) == walks  # the inventory is reused


def test_from_settings_overrides_one_product(world: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    write_smap(other, DAYS[0], 0.3, 0.3, crid=20000)
    cfg = SourcesConfig(root=str(world), smap=str(other / "SMAP"), lst_padding_days=0, family=TERRA)
    cat = Catalog.from_settings(cfg)
    rows = {r.variable: r for r in cat.check(DAYS[0])}
    assert "R20000" in rows["smap"].files[0]
    assert rows["ndvi"].status == "ok"
    rows = {r.variable: r for r in cat.check(D(2020, 6, 10))}
    assert rows["lst"].status == "missing"  # no padding configured


def test_native_reads_through_the_catalogue(world: Path) -> None:
    srcs = Catalog.from_root(world, family=TERRA).sources("training")
    bounds = (-97.6, 36.5, -97.4, 36.7)
    lst = srcs["lst"].native(D(2020, 6, 12), bounds)
    assert lst.provenance.days_stale == 4
    et = srcs["et"].native(DAYS[0], bounds)
    assert abs(float(et.data[2, 2]) - 2.0) < 1e-5  # mm/day
    write_modis_value(world, "MOD13A1", D(2020, 6, 17), 0.7)  # after the scan: not seen
    assert srcs["ndvi"].available(D(2020, 6, 17)) is None
