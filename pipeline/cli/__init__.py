"""The ``smdown`` command line: one Typer app, one module per subcommand.

Every deliberate error (ours, a bad configuration, a wrong argument) is
printed as a single line and gives a non-zero exit code; tracebacks are
shown only with ``--verbose --verbose``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

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


@app.callback()
def _root(
    ctx: typer.Context,
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="TOML configuration file (default: $SMDOWN_CONFIG or built-in).",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
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
