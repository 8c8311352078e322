"""Lua scripts shipped as package resources (`<package>/lua/<name>.lua`), read once per process."""

from __future__ import annotations

import os
from functools import cache
from importlib.resources import files

# Redis 7 reads a first line "#!lua" as "this script keeps to the slot of its KEYS": on a cluster it then refuses
# any key of another slot, even one served by the same node (without it only other nodes' keys fail). Redis 6
# cannot parse the line, so it is opt-in: LUA_SHEBANG=1 on Redis 7 (the test suite sets it when it runs Redis 7).
SHEBANG_VARIABLE = "LUA_SHEBANG"


@cache
def lua(package: str, *parts: str, flags: str = "") -> str:
    """The script made of the files `parts` of `package`'s lua/ folder, in order (shared helpers first); `flags`
    (Redis 7's, e.g. allow-oom) go on the shebang line, when there is one."""
    folder = files(package).joinpath("lua")
    body = "\n".join(folder.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in parts)
    if os.environ.get(SHEBANG_VARIABLE) != "1":
        return body  # no shebang: Redis refuses each command that needs memory, under maxmemory, on its own
    return f"#!lua flags={flags}\n{body}" if flags else f"#!lua\n{body}"
