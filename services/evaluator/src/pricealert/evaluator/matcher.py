"""Evaluates a batch of ticks in one atomic script: take each reached alert out of the index, append its trigger."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.deadletter import describe
from pricealert.common.events import (
    MAX_PRICE_FRACTION_DIGITS,
    MAX_PRICE_INTEGER_DIGITS,
    MalformedEvent,
    RawFields,
    Tick,
    Trigger,
    now_ms,
)
from pricealert.common.publisher import maxlen_for
from pricealert.common.scripts import lua
from pricealert.evaluator.index import TOMBSTONE_TTL_S

# Taking an alert out of the index and appending its trigger happen in one script (lua/evaluate_ticks.lua), so a
# replica that dies at any instruction did both or neither: redelivered ticks can never fire an alert twice.
# Index keys are derived inside the script from the tick's symbol (standalone Redis, not Cluster).
EVALUATE_TICKS = lua("pricealert.evaluator", "member", "evaluate_ticks")

# A tick line is the tick's values in Tick.FIELDS order (symbol, price, then integers: tests/contracts checks the
# layout) and its entry id; the regexes below and the script's line pattern read it in that order. One name per key
# (the unpacking fails at import if Tick gains or loses a field): per-tick lookups of module names are the cheapest.
_SYMBOL_KEY, _PRICE_KEY, _TRADE_ID_KEY, _EXCHANGE_TIME_KEY, _RECEIVED_AT_KEY = (field.encode() for field in Tick.FIELDS)

_SYMBOL = rb"[A-Z0-9]{1,32}"
# price (positive decimal), trade id, exchange time, received at, entry id
_PRICE = rb"(?=[0-9.]*[1-9])\d{1,%d}(?:\.\d{1,%d})?" % (MAX_PRICE_INTEGER_DIGITS, MAX_PRICE_FRACTION_DIGITS)
_LINE = _PRICE + rb" \d{1,20} \d{1,20} \d{1,20} \d{1,20}-\d{1,20}\n"
_ONE = re.compile(_SYMBOL + b" " + _LINE)
# One regex over the whole batch is far cheaper than one per tick; per-tick checks run only to name a culprit.
_ALL = re.compile(b"(?:" + _SYMBOL + b" " + _LINE + b")*")
MAX_BATCH = 4_000  # ids are unpacked onto the Lua stack for XACK


def _as_bytes(raw: RawFields) -> dict[bytes, bytes]:
    first = next(iter(raw), b"")
    if isinstance(first, bytes):
        return raw  # type: ignore[return-value]  # checked above: the entry's keys are bytes
    return {str(k).encode(): str(v).encode() for k, v in raw.items()}


def tick_line(message: Message) -> bytes:
    """The tick as "SYMBOL PRICE TRADE_ID EXCHANGE_TIME RECEIVED_AT ENTRY_ID\\n" (not yet validated)."""
    raw = _as_bytes(message.raw)
    try:
        return (
            b" ".join(
                [
                    raw[_SYMBOL_KEY].upper(),
                    raw[_PRICE_KEY],
                    raw[_TRADE_ID_KEY],
                    raw[_EXCHANGE_TIME_KEY],
                    raw[_RECEIVED_AT_KEY],
                    message.id.encode(),
                ]
            )
            + b"\n"
        )
    except (KeyError, AttributeError) as exc:
        raise MalformedEvent(f"tick {message.id} lacks field {exc}") from exc


def validated_lines(messages: Sequence[Message]) -> list[bytes]:
    """Every tick's line; raises MalformedEvent naming the first tick that is not a well-formed trade."""
    lines = [tick_line(m) for m in messages]
    if _ALL.fullmatch(b"".join(lines)):
        return lines
    for message, line in zip(messages, lines, strict=True):
        if not _ONE.fullmatch(line):
            raise MalformedEvent(f"tick {message.id} has a malformed field: {describe(message.raw)}")
    raise MalformedEvent("a tick line broke the batch")  # unreachable: some line failed above


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Fired(NamedTuple):
    """One alert a batch fired: its id (its trigger's too), its symbol and the price of the tick that reached it."""

    alert_id: str
    symbol: str
    price: str


class Matcher:
    """Runs the evaluation script for a batch of tick entries in one round trip; it also acks them."""

    def __init__(self, redis: Redis, *, group: str = names.GROUP_EVALUATOR) -> None:
        self.redis = redis
        self.group = group
        self._evaluate: AsyncScript = redis.register_script(EVALUATE_TICKS)
        self._static_args = [names.EVAL_INDEX_PREFIX, Trigger.stream]

    async def evaluate(self, messages: Sequence[Message]) -> int:
        """Evaluate tick entries in stream order and acknowledge them; returns how many alerts fired."""
        return len(await self.fire(messages))

    async def fire(self, messages: Sequence[Message]) -> list[Fired]:
        """Evaluate tick entries in stream order and acknowledge them; returns the alerts that fired."""
        if not messages:
            return []
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} ticks per batch")
        lines: dict[bytes, list[bytes]] = {}
        extremes: dict[bytes, list[tuple[float, bytes]]] = {}
        for line in validated_lines(messages):
            symbol, rest = line.split(b" ", 1)
            price = rest[: rest.index(b" ")]
            value = float(price)
            known = extremes.get(symbol)
            if known is None:
                lines[symbol] = [rest]
                extremes[symbol] = [(value, price), (value, price)]
                continue
            lines[symbol].append(rest)
            if value > known[0][0]:
                known[0] = (value, price)
            elif value < known[1][0]:
                known[1] = (value, price)
        summary, chunks, offset = [], [], 1
        for symbol, symbol_lines in lines.items():
            chunk = b"".join(symbol_lines)
            high, low = extremes[symbol]
            summary.append(b"%s %s %s %d %d\n" % (symbol, high[1], low[1], offset, len(chunk)))
            chunks.append(chunk)
            offset += len(chunk)
        args: list[bytes | str] = [
            *self._static_args,
            str(now_ms()),
            str(maxlen_for(Trigger.stream)),
            str(TOMBSTONE_TTL_S),
            b"".join(summary),
            b"".join(chunks),
            Tick.stream,
            self.group,
            " ".join(m.id for m in messages),
        ]
        reply = [_text(value) for value in await self._evaluate(keys=[], args=args)]
        return [Fired(reply[i], reply[i + 1], reply[i + 2]) for i in range(0, len(reply), 3)]
