"""The ``smdown`` command line: one Typer app, one module per subcommand.

Every deliberate error (ours, a bad configuration, a wrong argument) is
printed as a single line and gives a non-zero exit code; tracebacks are
shown only with ``--verbose --verbose``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx  # type: ignore[no-redef]

from pipeline.cli import (
    bench,
    config_cmd,
    demo,
    evaluate,
    export,
    features,
    fetch,
    grid,
    insitu,
    migrate,
    point,
    run,
    sources,
    synth,
    table,
    train,
)
from pipeline.cli._common import State
from pipeline.logs import configure_logging

app = typer.Typer(
    name="smdown",
    help="Daily 90 m soil-moisture maps of CONUS, downscaled from SMAP with small ML ensembles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smdown")
    except PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"smdown {_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        metavar="FILE",
        help="TOML configuration file (default: $SMDOWN_CONFIG or built-in).",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the smdown version and exit.",
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log output (-vv: tracebacks)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    """Global options, shared by every subcommand."""
    verbosity = -1 if quiet else verbose
    configure_logging(verbosity)
    ctx.obj = State(config_path=config, verbosity=verbosity)


for _module in (
    synth,
    grid,
    sources,
    fetch,
    insitu,
    table,
    features,
    train,
    run,
    evaluate,
    export,
    migrate,
    point,
    bench,
    demo,
    config_cmd,
):
    _module.register(app)


def _error_types() -> tuple[type[BaseException], ...]:
    from grids.errors import GridError
    from models.errors import ModelError
    from pipeline.errors import SmdownError

    return (SmdownError, GridError, ModelError)


# Placeholders in --help named by meaning rather than by type (<str>, <list[str]>): an
# option's own metavar wins, then these, then its long name in capitals (--table TABLE).
METAVARS: dict[str, str] = {
    "date": "YYYY-MM-DD",
    "start": "YYYY-MM-DD",
    "end": "YYYY-MM-DD",
    "config": "FILE",
    "out": "PATH",
    "root": "DIR",
    "model": "DIR",
    "store": "ZARR",
    "scheduler": "ADDRESS",
    "base_url": "URL",
    "tiles": "hHHvVV",
    "arch": "dense|prob|wdl|rf",
    "mode": "maps|training",
    "split": "validation|cv|both",
    "table": "FILE",
    "insitu": "FILE",
    "csv": "FILE",
    "ismn": "ZIP|DIR",
    "ameriflux": "DIR",
    "truth_world": "DIR",
    "cube": "ZARR",
    "region": "W,S,E,N",
    "models": "NAME",
    "group": "NAME",
}


def _name_placeholders(command: Any) -> None:
    """Give every option without a metavar one named by meaning (recursively)."""
    for param in getattr(command, "params", []):
        kind = getattr(param, "param_type_name", "")
        if kind == "argument" and param.metavar is None:
            param.metavar = str(param.name or "value").upper()
        if kind != "option" or param.is_flag or param.count:
            continue
        if param.metavar is None:
            choices = getattr(getattr(param, "type", None), "choices", None)
            name = str(param.name or "")
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if choices:
                param.metavar = "|".join(map(str, choices))
            elif annotation is int:
                param.metavar = "N"
            else:
                param.metavar = METAVARS.get(name, name.upper().replace("_", "-"))
    for sub in getattr(command, "commands", {}).values():
        _name_placeholders(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    _name_placeholders(command)
    try:
        rv = command.main(args=args, prog_name="smdown", standalone_mode=False)
    except _cx.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else "see 'smdown --help'")
        return 2
    except _cx.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx is not None else "smdown"
        where = "smdown" + path[len(path.split(" ", 1)[0]) :]
        print(f"{where}: error: {exc.format_message()} (see '{where} --help')", file=sys.stderr)
        return 2
    except typer.Abort:
        print("smdown: aborted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("smdown: interrupted", file=sys.stderr)
        return 130
    except _error_types() as exc:
        if logging.getLogger("pipeline").isEnabledFor(logging.DEBUG - 1):
            raise
        print(f"smdown: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"smdown: error: {exc}", file=sys.stderr)
        return 1
    return int(rv) if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
