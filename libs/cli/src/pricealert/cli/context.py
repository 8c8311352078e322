"""What every command of the CLI shares: the global options, the --json flag, a clean failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@dataclass
class Options:
    """Global options, shared by every command."""

    redis_url: str
    json: bool


def options_of(ctx: typer.Context, json_flag: bool) -> Options:
    """The global options, with a command's own --json."""
    options: Options = ctx.obj
    return Options(options.redis_url, options.json or json_flag)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say why on stderr; raise what this returns."""
    typer.echo(message, err=True)
    return typer.Exit(code)
