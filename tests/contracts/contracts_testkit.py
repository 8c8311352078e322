"""Reading a stream back for the contract tests: every entry raw, and as its event class."""

from __future__ import annotations

from redis.asyncio import Redis

from pricealert.common.events import Event


async def entries(redis: Redis, stream: str) -> list[dict[bytes, bytes]]:
    """Every entry of `stream`, raw, oldest first."""
    return [fields for _, fields in await redis.xrange(stream)]


def field_names(raw: dict[bytes, bytes]) -> tuple[str, ...]:
    """An entry's field names, in the order they were written."""
    return tuple(name.decode() for name in raw)


def assert_written_as(event_class: type[Event], raw: dict[bytes, bytes]) -> None:
    """The entry has exactly the class's fields, in its order."""
    assert field_names(raw) == event_class.FIELDS
