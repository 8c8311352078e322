"""Dead letters: list them, replay them onto their original stream, or drop them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from pricealert.cli.streams import text
from pricealert.common import names
from pricealert.common.deadletter import DL_PREFIX, TRUNCATED, restore_fields
from pricealert.common.publisher import append

UNREADABLE = "unreadable"  # a failure fact the CLI adds itself, to a dead letter that is not text
PAGE = 500


@dataclass
class DeadLetter:
    """One dead-lettered entry: the original fields and the dl_* facts about its failure."""

    id: str
    fields: dict[str, str]
    failure: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"id": self.id, "fields": self.fields, "failure": self.failure}


@dataclass
class Outcome:
    """What a replay or drop did: `done` maps a dead letter's id to its new id (replay) or to ""."""

    done: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # dead letters without original fields: nothing to replay
    refused: dict[str, str] = field(default_factory=dict)  # dead letters whose original cannot be restored: why

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "done": self.done,
            "count": len(self.done),
            "missing": self.missing,
            "skipped": self.skipped,
            "refused": self.refused,
        }


def _dead_letter(entry_id: Any, raw: dict[Any, Any]) -> DeadLetter:
    fields: dict[str, str] = {}
    readable = True
    for raw_name, raw_value in raw.items():
        (name, name_ok), (value, value_ok) = _decoded(raw_name), _decoded(raw_value)
        readable = readable and name_ok and value_ok
        fields[name] = value
    original = {k: v for k, v in fields.items() if not k.startswith(DL_PREFIX)}
    failure = {k[len(DL_PREFIX) :]: v for k, v in fields.items() if k.startswith(DL_PREFIX)}
    if not readable:
        failure[UNREADABLE] = "not written as text by a consumer: its original entry cannot be told"
    return DeadLetter(text(entry_id), original, failure)


def _decoded(value: Any) -> tuple[str, bool]:
    """`value` as text, and whether it was text (a dead letter written by hand may hold any bytes)."""
    if not isinstance(value, bytes):
        return str(value), True
    try:
        return value.decode(), True
    except UnicodeDecodeError:
        return value.decode(errors="backslashreplace"), False


def original_entry(letter: DeadLetter) -> dict[bytes, bytes]:
    """The entry as it was before it failed, byte for byte; ValueError when the dead letter cannot give it back."""
    for fact in (TRUNCATED, UNREADABLE):
        if fact in letter.failure:
            raise ValueError(f"{fact}: {letter.failure[fact]}")
    return restore_fields(letter.fields)


async def list_dead_letters(redis: Redis, stream: str, *, count: int = 100, start: str = "-") -> list[DeadLetter]:
    """Up to `count` dead letters of `stream`, oldest first, from `start`."""
    entries = await _xrange(redis, names.dead_letter_stream(stream), start, "+", count=count)
    return [_dead_letter(i, f) for i, f in entries]


async def _xrange(redis: Redis, stream: str, start: str, end: str, count: int | None = None) -> list[Any]:
    return cast(list[Any], await redis.xrange(stream, start, end, count=count))


async def _selected(redis: Redis, stream: str, ids: Sequence[str]) -> tuple[list[DeadLetter], list[str]]:
    """The dead letters with these ids, or all that exist now when `ids` is empty; plus the ids not found."""
    dead = names.dead_letter_stream(stream)
    if ids:
        found: list[DeadLetter] = []
        missing: list[str] = []
        for entry_id in ids:
            entries = await _xrange(redis, dead, entry_id, entry_id)
            if entries:
                found.append(_dead_letter(*entries[0]))
            else:
                missing.append(entry_id)
        return found, missing
    # Only what is there now: a poison message that fails again while we work is not replayed in a loop.
    newest = cast(list[Any], await redis.xrevrange(dead, "+", "-", count=1))
    if not newest:
        return [], []
    last = text(newest[0][0])
    selected: list[DeadLetter] = []
    start = "-"
    while True:
        batch = await _xrange(redis, dead, start, last, count=PAGE)
        selected.extend(_dead_letter(i, f) for i, f in batch)
        if len(batch) < PAGE:
            return selected, []
        start = f"({text(batch[-1][0])}"


async def replay(redis: Redis, stream: str, ids: Sequence[str] = ()) -> Outcome:
    """Re-add each dead letter's original fields to `stream` and delete the dead letter, one transaction each."""
    letters, missing = await _selected(redis, stream, ids)
    outcome = Outcome(missing=missing)
    dead = names.dead_letter_stream(stream)
    for letter in letters:
        if not letter.fields:
            outcome.skipped.append(letter.id)
            continue
        try:
            entry = original_entry(letter)
        except ValueError as exc:
            outcome.refused[letter.id] = str(exc)
            continue
        async with redis.pipeline(transaction=True) as pipe:
            # append copies the mapping as it is: the original bytes go back unchanged, whatever its str typing says.
            append(pipe, stream, cast(dict[str, str], entry))
            pipe.xdel(dead, letter.id)
            new_id, _ = await pipe.execute()
        outcome.done[letter.id] = text(new_id)
    return outcome


async def drop(redis: Redis, stream: str, ids: Sequence[str] = ()) -> Outcome:
    """Delete dead letters of `stream`: the given ids, or every one that exists now."""
    letters, missing = await _selected(redis, stream, ids)
    outcome = Outcome(missing=missing)
    dead = names.dead_letter_stream(stream)
    for start in range(0, len(letters), PAGE):
        chunk = [letter.id for letter in letters[start : start + PAGE]]
        await redis.xdel(dead, *chunk)
        outcome.done.update(dict.fromkeys(chunk, ""))
    return outcome
