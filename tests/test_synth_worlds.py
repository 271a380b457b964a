"""The named synthetic worlds: the demo world unchanged, the humid-east world wetter."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.demo import _world_is_current
from pipeline.synth.spec import HUMID_EAST_REGION, SynthError, demo_spec, world_spec
from pipeline.synth.world import coarse_weather


def test_demo_world_is_the_default_spec_and_humid_east_rains_more() -> None:
    assert world_spec("demo") == demo_spec()
    demo = world_spec("demo", region=HUMID_EAST_REGION, seed=7)
    east = world_spec("humid-east", region=HUMID_EAST_REGION, seed=7)
    assert east.rain_factor == 1.6
    rain: dict[str, list[np.ndarray]] = {"demo": [], "east": []}
    for i in range(0, 60, 3):
        day = dt.date(2020, 4, 1) + dt.timedelta(days=i)
        rain["demo"].append(coarse_weather(demo, day, 1000, 1900, (40, 40))["rain"])
        rain["east"].append(coarse_weather(east, day, 1000, 1900, (40, 40))["rain"])
    d, e = np.stack(rain["demo"]), np.stack(rain["east"])
    # Same storms (same seed and region), 1.6 times the amount.
    np.testing.assert_allclose(e, 1.6 * d, rtol=1e-5, atol=1e-6)
    with pytest.raises(SynthError, match="world: 'wet'"):
        world_spec("wet")
    with pytest.raises(SynthError, match="rain_factor"):
        world_spec("demo", rain_factor=0.0)


def test_demo_does_not_reuse_a_world_of_another_climate(tmp_path: Path) -> None:
    spec = world_spec("humid-east", region=HUMID_EAST_REGION, seed=7)
    (tmp_path / "truth").mkdir()
    info = {
        "seed": 7,
        "region": list(HUMID_EAST_REGION),
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
        "rain_factor": 1.6,
        "family": spec.family,
    }
    (tmp_path / "world.json").write_text(json.dumps(info))
    assert _world_is_current(tmp_path, spec)
    assert not _world_is_current(tmp_path, world_spec("demo", region=HUMID_EAST_REGION, seed=7))
    info.pop("rain_factor")  # a world written before rain_factor existed is the demo climate
    (tmp_path / "world.json").write_text(json.dumps(info))
    assert _world_is_current(tmp_path, world_spec("demo", region=HUMID_EAST_REGION, seed=7))
