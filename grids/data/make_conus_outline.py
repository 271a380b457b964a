"""Build ``conus_outline.geojson`` (the CONUS outline smdown uses) offline, once.

Source: the U.S. Census Bureau's cartographic boundary files, 2017 edition
(cb_2017_us_state_*, public domain), as redistributed in TopoJSON by the npm
package ``us-atlas`` 3.0.1 (ISC; file ``states-10m.json``: quantized,
simplified for 1:10,000,000, longitude/latitude, NAD83). Reproduce with::

    npm pack us-atlas@3.0.1 && tar xzf us-atlas-3.0.1.tgz
    python grids/data/make_conus_outline.py package/states-10m.json grids/data/conus_outline.geojson

CONUS = the 48 contiguous states and the District of Columbia (every state
FIPS code except 02 Alaska, 15 Hawaii and the territories 60, 66, 69, 72, 78).
The output is one GeoJSON Feature per state (MultiPolygon, exterior rings
counter-clockwise), coordinates rounded to 1e-5 degree (about 1 m, far below
the 1:10M generalisation of the source). This script is not part of the
package's run time: nothing is downloaded when smdown runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

NOT_CONUS = {"02", "15", "60", "66", "69", "72", "78"}


def _decode_arcs(topo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Absolute lon/lat of every arc (TopoJSON: delta-encoded, quantized)."""
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    out = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        out.append(pts)
    return out


def _ring(arcs: list[list[tuple[float, float]]], refs: list[int]) -> list[list[float]]:
    ring: list[tuple[float, float]] = []
    for i in refs:
        pts = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(pts if not ring else pts[1:])  # consecutive arcs share an end point
    return [[round(x, 5), round(y, 5)] for x, y in ring]


def _signed_area(ring: list[list[float]]) -> float:
    return 0.5 * sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)
    )


def build(states_topojson: Path) -> dict[str, Any]:
    topo = json.loads(states_topojson.read_text(encoding="utf-8"))
    arcs = _decode_arcs(topo)
    features = []
    for geom in topo["objects"]["states"]["geometries"]:
        if geom["id"] in NOT_CONUS:
            continue
        polys = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
        rings_out = []
        for poly in polys:
            rings = [_ring(arcs, r) for r in poly]
            # RFC 7946: exterior counter-clockwise, holes clockwise.
            rings = [
                r if (_signed_area(r) > 0) == (k == 0) else r[::-1] for k, r in enumerate(rings)
            ]
            rings_out.append(rings)
        features.append(
            {
                "type": "Feature",
                "id": geom["id"],
                "properties": {"name": geom["properties"]["name"]},
                "geometry": {"type": "MultiPolygon", "coordinates": rings_out},
            }
        )
    features.sort(key=lambda f: f["id"])
    return {
        "type": "FeatureCollection",
        "source": (
            "U.S. Census Bureau cartographic boundary files 2017 (cb_2017_us_state, 1:10M, "
            "public domain) via npm us-atlas 3.0.1 states-10m.json; 48 contiguous states + DC"
        ),
        "features": features,
    }


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.write_text(json.dumps(build(src), separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {dst} ({dst.stat().st_size} bytes)")
