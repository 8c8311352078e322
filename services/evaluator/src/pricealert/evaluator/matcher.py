"""Evaluates a batch of one shard's ticks in one atomic script: take each reached alert out, append its trigger."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.deadletter import describe
from pricealert.common.events import (
    MAX_PRICE_FRACTION_DIGITS,
    MAX_PRICE_INTEGER_DIGITS,
    WINDOW_BUCKETS,
    WINDOWS,
    MalformedEvent,
    RawFields,
    Tick,
    Trigger,
    now_ms,
)
from pricealert.common.ownership import ShardLeaseLost
from pricealert.common.publisher import maxlen_for
from pricealert.common.redisconn import RedisClient
from pricealert.common.scripts import lua
from pricealert.common.shards import shard_of
from pricealert.evaluator.index import TOMBSTONE_TTL_S, symbol_keys

# Taking an alert out of the index and appending its trigger happen in one script (lua/evaluate_ticks.lua), so a
# replica that dies at any instruction did both or neither: redelivered ticks can never fire an alert twice. Every key
# is passed in KEYS (one shard's: one slot on a cluster), and the script runs only for the shard's lease holder.
EVALUATE_TICKS = lua("pricealert.evaluator", "member", "defs", "fire", "levels", "percent", "evaluate_ticks")

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
MAX_KNOWN_SYMBOLS = 100_000  # the per-symbol key cache starts over past this many symbols
DEFAULT_FIRINGS_PER_HOUR = 60
# The windows' bucket lengths in ms, in WINDOWS order (a definition's window index is its place here, from 1).
BUCKET_MS = " ".join(str(seconds * 1000 // WINDOW_BUCKETS) for seconds in WINDOWS.values())


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
    """One firing of a batch: the alert's id, its symbol, the price of the tick that reached it, the trigger id."""

    alert_id: str
    symbol: str
    price: str
    trigger_id: str


class Matcher:
    """Runs the evaluation script for a batch of one shard's tick entries in one round trip; it also acks them.

    Fenced: the script runs only while `token` holds the shard's lease (`owner_key`); else ShardLeaseLost.
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        shard: int,
        count: int,
        owner_key: str,
        token: str,
        group: str = names.GROUP_EVALUATOR,
        firings_per_hour: int = DEFAULT_FIRINGS_PER_HOUR,
    ) -> None:
        self.redis = redis
        self.shard = shard
        self.count = count
        self.group = group
        self.token = token
        self.firings_per_hour = firings_per_hour
        self.ticks_stream = Tick.stream_of(shard)
        self.triggers_stream = Trigger.stream_of(shard)
        self._evaluate: AsyncScript = redis.register_script(EVALUATE_TICKS)
        self._static_keys = [
            owner_key,
            self.ticks_stream,
            self.triggers_stream,
            names.eval_done_key(shard),
            names.eval_defs_key(shard),
        ]
        self._maxlen = str(maxlen_for(self.triggers_stream))
        self._symbol_keys: dict[bytes, list[str]] = {}

    def _keys_of(self, symbol: bytes, message_id: str) -> list[str]:
        """The index keys of `symbol` in this shard (cached); a tick of another shard's symbol is malformed here."""
        keys = self._symbol_keys.get(symbol)
        if keys is None:
            name = symbol.decode()
            if shard_of(name, self.count) != self.shard:
                raise MalformedEvent(f"tick {message_id} of {name} is not of shard {self.shard}")
            if len(self._symbol_keys) >= MAX_KNOWN_SYMBOLS:
                self._symbol_keys.clear()
            keys = self._symbol_keys[symbol] = [
                *symbol_keys(self.shard, name),
                names.eval_window_key(self.shard, name),
            ]
        return keys

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
        keys = list(self._static_keys)
        for message, line in zip(messages, validated_lines(messages), strict=True):
            symbol, rest = line.split(b" ", 1)
            price = rest[: rest.index(b" ")]
            value = float(price)
            known = extremes.get(symbol)
            if known is None:
                keys += self._keys_of(symbol, message.id)
                lines[symbol] = [rest]
                extremes[symbol] = [(value, price), (value, price)]
                continue
            lines[symbol].append(rest)
            if value > known[0][0]:
                known[0] = (value, price)
            elif value < known[1][0]:
                known[1] = (value, price)
        # One summary line per symbol, in the order its keys were appended to `keys` (dicts keep insertion order).
        summary, chunks, offset = [], [], 1
        for symbol, symbol_lines in lines.items():
            chunk = b"".join(symbol_lines)
            high, low = extremes[symbol]
            latest = max(int(line.split(b" ", 3)[2]) for line in symbol_lines)  # the newest trade time
            summary.append(b"%s %s %s %d %d %d\n" % (symbol, high[1], low[1], offset, len(chunk), latest))
            chunks.append(chunk)
            offset += len(chunk)
        args: list[bytes | str] = [
            self.token,
            str(now_ms()),
            self._maxlen,
            str(TOMBSTONE_TTL_S),
            b"".join(summary),
            b"".join(chunks),
            self.group,
            " ".join(m.id for m in messages),
            str(self.firings_per_hour),
            BUCKET_MS,
        ]
        reply = await self._evaluate(keys=keys, args=args)
        if not isinstance(reply, list):
            raise ShardLeaseLost(f"shard {self.shard}: the lease is not {self.token}'s")
        values = [_text(value) for value in reply]
        return [Fired(*values[i : i + 4]) for i in range(0, len(values), 4)]
