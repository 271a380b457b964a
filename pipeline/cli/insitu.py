"""``smdown insitu``: read ISMN and AmeriFlux data, apply quality control, write daily series."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import state
from pipeline.errors import ConfigError


def _default_input(configured: str | None, root: str, folder: str) -> Path | None:
    """The configured path, else ``<sources.root>/<folder>`` when it exists."""
    if configured:
        return Path(configured)
    candidate = Path(root) / folder
    return candidate if candidate.exists() else None


def register(app: typer.Typer) -> None:
    @app.command("insitu")
    def insitu_cmd(
        ctx: typer.Context,
        ismn: Path | None = typer.Option(
            None,
            "--ismn",
            help="ISMN delivery: folder tree, zip, or folder of zips "
            "(default: [insitu] ismn, else <sources.root>/ISMN).",
        ),
        ameriflux: Path | None = typer.Option(
            None,
            "--ameriflux",
            help="Folder of AmeriFlux BASE CSVs / BASE-BADM zips "
            "(default: [insitu] ameriflux, else <sources.root>/AmeriFlux).",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Output: writes OUT.parquet (daily), OUT_sites.parquet, OUT_qc.json "
            "(default: insitu.parquet beside [table] path).",
        ),
        strict: bool = typer.Option(
            False, "--strict", help="Stop at the first unreadable file instead of skipping it."
        ),
    ) -> None:
        """Read ISMN and AmeriFlux data, apply quality control, write daily series."""
        from pipeline.insitu import build_insitu

        settings = state(ctx).settings()
        cfg = settings.insitu
        ismn_path = ismn or _default_input(cfg.ismn, settings.sources.root, "ISMN")
        amf_path = ameriflux or _default_input(cfg.ameriflux, settings.sources.root, "AmeriFlux")
        if ismn_path is None and amf_path is None:
            raise ConfigError(
                "insitu: no input: pass --ismn and/or --ameriflux, or set [insitu] ismn/ameriflux"
            )
        target = out or Path(settings.table.path).parent / "insitu.parquet"
        result = build_insitu(ismn_path, amf_path, cfg, strict=strict or cfg.strict)
        typer.echo(result.report.table())
        if result.report.notes:
            typer.echo(f"notes ({len(result.report.notes)}):")
            for note in result.report.notes:
                typer.echo(f"  {note}")
        daily_path, sites_path = result.write(target)
        n_sites = int((result.sites["n_days"] > 0).sum()) if len(result.sites) else 0
        typer.echo(
            f"wrote {daily_path} ({len(result.daily):,} site-days, {n_sites} sites) "
            f"and {sites_path} ({len(result.sites)} sites read)"
        )
