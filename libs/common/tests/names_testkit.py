"""One key of every name names.py defines, for the tests of the Redis users (acl.py) against it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pricealert.common import names

SHARD = 13
# The services whose replicas share the shards by leases (names.shard_owner_key, names.members_key).
SHARDED_SERVICES = ("evaluator", "ingest")
# Functions that name no key (parsers of names), or whose keys come from the functions sampled already.
NOT_KEYS = {"dead_letter_stream", "health_key", "stream_kind", "stream_shard", "shard_prefix"}


def _arguments(parameter: str) -> list[Any]:
    """Sample values of a key function's parameter, by its name: a shard, a kind, a service, or any text."""
    if parameter == "shard":
        return [SHARD]
    if parameter == "kind":
        return list(names.SHARDED_STREAM_KINDS)
    if parameter == "service":
        return list(SHARDED_SERVICES)
    return ["sample"]


def _samples(name: str, function: Callable[..., str]) -> dict[str, str]:
    combos: list[list[Any]] = [[]]
    for parameter in inspect.signature(function).parameters:
        combos = [[*combo, value] for combo in combos for value in _arguments(parameter)]
    keys = {}
    for args in combos:
        key = function(*args)
        keys[f"{name}({', '.join(map(str, args))})"] = f"{key}sample" if key.endswith(":") else key
    return keys


def sample_keys() -> dict[str, str]:
    """One key of every name names.py defines (constants, key families, key functions) by where it comes from."""
    keys: dict[str, str] = {}
    for name, value in vars(names).items():
        if name.isupper() and isinstance(value, str) and value.startswith(f"{names.PREFIX}:"):
            keys[name] = f"{value}sample" if value.endswith(":") else value
        elif inspect.isfunction(value) and value.__module__ == names.__name__ and name not in NOT_KEYS:
            keys.update(_samples(name, value))
    for stream in names.STREAM_MAXLEN:
        keys[f"STREAM_MAXLEN[{stream}]"] = (
            names.shard_stream(SHARD, stream) if stream in names.SHARDED_STREAM_KINDS else stream
        )
    return keys
