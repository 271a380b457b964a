"""Fuzzing the text a user hands to smdown: any configuration text gives ``Settings`` or a
``ConfigError``; any damaged station file gives a QC result or an ``InsituError`` (strict),
never another exception. (The parsers themselves are fuzzed in tests/test_insitu_fuzz.py.)
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability_world import toml_text, world

from pipeline.config import Settings, load_settings, settings_to_toml
from pipeline.errors import ConfigError, InsituError

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # seeded: the same examples on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW_FUZZ = settings(FUZZ, max_examples=20)

# Every real key of every section, so structured fuzzing reaches the validators.
SECTIONS: dict[str, list[str]] = {
    name: list(type(getattr(Settings(), name)).model_fields)
    for name in ("sources", "grid", "insitu", "table", "models", "output", "cluster")
}


def _load(text: str, tmp: Path) -> Settings | None:
    """load_settings on ``text``: Settings, or None when it raised ConfigError."""
    path = tmp / "smdown.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        s = load_settings(path)
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith(str(path)) and "\n" not in msg.strip(), msg
        return None
    assert isinstance(s, Settings)
    return s


# -- configuration -----------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_is_settings_or_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load(text, Path(tmp))


SCALAR = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.dates(min_value=dt.date(1, 1, 1)).map(str),
)
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=5))


@st.composite
def config_dicts(draw: Any) -> dict[str, Any]:
    """Real sections and keys (sometimes misspelt), values of any TOML type."""
    data: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        keys = draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=4, unique=True))
        table = {k: draw(VALUE) for k in keys}
        if draw(st.booleans()) and keys:
            table[keys[0] + draw(st.sampled_from(["_", "s", "x"]))] = draw(VALUE)
        data[section] = table
    if draw(st.booleans()):
        data[draw(st.sampled_from(["start", "end", "strat"]))] = draw(SCALAR)
    return data


@FUZZ
@given(config_dicts())
def test_structured_configs_are_settings_or_config_error(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        got = _load(toml_text(data), Path(tmp))
    if got is not None:  # what was accepted reads back as given
        for section, table in data.items():
            if isinstance(table, dict):
                for key, value in table.items():
                    if isinstance(value, bool | int | str) and not isinstance(value, float):
                        have = getattr(getattr(got, section), key)
                        assert have == value or not isinstance(have, type(value)), (key, have)


DEFAULT_TEXT = settings_to_toml(Settings())


@FUZZ
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 8), st.text(max_size=6)), min_size=1, max_size=6
    )
)
def test_damaged_default_config_is_settings_or_config_error(
    edits: list[tuple[float, int, str]],
) -> None:
    """``smdown config show`` output with characters deleted and inserted at random places."""
    text = DEFAULT_TEXT
    for where, n_delete, insert in edits:
        i = math.floor(where * len(text))
        text = text[:i] + insert + text[i + n_delete :]
    with tempfile.TemporaryDirectory() as tmp:
        _load(text, Path(tmp))


# -- station files through the in-situ build -----------------------------------------------------
EDIT = st.tuples(st.floats(0, 1), st.integers(0, 12), st.binary(max_size=12))


def _damage(data: bytes, edits: list[tuple[float, int, bytes]]) -> bytes:
    for where, n_delete, insert in edits:
        i = math.floor(where * len(data))
        data = data[:i] + insert + data[i + n_delete :]
    return data


@pytest.fixture(scope="module")
def stations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The world's ISMN tree and AmeriFlux zip: one .stm file and one BASE CSV to damage."""
    root = tmp_path_factory.mktemp("stations")
    shutil.copytree(world() / "ISMN", root / "ISMN")
    shutil.copytree(world() / "AmeriFlux", root / "AmeriFlux")
    (stm,) = sorted((root / "ISMN").rglob("ARM_*_sm_*.stm"))
    (zpath,) = sorted((root / "AmeriFlux").glob("*.zip"))
    with zipfile.ZipFile(zpath) as z:
        members = {n: z.read(n) for n in z.namelist()}
    return {
        "root": root,
        "stm": stm,
        "stm_bytes": stm.read_bytes(),
        "zip": zpath,
        "zip_members": members,
    }


def _build(stations: dict[str, Any], strict: bool) -> None:
    from pipeline.config import InsituConfig
    from pipeline.insitu import build_insitu

    root = stations["root"]
    try:
        result = build_insitu(root / "ISMN", root / "AmeriFlux", InsituConfig(), strict=strict)
    except InsituError as exc:
        assert strict and exc.path and str(exc).startswith(exc.path)
        return
    assert (result.daily["sm"].dropna().between(0.0, 0.7)).all()


@SLOW_FUZZ
@given(edits=st.lists(EDIT, min_size=1, max_size=5), strict=st.booleans())
def test_damaged_ismn_file_is_a_result_or_insitu_error(
    stations: dict[str, Any], edits: list[tuple[float, int, bytes]], strict: bool
) -> None:
    stations["stm"].write_bytes(_damage(stations["stm_bytes"], edits))
    try:
        _build(stations, strict)
    finally:
        stations["stm"].write_bytes(stations["stm_bytes"])


@SLOW_FUZZ
@given(edits=st.lists(EDIT, min_size=1, max_size=5), strict=st.booleans())
def test_damaged_ameriflux_csv_is_a_result_or_insitu_error(
    stations: dict[str, Any], edits: list[tuple[float, int, bytes]], strict: bool
) -> None:
    members = dict(stations["zip_members"])
    name = next(n for n in members if n.endswith(".csv"))
    members[name] = _damage(members[name], edits)
    with zipfile.ZipFile(stations["zip"], "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    _build(stations, strict)
