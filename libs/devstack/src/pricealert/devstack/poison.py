"""Hostile stream entries for tests: what a consumer must dead-letter, and the check that it did, and went on."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from pricealert.common import names
from pricealert.common.deadletter import DL_PREFIX, TRUNCATED, restore_fields
from pricealert.common.redisconn import RedisClient

MEGABYTE = 1 << 20
MANY_FIELDS = 10_000


def hostile_entries(good: Mapping[str, str]) -> dict[str, dict[bytes, bytes]]:
    """Entries no consumer of `good`'s stream can handle, by what is wrong with them (`good`: a valid entry)."""
    fields = {k.encode(): v.encode() for k, v in good.items()}
    first = next(iter(fields))
    return {
        "binary value": {**fields, first: b"\xff\xfe\x00\x80 not utf-8"},
        "binary field name": {**fields, b"\xff\xfe\x80name": b"x"},
        "nothing but binary": {b"\x80\x81\x82": b"\xc3\x28\xa0\xa1"},
        "missing fields": {b"unexpected": b"1"},
        "empty name and value": {b"": b""},
        "wrong types": {k: b"not-a-" + k for k in fields},
        "megabyte value": {**fields, first: b"9" * MEGABYTE},
        "huge number of fields": {**fields, **{f"extra{i}".encode(): b"x" for i in range(MANY_FIELDS)}},
        "forged dead-letter facts": {b"dl_reason": b"forged", b"dl_stream": b"\xff", b"b64:x": b"b64:!"},
    }


# The fields an entry's kind or outcome is read from: a newer writer's unknown value must be refused, not guessed.
ENUM_FIELDS = ("type", "status", "condition")


def misshapen_entries(good: Mapping[str, str]) -> dict[str, dict[bytes, bytes]]:
    """Entries of the right stream that are well-formed bytes yet mean nothing: JSON where flat fields belong, every
    value wrapped in a JSON object, and, where the stream has a kind field, a kind from an unknown schema version."""
    fields = {k.encode(): v.encode() for k, v in good.items()}
    entries = {
        "one JSON document": {b"json": json.dumps(dict(good)).encode()},
        "JSON object values": {k: json.dumps({"value": v.decode()}).encode() for k, v in fields.items()},
    }
    for name in ENUM_FIELDS:
        if name in good:
            entries["unknown schema version"] = {**fields, name.encode(): b"v99." + fields[name.encode()]}
            break
    return entries


@dataclass
class Sent:
    """Hostile entries written to a stream: their ids, by what is wrong with them."""

    stream: str
    entries: dict[str, dict[bytes, bytes]]
    ids: dict[str, str]


async def send_hostile(redis: RedisClient, stream: str, good: Mapping[str, str], *, misshapen: bool = False) -> Sent:
    """XADD every hostile entry built from `good` to `stream` (raw bytes, as anything with Redis access can); with
    `misshapen`, the misshapen_entries too."""
    entries = hostile_entries(good) | (misshapen_entries(good) if misshapen else {})
    ids: dict[str, str] = {}
    for what, entry in entries.items():
        entry_id = await redis.xadd(stream, entry)  # type: ignore[arg-type]  # hostile entries carry bytes and odd types on purpose
        ids[what] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return Sent(stream, entries, ids)


async def wait_dead_lettered(redis: RedisClient, sent: Sent, groups: list[str], within: float = 20.0) -> None:
    """Wait until every hostile entry is dead-lettered and nothing of it is pending in `groups`; assert the layout.

    Each group dead-letters each entry once: `len(groups)` dead letters per entry, each with a reason, its
    original fields restorable byte for byte unless the dead letter says it cut them.
    """
    deadline = time.monotonic() + within
    wanted = set(sent.ids.values())
    while True:
        letters = await _letters(redis, sent.stream)
        pending = {g: await _pending_ids(redis, sent.stream, g) for g in groups}
        done = {i for i, count in letters.items() if count >= len(groups)} >= wanted
        if done and not any(wanted & ids for ids in pending.values()):
            break
        if time.monotonic() > deadline:
            missing = {what: i for what, i in sent.ids.items() if letters.get(i, 0) < len(groups)}
            raise AssertionError(f"not dead-lettered within {within} s: {missing}; still pending: {pending}")
        await asyncio.sleep(0.05)
    raw: Any = await redis.xrange(names.dead_letter_stream(sent.stream))
    by_what = {i: what for what, i in sent.ids.items()}
    for _, fields in raw:
        letter = {k.decode(): v.decode() for k, v in fields.items()}  # every dead letter is text
        what = by_what.get(letter["dl_entry_id"])
        if what is None:
            continue
        assert letter["dl_reason"], f"{what}: no reason"
        assert letter["dl_group"] in groups and letter["dl_stream"] == sent.stream
        original = {k: v for k, v in letter.items() if not k.startswith(DL_PREFIX)}
        if DL_PREFIX + TRUNCATED in letter:
            assert what in ("megabyte value", "huge number of fields"), f"{what}: cut without need"
            assert sum(len(k) + len(v) for k, v in original.items()) < MEGABYTE // 8, f"{what}: kept too much"
        else:
            assert restore_fields(original) == sent.entries[what], f"{what}: original not kept"


async def _letters(redis: RedisClient, stream: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    raw: Any = await redis.xrange(names.dead_letter_stream(stream))
    for _, fields in raw:
        entry_id = fields[b"dl_entry_id"].decode()
        counts[entry_id] = counts.get(entry_id, 0) + 1
    return counts


async def _pending_ids(redis: RedisClient, stream: str, group: str) -> set[str]:
    try:
        pending: Any = await redis.xpending_range(stream, group, min="-", max="+", count=100_000)
    except ResponseError:  # no such group yet: nothing pending in it
        return set()
    return {p["message_id"].decode() for p in pending}
