"""A local emulation of NASA's Earthdata services, for the fetcher tests (never the internet).

Two HTTP servers on 127.0.0.1 (two ports: two hosts, as far as a client can tell):

- ``data``: CMR's granule search ``GET /search/granules.umm_json`` (UMM-G JSON, filters
  ``short_name``, ``version``, ``provider``, ``temporal``, ``bounding_box``; paging by
  ``page_size`` and the ``CMR-Search-After`` header; ``CMR-Hits``; 400 with
  ``{"errors": [...]}`` for a bad request as CMR answers), the DAAC's protected files
  ``/<bucket>/...`` (401 without the bearer token, else a 307 redirect to a pre-signed URL
  on the download host), ``GET /s3credentials`` and URS's
  ``POST /api/users/find_or_create_token`` (basic authentication).
- ``dl``: the download host the DAAC redirects to (S3/CloudFront in reality): refuses a
  request that carries an ``Authorization`` header besides its signature (as S3 does:
  "Only one auth mechanism allowed"), honours ``Range: bytes=N-`` with 206.

Faults are queued per path: ``"503"`` (with ``Retry-After: 7``), ``"truncate"`` (the
announced length, half the bytes, then the connection closes), ``"ignore-range"``.
Every request is logged with its headers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "edl-token-for-tests"
USER, PASSWORD = "tester", "secret"
S3_CREDS = {
    "accessKeyId": "test",
    "secretAccessKey": "test",
    "sessionToken": "session-for-tests",
    "expiration": "2030-01-01 00:00:00+00:00",
}
BUCKETS = {"LPCLOUD": "lp-prod-protected", "NSIDC_CPRD": "nsidc-cumulus-prod-protected"}


@dataclass
class Logged:
    server: str
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Earthdata:
    """What the emulated services hold; the tests fill it and read the log."""

    data_url: str = ""
    dl_url: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    after: dict[str, int] = field(default_factory=dict)
    public: dict[str, bytes] = field(default_factory=dict)
    """Paths served to anyone (plain HTTPS archives such as CHIRPS)."""

    def add(
        self,
        short: str,
        version: str,
        name: str,
        day: dt.date,
        data: bytes,
        *,
        days: int = 1,
        provider: str = "LPCLOUD",
        bbox: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0),
        checksum: str | None = "MD5",
        extra_links: bool = True,
    ) -> str:
        """Publish one granule of one data file; its HTTPS path on the data host."""
        ur = name.rsplit(".", 1)[0]
        bucket = BUCKETS[provider]
        path = f"/{bucket}/{short}.{version}/{ur}/{name}"
        self.files[path] = data
        end = day + dt.timedelta(days=days - 1)
        links = [
            {"URL": f"{self.data_url}{path}", "Type": "GET DATA"},
            {"URL": f"s3://{bucket}/{short}.{version}/{ur}/{name}",
             "Type": "GET DATA VIA DIRECT ACCESS"},
        ]  # fmt: skip
        if extra_links:
            links += [
                {"URL": f"{self.data_url}{path[: -len(name)]}{ur}.cmr.xml",
                 "Type": "EXTENDED METADATA"},
                {"URL": f"{self.data_url}{path[: -len(name)]}{ur}.1.jpg",
                 "Type": "GET RELATED VISUALIZATION"},
                {"URL": f"{self.data_url}{path}.qa", "Type": "GET DATA"},
            ]  # fmt: skip
        info: dict[str, Any] = {
            "Name": name,
            "SizeInBytes": len(data),
            "Size": round(len(data) / 2**20, 2),
            "SizeUnit": "MB",
        }
        if checksum == "MD5":
            info["Checksum"] = {"Value": hashlib.md5(data).hexdigest(), "Algorithm": "MD5"}
        elif checksum == "SHA-256":
            info["Checksum"] = {"Value": hashlib.sha256(data).hexdigest(), "Algorithm": "SHA-256"}
        w, s, e, n = bbox
        self.items.append(
            {
                "meta": {
                    "concept-id": f"G{1000 + len(self.items)}-{provider}",
                    "provider-id": provider,
                    "native-id": ur,
                },
                "umm": {
                    "GranuleUR": ur,
                    "CollectionReference": {"ShortName": short, "Version": version},
                    "TemporalExtent": {
                        "RangeDateTime": {
                            "BeginningDateTime": f"{day:%Y-%m-%d}T00:00:00.000Z",
                            "EndingDateTime": f"{end:%Y-%m-%d}T23:59:59.000Z",
                        }
                    },
                    "SpatialExtent": {
                        "HorizontalSpatialDomain": {
                            "Geometry": {
                                "BoundingRectangles": [
                                    {
                                        "WestBoundingCoordinate": w,
                                        "SouthBoundingCoordinate": s,
                                        "EastBoundingCoordinate": e,
                                        "NorthBoundingCoordinate": n,
                                    }
                                ]
                            }
                        }
                    },
                    "RelatedUrls": links,
                    "DataGranule": {
                        "ArchiveAndDistributionInformation": [info],
                        "DayNightFlag": "Day",
                        "ProductionDateTime": "2024-01-01T00:00:00.000Z",
                    },
                },
            }
        )
        return path

    # -- CMR ---------------------------------------------------------------------------
    def search(self, query: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        after = headers.get("CMR-Search-After")
        if after and "page_num" in q:
            return 400, {}, {"errors": ["page_num is not allowed with CMR-Search-After"]}
        try:
            page_size = int(q.get("page_size", "10"))
        except ValueError:
            return 400, {}, {"errors": [f"page_size must be a number: {q['page_size']}"]}
        if not 0 <= page_size <= 2000:
            return 400, {}, {"errors": ["page_size must be a number between 0 and 2000"]}
        begin = end = None
        if "temporal" in q:
            try:
                a, b = q["temporal"].split(",")[:2]
                begin = dt.datetime.fromisoformat(a.replace("Z", "+00:00"))
                end = dt.datetime.fromisoformat(b.replace("Z", "+00:00"))
            except ValueError:
                return 400, {}, {"errors": [f"temporal is invalid: {q['temporal']}"]}
        box = [float(v) for v in q["bounding_box"].split(",")] if "bounding_box" in q else None
        hits = []
        for it in self.items:
            umm = it["umm"]
            ref = umm["CollectionReference"]
            if q.get("short_name", ref["ShortName"]) != ref["ShortName"]:
                continue
            if q.get("version", ref["Version"]) != ref["Version"]:
                continue
            if q.get("provider", it["meta"]["provider-id"]) != it["meta"]["provider-id"]:
                continue
            rng = umm["TemporalExtent"]["RangeDateTime"]
            g0 = dt.datetime.fromisoformat(rng["BeginningDateTime"].replace("Z", "+00:00"))
            g1 = dt.datetime.fromisoformat(rng["EndingDateTime"].replace("Z", "+00:00"))
            if begin is not None and end is not None and (g1 < begin or g0 > end):
                continue
            r = umm["SpatialExtent"]["HorizontalSpatialDomain"]["Geometry"]["BoundingRectangles"][0]
            if box is not None and (
                r["EastBoundingCoordinate"] < box[0]
                or r["WestBoundingCoordinate"] > box[2]
                or r["NorthBoundingCoordinate"] < box[1]
                or r["SouthBoundingCoordinate"] > box[3]
            ):
                continue
            hits.append((g0, umm["GranuleUR"], it))
        hits.sort(key=lambda h: (h[0], h[1]))
        offset = 0
        if after:
            if after not in self.after:
                return 400, {}, {"errors": ["The provided search after value is invalid"]}
            offset = self.after[after]
        page = [h[2] for h in hits[offset : offset + page_size]]
        out_headers = {"CMR-Hits": str(len(hits)), "CMR-Took": "3"}
        if page:
            token = json.dumps([page[-1]["umm"]["GranuleUR"], offset + len(page)])
            self.after[token] = offset + len(page)
            out_headers["CMR-Search-After"] = token
        return 200, out_headers, {"hits": len(hits), "took": 3, "items": page}


def tile_bbox(tile: str) -> tuple[float, float, float, float]:
    """Lon/lat box of a sinusoidal tile (an independent derivation for the emulator)."""
    h, v = int(tile[1:3]), int(tile[4:6])
    lat_n, lat_s = 90.0 - 10.0 * v, 80.0 - 10.0 * v
    lons = []
    for lat in (lat_n, lat_s):
        c = max(math.cos(math.radians(lat)), 1e-9)
        lons += [(-180.0 + 10.0 * h) / c, (-170.0 + 10.0 * h) / c]
    return (max(-180.0, min(lons)), lat_s, min(180.0, max(lons)), lat_n)


def _handler(state: Earthdata, server: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            h = {"Content-Type": "application/json", **(headers or {})}
            self._send(status, json.dumps(obj).encode(), h)

        def _fault(self, path: str) -> str | None:
            queue = state.faults.get(f"{server}:{path}")
            return queue.pop(0) if queue else None

        def do_POST(self) -> None:
            state.log.append(Logged(server, "POST", self.path, dict(self.headers)))
            if server == "data" and self.path == "/api/users/find_or_create_token":
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    self._json(401, {"error": "invalid_credentials"})
                    return
                self._json(200, {"access_token": TOKEN, "token_type": "Bearer",
                                 "expiration_date": "1/1/2030"})  # fmt: skip
                return
            self._send(404, b"not found")

        def do_GET(self) -> None:
            state.log.append(Logged(server, "GET", self.path, dict(self.headers)))
            parts = urlsplit(self.path)
            path = parts.path
            if server == "dl":
                self._download(path, parts.query)
                return
            if path == "/search/granules.umm_json":
                status, headers, body = state.search(parts.query, dict(self.headers))
                self._json(status, body, headers)
                return
            if path in state.public:
                self._send(200, state.public[path])
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, b"<html><body>HTTP Basic: Access denied.</body></html>")
                return
            if path == "/s3credentials":
                self._json(200, S3_CREDS)
                return
            if path not in state.files:
                self._send(404, b"Not Found")
                return
            if self._fault(path) == "503":
                self._send(503, b"Slow Down", {"Retry-After": "7"})
                return
            loc = f"{state.dl_url}/signed{path}?X-Amz-Expires=3600&X-Amz-Signature=abc123"
            self._send(307, b"", {"Location": loc})

        def _download(self, path: str, query: str) -> None:
            if "Authorization" in self.headers:
                self._send(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth "
                           b"mechanism allowed</Message></Error>")  # fmt: skip
                return
            if "X-Amz-Signature" not in query:
                self._send(403, b"<Error><Code>AccessDenied</Code></Error>")
                return
            key = path.removeprefix("/signed")
            data = state.files.get(key)
            if data is None:
                self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
                return
            fault = self._fault(key)
            if fault == "503":
                self._send(503, b"Slow Down", {"Retry-After": "7"})
                return
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and fault != "ignore-range":
                start = int(rng[6:].split("-")[0])
                if start >= len(data):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    return
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve() -> Iterator[Earthdata]:
    """Start both hosts; yields the shared state (``data_url``, ``dl_url`` set)."""
    state = Earthdata()
    servers = []
    threads = []
    for name in ("data", "dl"):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, name))
        t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        t.start()
        servers.append(httpd)
        threads.append(t)
    state.data_url = f"http://127.0.0.1:{servers[0].server_address[1]}"
    state.dl_url = f"http://127.0.0.1:{servers[1].server_address[1]}"
    try:
        yield state
    finally:
        for httpd, t in zip(servers, threads, strict=True):
            httpd.shutdown()
            httpd.server_close()
            t.join(5)
