"""A synthetic world in the real products' formats, with a known 90 m truth.

``write_world(spec, out)`` writes SMAP, MODIS, CHIRPS, SoilGrids, MERIT,
Koeppen, ISMN and AmeriFlux files exactly as docs/data-layout.md describes
(the readers have no branch for synthetic data), plus the true daily 90 m
soil moisture as Zarr and ``world.json`` (evaluation only).
``static_tile``/``daily_tile`` generate any window of the same world lazily.
"""

from pipeline.synth.spec import WORLDS, SynthError, WorldSpec, demo_spec, world_spec
from pipeline.synth.world import DailyModel, daily_tile, static_tile
from pipeline.synth.write import WorldManifest, write_world

__all__ = [
    "WORLDS",
    "DailyModel",
    "SynthError",
    "WorldManifest",
    "WorldSpec",
    "daily_tile",
    "demo_spec",
    "static_tile",
    "world_spec",
    "write_world",
]
