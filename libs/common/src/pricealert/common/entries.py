"""Decoding raw stream entries (redis-py's bytes or str mappings) into str fields, with size caps."""

from __future__ import annotations

from typing import Any

Fields = dict[str, str]
RawFields = dict[bytes, bytes] | dict[str, str] | dict[Any, Any]


class MalformedEvent(ValueError):
    """A stream entry that does not match the schema of its stream."""


# Limits of one stream entry: far above anything a service writes, far below what would hurt a reader.
MAX_ENTRY_FIELDS = 256
MAX_FIELD_BYTES = 65_536


def decode_fields(raw: RawFields) -> Fields:
    """Turn a redis-py entry (bytes or str keys and values) into a str dict; MalformedEvent if not UTF-8."""
    try:
        return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]  # hot path: bytes
    except AttributeError:
        pass
    except UnicodeDecodeError:
        raise MalformedEvent(_undecodable(raw)) from None
    try:
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in raw.items()
        }
    except UnicodeDecodeError:
        raise MalformedEvent(_undecodable(raw)) from None


def decode_entry(raw: RawFields, max_field_bytes: int | None = MAX_FIELD_BYTES) -> Fields:
    """decode_fields, after checking the entry's size: MalformedEvent for too many fields or too long a value."""
    if len(raw) > MAX_ENTRY_FIELDS:
        raise MalformedEvent(f"the entry has {len(raw)} fields, at most {MAX_ENTRY_FIELDS} are accepted")
    if max_field_bytes is not None:
        for name, value in raw.items():
            longest = max(_size(name), _size(value))
            if longest > max_field_bytes:
                what = "a field name" if _size(name) > max_field_bytes else f"field {_preview(name)}"
                raise MalformedEvent(f"{what} is {longest} bytes long, at most {max_field_bytes} are accepted")
    return decode_fields(raw)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, bytes | str) else len(str(value))


def _preview(value: Any, limit: int = 40) -> str:
    """A short, escaped rendering of a field name or value, for error messages."""
    shown = value if isinstance(value, bytes) and not _is_utf8(value) else _text(value)
    return repr(shown[:limit]) + ("..." if len(shown) > limit else "")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _undecodable(raw: RawFields) -> str:
    """Which field of `raw` is not UTF-8, said readably."""
    for name, value in raw.items():
        if not _is_utf8(name):
            return f"field name {_preview(name)} is not UTF-8"
        if not _is_utf8(value):
            return f"the value of field {_preview(name)} is not UTF-8: {_preview(value)}"
    return "the entry is not UTF-8"


def _is_utf8(value: Any) -> bool:
    if not isinstance(value, bytes):
        return True
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
