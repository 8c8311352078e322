"""What the consumer loop reads and hands its handler: options, raw and typed messages, failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from pricealert.common.events import Event, Fields, MalformedEvent, RawFields, decode_fields
from pricealert.common.health import HEALTH_TTL_S

E = TypeVar("E", bound=Event)


class ForeignPending(Exception):
    """Entries of the group are pending at another consumer (a former owner's read that landed after the takeover):
    an exclusive consumer takes them over and handles them before what it read after them."""


class PermanentError(Exception):
    """A handler failure that no retry can fix: the entry goes to the dead letters at once."""


class RetryLater(Exception):
    """A handler failure of a dependency that is away (the database): the batch is retried in hand, after a pause,
    until it succeeds or the consumer stops, and counts no delivery, so an outage dead-letters nothing."""


PERMANENT_ERRORS: tuple[type[Exception], ...] = (PermanentError, MalformedEvent)


class Message(NamedTuple):
    """One stream entry handed to a raw handler; `raw` is what redis-py returned, `fields` its str form."""

    id: str
    raw: RawFields
    deliveries: int = 1

    @property
    def fields(self) -> Fields:
        """The entry's fields as str (decoded on each access: read it once per handler)."""
        return decode_fields(self.raw)


class Received(NamedTuple, Generic[E]):
    """One stream entry handed to a typed handler: its event, decoded by the loop, and the entry behind it."""

    id: str
    event: E
    raw: RawFields
    deliveries: int = 1

    @property
    def fields(self) -> Fields:
        """The entry's fields as str, extra fields included (decoded on each access: read it once per handler)."""
        return decode_fields(self.raw)


BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]
EventHandler = Callable[[Sequence[Received[E]]], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerOptions:
    """Where a consumer reads and how patient it is with failures."""

    stream: str
    group: str
    consumer: str
    service: str
    batch_size: int = 200
    block_ms: int = 1_000
    # Must exceed the slowest legitimate handler, or a healthy replica's entry is handled twice.
    reclaim_idle_ms: int = 30_000
    reclaim_every_s: float = 1.0
    max_deliveries: int = 5
    group_start_id: str = "0"
    health_ttl_s: int = HEALTH_TTL_S
    # Lag and pending gauges cost one XINFO GROUPS: read at most this often, never per batch.
    levels_every_s: float = 5.0
    # The handler acknowledges its entries itself, atomically with its effect (the loop then does not).
    handler_acks: bool = False
    # Read the next batch while the handler runs, so that the client parses it while Redis works on this one.
    # The prefetched entries wait in this consumer's pending list meanwhile: only for handlers that are quick
    # next to reclaim_idle_ms and idempotent (the evaluator's script).
    prefetch: bool = False
    # The only consumer of its stream for now (a shard's owner, ownership.py): at start it takes every entry
    # pending in the group, whoever read it, and handles those first; later, entries another consumer holds (a
    # former owner's read that landed after the takeover) are taken and handled before newer ones. Per-symbol order
    # is kept across a handover (recurring and percent alerts depend on it).
    exclusive: bool = False
    # With exclusive: the handler itself raises ForeignPending (the evaluator's script checks in the same call), so
    # the loop does not ask Redis before every batch.
    handler_checks_pending: bool = False


def text(value: Any) -> str:
    """A stream id or name from a redis-py reply (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def id_key(entry_id: Any) -> tuple[int, ...]:
    """A stream entry id as a tuple that sorts as Redis orders the ids."""
    return tuple(int(part) for part in text(entry_id).split("-"))


def entries_of(reply: Any) -> list[tuple[str, RawFields]]:
    """Flatten an XREADGROUP reply (RESP2 list or RESP3 dict) for one stream."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    out: list[tuple[str, RawFields]] = []
    for _stream, entries in streams:
        out.extend(
            (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), fields or {})
            for entry_id, fields in entries
        )
    return out
