"""User mistakes get one line naming the key, path or date at fault and what to do, and
``run`` checks them before a Dask cluster starts (issue 22)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main

REGION = (-97.7, 35.3, -97.6, 35.4)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.synth import WorldSpec, write_world

    out = tmp_path_factory.mktemp("msg") / "world"
    spec = WorldSpec(
        region=REGION,
        start=dt.date(2020, 6, 1),
        end=dt.date(2020, 6, 2),
        seed=3,
        n_stations=1,
        n_ameriflux=0,
        spinup_days=1,
    )
    write_world(spec, out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.synthetic import synthetic_table
    from models.train import train_ensemble

    out = tmp_path_factory.mktemp("models")
    table = synthetic_table(n_sites=12, n_days=20, seed=0)
    train_ensemble("rf", table, out / "rf", seed=0, n_estimators=2, threads=1, log=lambda _m: None)
    return out


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if a command gets as far as starting a Dask cluster."""
    import pipeline.cluster

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a cluster was started before the checks")

    monkeypatch.setattr(pipeline.cluster, "open_client", refuse)
    yield


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def _config(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "smdown.toml"
    cfg.write_text(text)
    return str(cfg)


def test_unwritable_output_store_is_named_before_the_cluster_starts(
    tmp_path: Path, models: Path, no_cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(
        tmp_path,
        f'[output]\nstore = "/proc/smdown-cube"\n[models]\ndir = "{models}"\narch = "rf"\n',
    )
    assert main(["--config", cfg, "run", "--date", "2020-06-01"]) == 1
    err = _one_line(capsys)
    assert "output.store '/proc/smdown-cube': cannot create folders in /proc" in err
    assert "set [output] store to a folder you can write" in err
    assert main(["--config", cfg, "backfill", "--start", "2020-06-01", "--end", "2020-06-02"]) == 1
    assert "output.store '/proc/smdown-cube'" in _one_line(capsys)


def test_run_before_train_says_to_train(
    tmp_path: Path, no_cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, f'[models]\ndir = "{tmp_path / "models"}"\n')
    assert main(["--config", cfg, "run", "--date", "2020-06-01"]) == 1
    err = _one_line(capsys)
    assert f"models.dir: no trained ensemble at {tmp_path / 'models' / 'dense'}" in err
    assert "run 'smdown train --arch dense' first" in err


def test_a_date_before_the_data_says_no_inputs_for_this_date(
    tmp_path: Path, world: Path, models: Path, no_cluster: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    cfg = _config(
        tmp_path,
        f'[sources]\nroot = "{world}"\n[grid]\nregion = {list(REGION)}\n'
        f'[output]\nstore = "{tmp_path / "cube"}"\n[models]\ndir = "{models}"\narch = "rf"\n',
    )
    assert main(["--config", cfg, "run", "--date", "2019-01-05"]) == 1
    err = _one_line(capsys)
    assert "no inputs for 2019-01-05: it is before the first SMAP granule" in err
    assert "pick a date from 2020-06-01 on" in err and "MCD12Q1" not in err
    assert not (tmp_path / "cube").exists()


def test_region_with_three_numbers_names_the_key_and_the_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "[grid]\nregion = [-98.0, 35.0, -97.0]\n")
    assert main(["--config", cfg, "config", "check"]) == 1
    err = _one_line(capsys)
    assert "key 'grid.region': needs four numbers [west, south, east, north]" in err
    assert "got 3" in err and "Field required" not in err


def test_config_check_runs_the_checks_of_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "[grid]\nregion = [10.0, 10.0, 11.0, 11.0]\n")
    assert main(["--config", cfg, "config", "check", "--no-models"]) == 1
    err = _one_line(capsys)
    assert "grid.region [10.0, 10.0, 11.0, 11.0] does not intersect grid 'conus-90m'" in err
    cfg = _config(tmp_path, '[output]\nstore = "/proc/x"\n')
    assert main(["--config", cfg, "config", "check", "--no-models"]) == 1
    assert "output.store '/proc/x'" in _one_line(capsys)
    cfg = _config(tmp_path, f'[output]\nstore = "{tmp_path / "cube"}"\n')
    assert main(["--config", cfg, "config", "check"]) == 1  # no model trained yet
    assert "run 'smdown train --arch dense' first" in _one_line(capsys)
    assert main(["--config", cfg, "config", "check", "--no-models"]) == 0
    assert capsys.readouterr().out == "configuration OK\n"
    assert not (tmp_path / "cube").exists()  # the probe leaves nothing behind
    assert [p.name for p in tmp_path.iterdir()] == ["smdown.toml"]


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("SMDOWN__CLUSTR__N_WORKERS", "unknown section 'clustr' (misspelt?)"),
        ("SMDOWN__CLUSTER__N_WORKRS", "section [cluster] has no key 'n_workrs'"),
    ],
)
def test_unknown_environment_sections_and_keys_are_errors(
    name: str, expect: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, "3")
    assert main(["config", "show"]) == 1
    err = _one_line(capsys)
    assert f"environment {name}: {expect}" in err


def test_known_environment_overrides_still_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMDOWN__CLUSTER__N_WORKERS", "7")
    assert main(["config", "show"]) == 0
    assert "n_workers = 7" in capsys.readouterr().out


def test_fetch_of_a_static_product_needs_no_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", "--product", "SoilGrids", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "manual download" in out.out and "Missing option" not in out.err
    assert main(["fetch", "--product", "CHIRPS", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "CHIRPS is fetched by date: give --start and --end" in err


def test_version_and_help_placeholders_named_by_meaning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re
    from importlib.metadata import version

    import typer

    from pipeline.cli import app

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"smdown {version('smdown')}\n"

    def paths(cmd: object, prefix: list[str]) -> list[list[str]]:
        subs = getattr(cmd, "commands", {})
        out = [prefix]
        for name, sub in subs.items():
            out += paths(sub, [*prefix, name])
        return out

    commands = paths(typer.main.get_command(app), [])
    assert len(commands) > 20
    for args in commands:
        assert main([*args, "--help"]) == 0
        lines = capsys.readouterr().out.splitlines()
        text = "\n".join(ln for ln in lines if ln.lstrip().startswith("-"))  # the options
        assert not re.search(r"<(str|int|float|path|list\[str\]|datetime)[^>]*>", text), args
        assert not re.search(r"--\S+ (TEXT|INTEGER|FLOAT|DATETIME)\b", text), args
    assert main(["bench", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "one of grids, insitu, models, run, conus" in text
    assert main(["export", "--help"]) == 0
    assert "--bbox WEST,SOUTH,EAST,NORTH" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "--arch dense|prob|wdl|rf" in capsys.readouterr().out
