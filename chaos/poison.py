"""Poison under load: garbage written to every consumed stream at a steady rate while the market ramps, then judged.

The oracle: every garbage entry dead-lettered once by each group that reads its stream, with a reason, and left
pending nowhere; none became a trigger, a mail or a feed event; every worker still running with a fresh heartbeat;
the good triggers' trade -> trigger p99 while the garbage flowed within a bound of the same run's p99 without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chaos.oracle import FOREIGN_TRIGGERS, read_triggers
from chaos.scenarios import FaultContext, Scenario, wall_ms
from chaos.stack import ChaosStack
from chaos.workload import SYMBOLS
from pricealert.common import names
from pricealert.devstack.poison import hostile_entries, misshapen_entries
from pricealert.devstack.poison_streams import ReadStream, read_streams

RATE_PER_S = 40  # garbage entries a second, spread over every stream and kind in turn
POISON_S = 10.0  # the up ramp and its burst of firings run under it; the down ramp and the swings after it do not
SETTLE_S = 60.0  # longest wait, at the verdict, for the last garbage to reach the dead letters
# Bound on the good triggers' trade -> trigger p99 while poisoned: this many times the p99 without, or this many ms
# above it, whichever is larger (a busy two-core machine: small p99s vary by tens of ms between phases).
P99_FACTOR, P99_SLACK_MS = 3.0, 1_000.0


@dataclass(frozen=True)
class Injected:
    """One garbage entry written: where, what is wrong with it, and which groups must dead-letter it."""

    stream: str
    entry_id: str
    kind: str
    groups: tuple[str, ...]
    user_id: str | None  # its user_id field, if it has a readable one: no feed of that user may appear


@dataclass
class Poisoner:
    """Writes the garbage in a background task and keeps what it wrote."""

    stack: ChaosStack
    streams: list[ReadStream]
    injected: list[Injected] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Kind after kind, each on every stream in turn, RATE_PER_S a second, until stopped; never before every
        stream had every kind once (a slow machine writes slower than the rate)."""
        pause, due, rounds = 1 / RATE_PER_S, time.monotonic(), 0
        while not (self.stop.is_set() and rounds):
            garbage = [hostile_entries(read.good) | misshapen_entries(read.good) for read in self.streams]
            for kind in dict.fromkeys(k for entries in garbage for k in entries):
                for read, entries in zip(self.streams, garbage, strict=True):
                    if kind not in entries:
                        continue
                    if self.stop.is_set() and rounds:
                        return
                    await self.write(read, kind, entries[kind])
                    due += pause
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            rounds += 1

    async def write(self, read: ReadStream, kind: str, entry: dict[bytes, bytes]) -> None:
        """XADD one garbage entry (as anything with Redis access can) and note it."""
        entry_id: Any = await self.stack.redis.xadd(read.stream, entry)  # type: ignore[arg-type]  # garbage carries bytes on purpose
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        if names.stream_kind(read.stream) == names.TRIGGERS_KIND:
            FOREIGN_TRIGGERS.add((read.stream, entry_id))
        user = entry.get(b"user_id")
        with contextlib.suppress(UnicodeDecodeError):
            user_id = user.decode() if user is not None and len(user) < 200 else None
            self.injected.append(Injected(read.stream, entry_id, kind, read.groups, user_id))
            return
        self.injected.append(Injected(read.stream, entry_id, kind, read.groups, None))


POISONERS: dict[int, Poisoner] = {}  # by id(FaultContext): the scenario's steps and its verdict share one


def consumed_streams(shards: int) -> list[ReadStream]:
    """Every consumed stream of the workload's shards, once each."""
    seen: dict[str, ReadStream] = {}
    for symbol in SYMBOLS:
        for read in read_streams(symbol, shards):
            seen.setdefault(read.stream, read)
    return list(seen.values())


async def start_poisoning(ctx: FaultContext) -> None:
    """Start writing garbage; the verdict is added to the context."""
    poisoner = Poisoner(ctx.stack, consumed_streams(ctx.stack.shards))
    POISONERS[id(ctx)] = poisoner
    ctx.started_ms = wall_ms()
    poisoner.task = asyncio.create_task(poisoner.run())
    ctx.verdicts.append(lambda: poison_verdict(ctx, poisoner))
    ctx.notes.append(f"garbage on {len(poisoner.streams)} streams, {RATE_PER_S}/s")


async def stop_poisoning(ctx: FaultContext) -> None:
    """Stop writing garbage."""
    poisoner = POISONERS[id(ctx)]
    poisoner.stop.set()
    if poisoner.task is not None:
        await poisoner.task
    ctx.ended_ms = wall_ms()
    ctx.notes.append(f"{len(poisoner.injected)} garbage entries written")


