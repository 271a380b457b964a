"""Hypothesis fuzzing of the text parsers: any input parses or raises ``InsituError``.

Arbitrary bytes and perturbed real lines (ARM-1 in both ISMN formats, US-CRT
BASE) go into every parser; anything else escaping (IndexError, ArrowInvalid,
UnicodeDecodeError, ...) fails the test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InsituError
from pipeline.insitu import read_ameriflux, read_bif, read_static_variables
from pipeline.insitu.ameriflux import BifSite
from pipeline.insitu.ismn import parse_ismn_bytes

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAME = "NET_NET_ST_sm_0.000000_0.050000_probe_20200101_20200102.stm"
TD = Path("TUW-GEO_ismn/tests/test_data")
ARM1 = "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
SITE = BifSite("US-CRT", lat=41.6, lon=-83.3, utc_offset=-5.0)

_SAMPLES: dict[str, bytes] = {}


def sample(realdata: Path, key: str) -> bytes:
    """First 40 lines of a real file (cached), the seed the perturbations start from."""
    if key not in _SAMPLES:
        paths = {
            "header": realdata
            / TD
            / "Data_seperate_files_header_20170810_20180809/COSMOS/ARM-1"
            / ARM1,
            "ceop": realdata / TD / "Data_seperate_files_20170810_20180809/COSMOS/ARM-1" / ARM1,
            "base": realdata / "chuhousen_amerifluxr/inst/extdata/AMF_US-CRT_BASE_HH_2-5.csv",
        }
        raw = paths[key].read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        _SAMPLES[key] = b"\n".join(raw.split(b"\n")[:40]) + b"\n"
    return _SAMPLES[key]


def check_ismn(raw: bytes, name: str = NAME) -> None:
    try:
        s = parse_ismn_bytes(raw, name, name)
    except InsituError as exc:
        assert exc.path == name and str(exc).startswith(name)
        return
    assert s.data["time"].dtype == np.dtype("datetime64[ns]")
    assert s.data["value"].dtype == np.float64
    assert len(s.data["ismn_flag"]) == len(s.data)
    assert np.isfinite(s.lat) and np.isfinite(s.lon)


# Edits: (position fraction, action, payload).
EDIT = st.tuples(
    st.floats(0, 1),
    st.sampled_from(["insert", "delete", "replace", "newline", "cr"]),
    st.binary(min_size=0, max_size=6),
)


def perturb(raw: bytes, edits: list[tuple[float, str, bytes]]) -> bytes:
    data = bytearray(raw)
    for frac, action, payload in edits:
        i = int(frac * len(data))
        if action == "insert":
            data[i:i] = payload
        elif action == "delete":
            del data[i : i + 1 + len(payload)]
        elif action == "replace":
            data[i : i + len(payload)] = payload
        elif action == "newline":
            data[i:i] = b"\n"
        else:
            data[i:i] = b"\r"
    return bytes(data)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_into_ismn_parser(raw: bytes) -> None:
    check_ismn(raw)


TOKEN = st.sampled_from(
    [
        b"2020/01/01",
        b"00:00",
        b"0.25",
        b"G",
        b"D03,D05",
        b"M",
        b"nan",
        b"-1e400",
        b"35.0",
        b"-98.0",
        b"1e5",
        b"\xe4",
        b"24:61",
        b"2020/13/40",
        b"",
        b"  ",
        b"\t",
        b"\r",
        b"\n",
    ]
)


@FUZZ
@given(st.lists(st.lists(TOKEN, max_size=16), max_size=8))
def test_token_soup_into_ismn_parser(lines: list[list[bytes]]) -> None:
    check_ismn(b"\n".join(b" ".join(line) for line in lines))


@pytest.mark.realdata
@FUZZ
@given(edits=st.lists(EDIT, min_size=1, max_size=6), which=st.sampled_from(["header", "ceop"]))
def test_perturbed_real_ismn_lines(
    realdata: Path, edits: list[tuple[float, str, bytes]], which: str
) -> None:
    check_ismn(perturb(sample(realdata, which), edits), ARM1)


@pytest.mark.realdata
@FUZZ
@given(edits=st.lists(EDIT, min_size=1, max_size=6))
def test_perturbed_real_base_lines(realdata: Path, edits: list[tuple[float, str, bytes]]) -> None:
    raw = perturb(sample(realdata, "base"), edits)
    try:
        site = read_ameriflux("AMF_US-CRT_BASE_HH_2-5.csv", badm=SITE, data=raw)
    except InsituError as exc:
        assert "AMF_US-CRT_BASE_HH_2-5.csv" in str(exc)
        return
    assert site.times.dtype == np.dtype("datetime64[ns]")
    assert all(col.n_valid <= len(site.times) for col in site.swc_columns)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_into_ameriflux_parser(raw: bytes) -> None:
    try:
        read_ameriflux("AMF_US-CRT_BASE_HH_2-5.csv", badm=SITE, data=raw)
    except InsituError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_into_bif_and_static_parsers(raw: bytes) -> None:
    for parse in (read_bif, read_static_variables):
        try:
            parse(raw, "file.csv")
        except InsituError as exc:
            assert exc.path == "file.csv"
