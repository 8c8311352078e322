"""Bulk loading of v1-shaped alerts into the evaluator's index: the members index_alert.lua would write, many per ZADD.

The script checks tombstones, versions and duplicates one alert per call; a bench's fresh index has none of them, so
the same members (MEMBER_FIELDS, the indexed_at the script takes from Redis's clock) go in one ZADD per key and
chunk, written as raw RESP on one connection per Redis (Redis's mass insertion; redis-py's command packing was most
of the time); on a Redis Cluster each key's ZADD goes to the master serving its slot. tests/bench/test_curves_smoke.py
checks the keys come out exactly as the script writes them.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from redis.asyncio import Redis, RedisCluster

from pricealert.common import names
from pricealert.common.events import Condition, now_ms
from pricealert.common.shards import shard_of
from pricealert.evaluator.index import MEMBER_FIELDS, IndexedAlert

# The member's layout this writes: alert id, indexed_at, user id, email, condition, target, expires_at (none), name.
assert MEMBER_FIELDS == (
    "alert_id",
    "indexed_at",
    "user_id",
    "email",
    "condition",
    "target_price",
    "expires_at",
    "name",
)


def _uuid(n: int) -> str:
    """str(uuid.UUID(int=n)), without the object."""
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _zadd(key: str, pairs: list[bytes]) -> bytes:
    """One ZADD as RESP: `pairs` alternate score and member, each already a RESP bulk string."""
    return b"*%d\r\n$4\r\nZADD\r\n%s%s" % (len(pairs) + 2, _bulk(key.encode()), b"".join(pairs))


def send_raw(host: str, port: int, commands: list[bytes], *, reply_lines: int = 1) -> None:
    """Write the commands on a fresh connection and read their replies, `reply_lines` lines each (1: an integer, 2: a
    bulk string); an error reply raises. Blocking: it runs in a thread, so Redis takes one chunk while the next is
    made (the GIL is free in send and recv)."""
    with socket.create_connection((host, port), timeout=120) as connection:
        connection.sendall(b"".join(commands))
        replies, lines = b"", 0
        while lines < len(commands) * reply_lines:
            data = connection.recv(1 << 16)
            if not data:
                raise RuntimeError("Redis closed the connection during a bulk load")
            lines += (replies[-1:] + data).count(b"\r\n") if replies[-1:] == b"\r" else data.count(b"\r\n")
            replies += data
            if replies[:1] == b"-" or b"\r\n-" in replies[-len(data) - 2 :]:
                raise RuntimeError(f"a bulk command failed: {replies[replies.find(b'-') :][:300]!r}")


Address = tuple[str, int]


async def _router(redis: Redis | RedisCluster) -> Callable[[str], Address]:
    """Where a key's ZADD goes: the one Redis, or on a cluster the master that serves the key's slot."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()  # the slot map (a no-op once the client has it)

        def master_of(key: str) -> Address:
            node = redis.get_node_from_key(key)
            if node is None:
                raise RuntimeError(f"no master serves the slot of {key}")
            return str(node.host), int(node.port)

        return master_of
    address = address_of(redis)
    return lambda key: address


def address_of(redis: Redis) -> Address:
    """The host and port a one-Redis client talks to (the bulk writers open their own connection there)."""
    kwargs = redis.connection_pool.connection_kwargs
    return str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379))


async def _send_routed(route: Callable[[str], Address], commands: dict[str, bytes]) -> None:
    """Each key's command (RESP) to its Redis, each Redis's share on its own connection, the Redises at once."""
    by_address: dict[Address, list[bytes]] = defaultdict(list)
    for key, command in commands.items():
        by_address[route(key)].append(command)
    await asyncio.gather(
        *(asyncio.to_thread(send_raw, host, port, commands) for (host, port), commands in by_address.items())
    )


