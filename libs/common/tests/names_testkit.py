"""One key of every name names.py defines, for the tests of the Redis users (acl.py) against it."""

from __future__ import annotations

import inspect

from pricealert.common import names


def sample_keys() -> dict[str, str]:
    """One key of every name names.py defines (constants, key families, key functions) by where it comes from."""
    keys: dict[str, str] = {}
    for name, value in vars(names).items():
        if name.isupper() and isinstance(value, str) and value.startswith(f"{names.PREFIX}:"):
            keys[name] = f"{value}sample" if value.endswith(":") else value
        elif (
            inspect.isfunction(value)
            and value.__module__ == names.__name__
            and name not in {"dead_letter_stream", "health_key"}
        ):
            keys[name] = value(*["sample"] * len(inspect.signature(value).parameters))
    keys.update({f"STREAM_MAXLEN[{stream}]": stream for stream in names.STREAM_MAXLEN})
    return keys
