"""The Postgres functions of functions.sql (a package resource), by name, for the migrations to apply."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from alembic import op

_MARKER = re.compile(r"^-- function: (\w+)$", re.MULTILINE)


@cache
def definitions() -> dict[str, str]:
    """Each function's CREATE OR REPLACE statement, by name, in file order."""
    text = files("pricealert.alerts").joinpath("functions.sql").read_text(encoding="utf-8")
    parts = _MARKER.split(text)[1:]
    return {name: body.strip().rstrip(";") for name, body in zip(parts[::2], parts[1::2], strict=True)}


def apply_functions(*names: str) -> None:
    """CREATE OR REPLACE the named functions, on Postgres only (SQLite has none), inside the running migration."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in names:
        op.execute(definitions()[name])
