"""``smdown synth``: a synthetic world in the real formats, with a known 90 m truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from pipeline.cli._common import state


def _parse_region(text: str) -> tuple[float, float, float, float]:
    from pipeline.synth import SynthError

    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise SynthError(f"--region: {text!r} is not W,S,E,N in degrees") from exc
    if len(values) != 4:
        raise SynthError(f"--region: {text!r} needs four numbers W,S,E,N")
    return values  # type: ignore[return-value]


def _parse_date(text: str, option: str) -> dt.date:
    from pipeline.synth import SynthError

    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise SynthError(f"{option}: {text!r} is not a date YYYY-MM-DD") from exc


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth_cmd(
        ctx: typer.Context,
        region: str = typer.Option(
            None, "--region", help="W,S,E,N in degrees (default: [grid] region of the config)."
        ),
        start: str = typer.Option(
            None, "--start", help="First day YYYY-MM-DD (default: config start or 2020-04-01)."
        ),
        end: str = typer.Option(
            None, "--end", help="Last day, inclusive (default: config end or start + 89 days)."
        ),
        seed: int = typer.Option(0, "--seed", help="World seed: same seed, same files."),
        out: str = typer.Option(
            None, "--out", help="Output root (default: [sources] root of the config)."
        ),
        stations: int = typer.Option(100, "--stations", min=0, help="Number of ISMN stations."),
        ameriflux: int = typer.Option(8, "--ameriflux", min=0, help="Number of AmeriFlux sites."),
        family: str = typer.Option(
            None,
            "--family",
            help="Product family of NDVI/LST/ET, written in its native format: modis-terra, "
            "modis-aqua (GeoTIFF tiles), viirs-snpp, viirs-noaa20, viirs-noaa21 (HDF-EOS5) "
            "(default: [sources] family of the config).",
        ),
    ) -> None:
        """Write a synthetic world in the real products' formats, with a known 90 m truth."""
        from pipeline.synth import WorldSpec, write_world
        from pipeline.synth.spec import DEFAULT_DAYS, DEFAULT_REGION, DEFAULT_START

        settings = state(ctx).settings()
        reg = _parse_region(region) if region else settings.grid.region or DEFAULT_REGION
        first = _parse_date(start, "--start") if start else settings.start or DEFAULT_START
        if end:
            last = _parse_date(end, "--end")
        elif settings.end is not None and not start:
            last = settings.end
        else:
            last = first + dt.timedelta(days=DEFAULT_DAYS - 1)
        spec = WorldSpec(
            region=reg,
            start=first,
            end=last,
            seed=seed,
            n_stations=stations,
            n_ameriflux=ameriflux,
            family=family or settings.sources.family,
        )
        root = Path(out or settings.sources.root)
        manifest = write_world(spec, root)
        s = manifest.stats
        typer.echo(
            f"synth: wrote {len(manifest.all_files())} files under {root} in "
            f"{manifest.seconds:.1f} s (region {reg}, {first}..{last}, seed {seed}, "
            f"family {spec.family}); "
            f"sub-cell std {s['subcell_std_mean']:.3f} m3 m-3, "
            f"SMAP vs 9 km truth R {s['smap_truth_r']:.2f}"
        )
