"""Fixtures shared by every test suite in the repository."""

import os
import subprocess

from pricealert.common.scripts import SHEBANG_VARIABLE
from pricealert.devstack.servers import redis_server_binary

pytest_plugins = ["pricealert.testsupport.fixtures", "pricealert.testsupport.cluster"]


def _redis_major() -> int:
    try:
        reply = subprocess.run([redis_server_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (FileNotFoundError, subprocess.SubprocessError):
        return 0
    version = next((word[2:] for word in reply.split() if word.startswith("v=")), "0")
    return int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0


# On Redis 7 every script runs with "#!lua" (scripts.py): the cluster tests then fail on any key a script touches
# outside its KEYS' slot. Set before any test module loads a script; the services the tests start inherit it.
if _redis_major() >= 7:
    os.environ.setdefault(SHEBANG_VARIABLE, "1")