async def dead_letters(stack: ChaosStack, streams: set[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(stream, entry id) -> [(group, reason)] of every dead letter of `streams`."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for stream in streams:
        raw: Any = await stack.redis.xrange(names.dead_letter_stream(stream))
        for _, fields in raw:
            key = (stream, fields[b"dl_entry_id"].decode())
            found.setdefault(key, []).append((fields[b"dl_group"].decode(), fields.get(b"dl_reason", b"").decode()))
    return found


async def pending(stack: ChaosStack, streams: list[ReadStream]) -> set[tuple[str, str]]:
    """(stream, entry id) of everything pending in any group of `streams`."""
    out: set[tuple[str, str]] = set()
    for read in streams:
        for group in read.groups:
            raw: Any = await stack.redis.xpending_range(read.stream, group, min="-", max="+", count=1_000_000)
            out.update((read.stream, p["message_id"].decode()) for p in raw)
    return out


def undead(injected: list[Injected], letters: dict[tuple[str, str], list[tuple[str, str]]]) -> list[Injected]:
    """The garbage entries some group of their stream did not dead-letter with a reason."""
    missing = []
    for entry in injected:
        got = letters.get((entry.stream, entry.entry_id), [])
        if not set(entry.groups) <= {group for group, reason in got if reason}:
            missing.append(entry)
    return missing


def p99(values: list[float]) -> float | None:
    """The 99th percentile (nearest rank), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)], 1)


async def latencies(stack: ChaosStack, window: tuple[float, float]) -> dict[str, Any]:
    """The good triggers' trade -> trigger p99 (fired_at - exchange_time, ms), fired during `window` and not."""
    during: list[float] = []
    without: list[float] = []
    for trigger in await read_triggers(stack.redis, stack.shards):
        fired, traded = int(trigger["fired_at"]), int(trigger["exchange_time"])
        (during if window[0] <= fired <= window[1] else without).append(float(fired - traded))
    bound = None
    if without:
        base = p99(without) or 0.0
        bound = round(max(base * P99_FACTOR, base + P99_SLACK_MS), 1)
    worst = p99(during)
    return {
        "poison_triggers_during": len(during),
        "poison_triggers_without": len(without),
        "poison_p99_during_ms": worst,
        "poison_p99_without_ms": p99(without),
        "poison_p99_bound_ms": bound,
        "poison_latency_ok": worst is not None and bound is not None and worst <= bound,
    }


async def poison_verdict(ctx: FaultContext, poisoner: Poisoner) -> dict[str, Any]:
    """The poison oracle (the normal one judged the good traffic already)."""
    stack, injected = ctx.stack, poisoner.injected
    streams = {entry.stream for entry in injected}
    deadline = time.monotonic() + SETTLE_S
    while True:
        letters = await dead_letters(stack, streams)
        missing = undead(injected, letters)
        stuck = {(e.stream, e.entry_id) for e in injected} & await pending(stack, poisoner.streams)
        if (not missing and not stuck) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    fed = [e.user_id for e in injected if e.user_id and await stack.redis.exists(names.feed_stream(e.user_id))]
    workers = [name for name in stack.replicas() if name not in ("auth", "alerts", "gateway")]
    beats = await stack.redis.mget([stack.health_key(name) for name in workers])
    stale = [name for name, at in zip(workers, beats, strict=True) if at is None or int(at) < wall_ms() - 30_000]
    ended = {name: code for name, code in stack.exit_codes().items() if code is not None}
    per_group = Counter(group for got in letters.values() for group, _ in got)
    result: dict[str, Any] = {
        "poison_injected": len(injected),
        "poison_kinds": len({e.kind for e in injected}),
        "poison_streams": len(streams),
        "poison_not_dead_lettered": [f"{e.stream} {e.kind} {e.entry_id}" for e in missing][:20],
        "poison_still_pending": sorted(f"{s} {i}" for s, i in stuck)[:20],
        "poison_fed": sorted(set(fed))[:20],
        "poison_dead_letters_by_group": dict(sorted(per_group.items())),
        "poison_stale_heartbeats": stale,
        "poison_ended_processes": ended,
    }
    result.update(await latencies(stack, (ctx.started_ms or 0, ctx.ended_ms or 0)))
    ctx.notes.append(
        f"poison: {len(injected)} entries of {result['poison_kinds']} kinds on {len(streams)} streams, "
        f"{len(missing)} not dead-lettered, {len(stuck)} pending, {len(fed)} fed, stale workers {stale or 'none'}; "
        f"trade -> trigger p99 {result['poison_p99_during_ms']} ms poisoned vs {result['poison_p99_without_ms']} ms "
        f"not (bound {result['poison_p99_bound_ms']})"
    )
    result["poison_pass"] = bool(
        injected and not missing and not stuck and not fed and not stale and not ended and result["poison_latency_ok"]
    )
    return result


POISON_SCENARIOS = [
    Scenario(
        "poison-every-stream",
        "garbage (binary, missing fields, wrong types, a megabyte, 10 000 fields, JSON, unknown versions) on every "
        f"consumed stream at {RATE_PER_S}/s through the up ramp",
        start_poisoning,
        stop_poisoning,
        fault_s=POISON_S,
    )
]