async def load_plain(
    redis: Redis | RedisCluster, first: int, count: int, symbols: list[str], shards: int, *, chunk: int = 100_000
) -> None:
    """Alerts first .. count-1 as evaluator_bench.load_alerts makes them with no advanced ones (the same random
    targets: definition(n, Random(1 + first), False)), indexed as index_alert.lua would; alert n on symbols[n %
    len(symbols)]."""
    route = await _router(redis)
    assert count <= 16**12, "alert ids are UUIDs of n with only the last 12 hex digits set"
    randbelow = random.Random(1 + first)._randbelow  # what randint(2_000, 90_000) draws from, as definition()
    keys = [
        (names.eval_above_key(shard_of(s, shards), s), names.eval_below_key(shard_of(s, shards), s)) for s in symbols
    ]
    # The user id and email of alert n are those of user n % 50 000 (evaluator_bench.load_alerts): made once each.
    users = [f"{_uuid(u + 10**12)}\ttrader.{u:05d}@example.com" for u in range(min(count, 50_000))]
    # Every target's text, Decimal's form of 100 ± offset thousandths, by offset - 2 000 (and its RESP length)
    above, below = _targets(1), _targets(-1)
    sending: asyncio.Task[None] | None = None  # Redis takes a chunk while the next one is made
    for start in range(first, count, chunk):
        now = now_ms()  # one clock read per chunk: the script reads Redis's, in ms, per alert
        pieces: dict[str, list[str]] = defaultdict(list)
        for n in range(start, min(start + chunk, count)):
            target, side = (above, "above") if n % 2 == 0 else (below, "below")
            text, head = target[randbelow(88_001)]
            member = f"00000000-0000-0000-0000-{n:012x}\t{now}\t{users[n % 50_000]}\t{side}\t{text}\t\t"
            # score and member as RESP bulk strings in one piece (ASCII: characters are bytes)
            pieces[keys[n % len(symbols)][side == "below"]].append(f"{head}${len(member)}\r\n{member}\r\n")
        commands = {
            key: b"*%d\r\n$4\r\nZADD\r\n%s%s" % (2 * len(parts) + 2, _bulk(key.encode()), "".join(parts).encode())
            for key, parts in pieces.items()
        }
        if sending:
            await sending
        sending = asyncio.create_task(_send_routed(route, commands))
    if sending:
        await sending


def _targets(sign: int) -> list[tuple[str, str]]:
    """For offsets 2 000 .. 90 000 thousandths: the text of 100 + sign * offset as Decimal writes it, and its RESP
    bulk string."""
    texts = []
    for offset in range(2_000, 90_001):
        price = 100_000 + sign * offset
        text = f"{price // 1000}.{price % 1000:03d}".rstrip("0").rstrip(".")
        texts.append((text, f"${len(text)}\r\n{text}\r\n"))
    return texts


class Members:
    """v1-shaped alerts queued by index key as ZADD arguments, `send` writing them (the plain alerts of a mixed load,
    beside the advanced ones the scripts index); the member as IndexedAlert.member_rest makes it."""

    def __init__(self, redis: Redis, shards: int) -> None:
        self.host, self.port = address_of(redis)
        self.shards, self.now = shards, now_ms()
        self.pairs: dict[str, list[bytes]] = defaultdict(list)

    def add(self, alert_id: str, user_id: str, email: str, symbol: str, condition: Condition, target: Decimal) -> None:
        price = format(target, "f")
        rest = IndexedAlert(alert_id, user_id, email, symbol, condition, price, "", None).member_rest()
        key = {Condition.ABOVE: names.eval_above_key, Condition.BELOW: names.eval_below_key}[condition]
        member = f"{alert_id}\t{self.now}\t{rest}".encode()
        self.pairs[key(shard_of(symbol, self.shards), symbol)] += (_bulk(price.encode()), _bulk(member))

    async def send(self) -> None:
        if self.pairs:
            commands = [_zadd(key, values) for key, values in self.pairs.items()]
            await asyncio.to_thread(send_raw, self.host, self.port, commands)
        self.pairs.clear()
        self.now = now_ms()
