"""Dead letters: list them, replay them onto their original stream, or drop them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from pricealert.cli.streams import text
from pricealert.common import names
from pricealert.common.deadletter import DL_PREFIX, TRUNCATED, restore_fields
from pricealert.common.publisher import append
from pricealert.common.redisconn import RedisClient

UNREADABLE = "unreadable"  # a failure fact the CLI adds itself, to a dead letter that is not text
PAGE = 500


@dataclass
class DeadLetter:
    """One dead-lettered entry: the original fields and the dl_* facts about its failure."""

    id: str
    fields: dict[str, str]
    failure: dict[str, str]
    stream: str = ""  # the stream it failed on (its dead letters are in `stream`:dead)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"stream": self.stream, "id": self.id, "fields": self.fields, "failure": self.failure}


@dataclass
class Done:
    """One dead letter replayed (as `new_id` on `stream`) or dropped (`new_id` empty)."""

    stream: str
    id: str
    new_id: str = ""


@dataclass
class Refused:
    """One dead letter not replayed: its original entry cannot be restored, and why."""

    stream: str
    id: str
    why: str


@dataclass
class Outcome:
    """What a replay or drop did, over one or more streams (a kind's every shard)."""

    done: list[Done] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ids asked for that no stream has
    skipped: list[Done] = field(default_factory=list)  # dead letters without original fields: nothing to replay
    refused: list[Refused] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "done": [asdict(done) for done in self.done],
            "count": len(self.done),
            "missing": self.missing,
            "skipped": [asdict(skipped) for skipped in self.skipped],
            "refused": [asdict(refused) for refused in self.refused],
        }


def _dead_letter(entry_id: Any, raw: dict[Any, Any], stream: str = "") -> DeadLetter:
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
    return DeadLetter(text(entry_id), original, failure, stream)


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


async def list_dead_letters(
    redis: RedisClient, streams: Sequence[str], *, count: int = 100, start: str = "-"
) -> list[DeadLetter]:
    """Up to `count` dead letters of `streams` (stream after stream), oldest first in each, from `start`."""
    letters: list[DeadLetter] = []
    for stream in streams:
        if len(letters) >= count:
            break
        entries = await _xrange(redis, names.dead_letter_stream(stream), start, "+", count=count - len(letters))
        letters.extend(_dead_letter(i, f, stream) for i, f in entries)
    return letters


async def _xrange(redis: RedisClient, stream: str, start: str, end: str, count: int | None = None) -> list[Any]:
    return cast(list[Any], await redis.xrange(stream, start, end, count=count))


async def _selected(redis: RedisClient, stream: str, ids: Sequence[str]) -> list[DeadLetter]:
    """The dead letters of `stream` with these ids, or all that exist now when `ids` is empty."""
    dead = names.dead_letter_stream(stream)
    if ids:
        found: list[DeadLetter] = []
        for entry_id in ids:
            entries = await _xrange(redis, dead, entry_id, entry_id)
            found.extend(_dead_letter(i, f, stream) for i, f in entries)
        return found
    # Only what is there now: a poison message that fails again while we work is not replayed in a loop.
    newest = cast(list[Any], await redis.xrevrange(dead, "+", "-", count=1))
    if not newest:
        return []
    last = text(newest[0][0])
    selected: list[DeadLetter] = []
    start = "-"
    while True:
        batch = await _xrange(redis, dead, start, last, count=PAGE)
        selected.extend(_dead_letter(i, f, stream) for i, f in batch)
        if len(batch) < PAGE:
            return selected
        start = f"({text(batch[-1][0])}"


async def _selected_in(
    redis: RedisClient, streams: Sequence[str], ids: Sequence[str]
) -> tuple[list[DeadLetter], list[str]]:
    """The dead letters of every stream in `streams` (with `ids`, or all), and the ids none of them has."""
    letters = [letter for stream in streams for letter in await _selected(redis, stream, ids)]
    found = {letter.id for letter in letters}
    return letters, [entry_id for entry_id in ids if entry_id not in found]


async def replay(redis: RedisClient, streams: Sequence[str], ids: Sequence[str] = ()) -> Outcome:
    """Re-add each dead letter's original fields to its stream and delete the dead letter, one MULTI each.

    The stream and its dead letters carry one hash tag (a shard's, or {auth}): on a cluster the MULTI is one slot's.
    """
    letters, missing = await _selected_in(redis, streams, ids)
    outcome = Outcome(missing=missing)
    for letter in letters:
        if not letter.fields:
            outcome.skipped.append(Done(letter.stream, letter.id))
            continue
        try:
            entry = original_entry(letter)
        except ValueError as exc:
            outcome.refused.append(Refused(letter.stream, letter.id, str(exc)))
            continue
        async with redis.pipeline(transaction=True) as pipe:
            # append copies the mapping as it is: the original bytes go back unchanged, whatever its str typing says.
            append(pipe, letter.stream, cast(dict[str, str], entry))
            pipe.xdel(names.dead_letter_stream(letter.stream), letter.id)
            new_id, _ = await pipe.execute()
        outcome.done.append(Done(letter.stream, letter.id, text(new_id)))
    return outcome


async def drop(redis: RedisClient, streams: Sequence[str], ids: Sequence[str] = ()) -> Outcome:
    """Delete dead letters of `streams`: the given ids, or every one that exists now."""
    letters, missing = await _selected_in(redis, streams, ids)
    outcome = Outcome(missing=missing)
    for stream in streams:
        mine = [letter.id for letter in letters if letter.stream == stream]
        for start in range(0, len(mine), PAGE):
            chunk = mine[start : start + PAGE]
            await redis.xdel(names.dead_letter_stream(stream), *chunk)
            outcome.done.extend(Done(stream, dead_id) for dead_id in chunk)
    return outcome
