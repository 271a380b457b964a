"""State shared by subcommands: the configuration path and verbosity."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from pipeline.config import Settings, load_settings


@dataclass
class State:
    """What the root callback parsed; subcommands read it through ``ctx.obj``."""

    config_path: str | None = None
    verbosity: int = 0
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """The validated configuration (loaded once)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


def state(ctx: typer.Context) -> State:
    """The root state of this invocation (a default one when called directly)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State()
        ctx.find_root().obj = obj
    return obj
