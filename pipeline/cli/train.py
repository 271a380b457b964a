"""``smdown train``: train an ensemble, export members to ONNX, write the manifest."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import state


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        ctx: typer.Context,
        arch: str = typer.Option(None, "--arch", help="dense, prob, wdl or rf [models.arch]."),
        table: Path = typer.Option(None, "--table", help="Training table (Parquet) [table.path]."),
        out: Path = typer.Option(None, "--out", help="Output folder [<models.dir>/<arch>]."),
        epochs: int = typer.Option(None, "--epochs", min=1, help="Max epochs [models.epochs]."),
        seed: int = typer.Option(None, "--seed", help="Seed of splits and members [models.seed]."),
        trees: int = typer.Option(
            None, "--trees", min=1, help="Trees per forest for rf [models.n_estimators]."
        ),
    ) -> None:
        """Train an ensemble, export every member to ONNX, write manifest.json; print the time
        per member and the validation metrics."""
        from models.train import ARCHS, TrainError, train_ensemble

        cfg = state(ctx).settings().models
        tcfg = state(ctx).settings().table
        arch = arch or cfg.arch
        if arch not in ARCHS:
            raise TrainError(f"--arch {arch!r}: choose one of {', '.join(ARCHS)}")
        table_path = table or Path(tcfg.path)
        out_dir = out or Path(cfg.dir) / arch
        train_ensemble(
            arch,
            table_path,
            out_dir,
            seed=cfg.seed if seed is None else seed,
            epochs=epochs or cfg.epochs,
            batch_size=cfg.batch_size,
            patience=cfg.patience,
            n_estimators=trees or cfg.n_estimators,
            threads=cfg.threads,
            prob_samples=cfg.prob_samples,
            log=typer.echo,
        )
