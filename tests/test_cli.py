"""The command line as a user meets it: help, one-line errors, configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

SUBCOMMANDS = [
    "synth",
    "grid",
    "sources",
    "fetch",
    "insitu",
    "table",
    "features",
    "train",
    "run",
    "backfill",
    "evaluate",
    "export",
    "migrate",
    "bench",
    "demo",
    "config",
]


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert f"  {name} " in out, name


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"Usage: smdown {name}" in out
    assert len(out.splitlines()) >= 4


def test_wrong_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--no-such-option"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--no-such-option" in err and "Traceback" not in err


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "frobnicate" in err


def test_misspelt_config_key_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[grid]\ntile_sise = 512\n")
    assert main(["--config", str(cfg), "config", "show"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "grid.tile_sise" in err and str(cfg) in err


def test_wrong_value_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[cluster]\nn_workers = "many"\n')
    assert main(["--config", str(cfg), "config", "check"]) == 1
    assert "cluster.n_workers" in capsys.readouterr().err


def test_config_show_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text("[cluster]\nn_workers = 3\n")
    assert main(["--config", str(cfg), "config", "show"]) == 0
    shown = capsys.readouterr().out
    assert "n_workers = 3" in shown
    again = tmp_path / "again.toml"
    again.write_text(shown)
    assert main(["--config", str(again), "config", "show"]) == 0
    assert capsys.readouterr().out == shown


def test_environment_overrides_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text("[cluster]\nn_workers = 3\n")
    monkeypatch.setenv("SMDOWN__CLUSTER__N_WORKERS", "5")
    assert main(["--config", str(cfg), "config", "show"]) == 0
    assert "n_workers = 5" in capsys.readouterr().out


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "config", "show"]) == 1
    assert "nope.toml" in capsys.readouterr().err


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "smdown"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: smdown" in proc.stdout
