"""The one layout of a dead letter: the entry's own fields, kept readable and restorable, plus the dl_* facts.

A name or value that is valid UTF-8 is kept as it is. One that is not (or that would be misread: a value or
name starting with `b64:`, a name starting with `dl_`) is kept as `b64:` and its bytes in base64, so that
every dead letter is plain text and the original bytes can be restored. Sizes are capped; what was cut or
left out is said in `dl_truncated`, and such a dead letter cannot be replayed as it was.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from pricealert.common import names
from pricealert.common.events import RawFields, now_ms
from pricealert.common.publisher import append
from pricealert.common.redisconn import RedisPipeline

DL_PREFIX = "dl_"
ENCODED_PREFIX = "b64:"
TRUNCATED = "truncated"  # the dl_ fact that makes a dead letter impossible to replay as it was
# Far above any field a service writes (an alert's name is 200 characters), far below a hostile megabyte.
MAX_KEPT_VALUE_BYTES = 8_192
MAX_KEPT_NAME_BYTES = 256
MAX_KEPT_FIELDS = 64
MAX_KEPT_BYTES = 65_536
MAX_REASON_CHARS = 2_000


def dead_letter_fields(
    original: RawFields | Mapping[Any, Any],
    *,
    stream: str,
    entry_id: str,
    group: str,
    consumer: str,
    reason: str,
    deliveries: int,
) -> dict[str, str]:
    """The dead letter of `original` (an entry of `stream`): plain text whatever the entry held."""
    fields, notes = _kept(original)
    fields.update(
        {
            "dl_stream": stream,
            "dl_entry_id": entry_id,
            "dl_group": group,
            "dl_consumer": consumer,
            "dl_reason": safe_text(reason, MAX_REASON_CHARS),
            "dl_deliveries": str(deliveries),
            "dl_failed_at": str(now_ms()),
        }
    )
    if notes:
        fields[DL_PREFIX + TRUNCATED] = "; ".join(notes)
    return fields


def add_dead_letter(pipe: RedisPipeline, stream: str, fields: Mapping[str, str]) -> None:
    """Add to `pipe`: append a dead letter (from dead_letter_fields) to `stream`'s dead-letter stream."""
    append(pipe, names.dead_letter_stream(stream), fields)


def dead_letter_entry(pipe: RedisPipeline, letter: Mapping[str, str], *, ack: bool = True) -> None:
    """Add to `pipe`: append `letter` (from dead_letter_fields) to its stream's dead letters and ack its entry.

    `ack=False` is for callers whose transaction acknowledges the entry already (the notifier's group commit).
    """
    stream = letter["dl_stream"]
    add_dead_letter(pipe, stream, letter)
    if ack:
        pipe.xack(stream, letter["dl_group"], letter["dl_entry_id"])


def encode_text(value: Any, *, name: bool = False) -> str:
    """A field name or value as dead-letter text: itself if it is UTF-8 and unambiguous, else b64:<base64>."""
    data = _bytes(value)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return _encoded(data)
    if text.startswith(ENCODED_PREFIX) or (name and text.startswith(DL_PREFIX)):
        return _encoded(data)
    return text


def decode_text(text: str) -> bytes:
    """The original bytes of a name or value written by encode_text; ValueError for a broken b64: value."""
    if not text.startswith(ENCODED_PREFIX):
        return text.encode()
    try:
        return base64.b64decode(text[len(ENCODED_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{text[:40]!r} is not valid base64") from exc


def restore_fields(fields: Mapping[str, str]) -> dict[bytes, bytes]:
    """The original entry behind a dead letter's non-dl_ fields, byte for byte; ValueError if it cannot be."""
    return {decode_text(k): decode_text(v) for k, v in fields.items()}


def describe(raw: RawFields | Mapping[Any, Any], limit: int = 300) -> str:
    """A short readable rendering of an entry's fields, for error messages (never raises on content)."""
    parts: list[str] = []
    size = 0
    for key, value in raw.items():
        part = f"{encode_text(_bytes(key)[:64], name=True)}={encode_text(_bytes(value)[:64])}"
        size += len(part) + 1
        if size > limit:
            parts.append("...")
            break
        parts.append(part)
    return "{" + " ".join(parts) + "}"


def safe_text(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, anything that is not encodable as UTF-8 escaped."""
    cut = text[:limit]
    return cut.encode("utf-8", "backslashreplace").decode() + ("..." if len(text) > limit else "")


def _kept(original: RawFields | Mapping[Any, Any]) -> tuple[dict[str, str], list[str]]:
    kept: dict[str, str] = {}
    notes: list[str] = []
    budget = MAX_KEPT_BYTES
    for index, (raw_name, raw_value) in enumerate(original.items()):
        name, value = _bytes(raw_name), _bytes(raw_value)
        if index >= MAX_KEPT_FIELDS or budget <= 0:
            notes.append(f"{len(original) - index} more fields not kept")
            break
        shown_name = encode_text(name[:MAX_KEPT_NAME_BYTES], name=True)
        if len(name) > MAX_KEPT_NAME_BYTES:
            notes.append(f"a field name of {len(name)} bytes cut to {MAX_KEPT_NAME_BYTES}")
        cap = min(MAX_KEPT_VALUE_BYTES, budget)
        if len(value) > cap:
            notes.append(f"{shown_name[:60]}: {len(value)} bytes, first {cap} kept")
        kept[shown_name] = _head(value, cap)
        budget -= min(len(name), MAX_KEPT_NAME_BYTES) + min(len(value), cap)
    return kept, notes


def _head(value: bytes, cap: int) -> str:
    """encode_text of the first `cap` bytes, not splitting the character the cut falls in."""
    head = value[:cap]
    if len(value) > cap:
        try:
            head.decode()
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data":  # the cut fell inside a character: keep text as text
                head = head[: exc.start]
    return encode_text(head)


def _encoded(data: bytes) -> str:
    return ENCODED_PREFIX + base64.b64encode(data).decode()


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else str(value)).encode("utf-8", "surrogatepass")
