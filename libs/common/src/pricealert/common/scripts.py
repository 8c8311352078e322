"""Lua scripts shipped as package resources (`<package>/lua/<name>.lua`), read once per process."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def lua(package: str, *parts: str) -> str:
    """The script made of the files `parts` of `package`'s lua/ folder, in order (shared helpers first)."""
    folder = files(package).joinpath("lua")
    return "\n".join(folder.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in parts)
