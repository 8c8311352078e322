"""Faults on a Redis Cluster (3 masters + 3 replicas), 2 replicas of every worker: shard owners killed, a master killed.

The victims are chosen where the burst lands: the replica that owns BTCUSDT's shard now (its lease's token starts
with the owner's consumer name, which is its process name here), and the master that serves that shard's slot.
"""

from __future__ import annotations

import asyncio
import time

from redis.exceptions import RedisError

from chaos.oracle import accepted_ids
from chaos.scenarios import FaultContext, Scenario, Step, in_flight, noop, wall_ms
from chaos.stack import ChaosStack
from pricealert.common import names
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS
from pricealert.common.shards import shard_of
from pricealert.testsupport.cluster import RedisClusterNodes

BURST_SYMBOL = "BTCUSDT"  # the workload's symbols lie on all three masters; the faults aim at this one's shard
HANDOVER_WITHIN_S = 15.0  # the bound: a dead owner's shards have a new owner within this


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def owners(stack: ChaosStack, service: str) -> dict[int, str]:
    """Shard -> the lease token of `service`'s replica that holds it (shards without a holder left out)."""
    held: dict[int, str] = {}
    for shard in range(stack.shards):
        try:
            token = _text(await stack.redis.get(names.shard_owner_key(service, shard)))
        except TRANSIENT_REDIS_ERRORS:
            continue
        if token:
            held[shard] = token
    return held


def consumer_of(token: str) -> str:
    """The consumer name inside a lease token `<consumer>:<random>` (ownership.ShardOwnership.token)."""
    return token.rsplit(":", 1)[0]


def kill_owner(service: str, symbol: str = BURST_SYMBOL) -> Step:
    """SIGKILL the replica of `service` that owns `symbol`'s shard (it is a victim: restarted at recovery)."""

    async def inject(ctx: FaultContext) -> None:
        shard = shard_of(symbol, ctx.stack.shards)
        token = (await owners(ctx.stack, service)).get(shard, "")
        victim = consumer_of(token) if token else f"{service}-1"
        ctx.started_ms = ctx.started_ms or wall_ms()
        ctx.stack.kill(victim)
        ctx.victims.append(victim)
        held = sorted(k for k, t in (await owners(ctx.stack, service)).items() if consumer_of(t) == victim)
        ctx.notes.append(f"SIGKILL {victim} (owner of shard {shard}, held {held})")

    return inject


def together(*steps: Step) -> Step:
    """Run `steps` one right after the other, as one fault."""

    async def both(ctx: FaultContext) -> None:
        for step in steps:
            await step(ctx)

    return both


async def wait_handover(ctx: FaultContext, service: str, victim: str) -> float | None:
    """Seconds until no shard of `service` is held by `victim` and every shard has an owner; None if not within."""
    deadline = time.monotonic() + HANDOVER_WITHIN_S + 5
    while time.monotonic() < deadline:
        held = await owners(ctx.stack, service)
        if len(held) == ctx.stack.shards and all(consumer_of(t) != victim for t in held.values()):
            return round((wall_ms() - (ctx.started_ms or wall_ms())) / 1000, 2)
        await asyncio.sleep(0.2)
    return None


async def handover_then_restart(ctx: FaultContext) -> None:
    """Wait until the survivors own every shard of the killed replicas, note how long it took, restart them."""
    for victim in ctx.victims:
        service = ctx.stack.replicas()[victim][0]
        took = await wait_handover(ctx, service, victim)
        ctx.notes.append(f"{service} shards of {victim} moved in {took} s" if took else f"{victim}: no handover")
    for victim in ctx.victims:
        ctx.stack.start_process(victim)
    ctx.ended_ms = wall_ms()
    for victim in ctx.victims:
        ready = await ctx.stack.wait_worker(victim, int(ctx.ended_ms), within=30)
        ctx.notes.append(f"restarted {victim}" + ("" if ready else " (no heartbeat within 30 s)"))


def _nodes(ctx: FaultContext) -> RedisClusterNodes:
    assert ctx.stack.cluster_nodes is not None, "a cluster scenario runs on a cluster"
    return ctx.stack.cluster_nodes


async def kill_master(ctx: FaultContext) -> None:
    """kill -9 the master that serves the burst symbol's shard; the cluster promotes its replica."""
    nodes = _nodes(ctx)
    shard = shard_of(BURST_SYMBOL, ctx.stack.shards)
    master = await asyncio.to_thread(nodes.master_of, names.ticks_stream(shard))
    before, accepted = await in_flight(ctx.stack)
    ctx.started_ms = wall_ms()
    await asyncio.to_thread(master.stop, kill=True)
    await asyncio.sleep(0.2)
    ctx.mail_window = len(before | (set(accepted_ids(ctx.stack.smtp)) - accepted))
    ctx.victims.append(str(master.port))
    ctx.notes.append(f"master :{master.port} SIGKILL (serves shard {shard})")


async def promoted_then_rejoin(ctx: FaultContext) -> None:
    """Wait until another node serves the shard's slot and the cluster is ok (the replica promoted), then restart
    the old master, which rejoins as a replica of the new one."""
    nodes = _nodes(ctx)
    key = names.ticks_stream(shard_of(BURST_SYMBOL, ctx.stack.shards))
    began = time.monotonic()
    while time.monotonic() - began < 30:
        try:
            if str((await asyncio.to_thread(nodes.master_of, key)).port) not in ctx.victims:
                break
        except (LookupError, OSError, RedisError):  # no master serves the slot during the election
            pass
        await asyncio.sleep(0.2)
    await asyncio.to_thread(nodes.wait_ok, timeout=30)
    ctx.notes.append(f"replica promoted, cluster ok after {round(time.monotonic() - began, 2)} s")
    ctx.ended_ms = wall_ms()
    for node in nodes.nodes:
        if str(node.port) in ctx.victims and node.process is None:
            await asyncio.to_thread(node.start)
    await asyncio.to_thread(nodes.wait_ok, timeout=30)
    ctx.notes.append("old master restarted: a replica again")


def on_cluster(name: str, what: str, inject: Step, recover: Step) -> Scenario:
    """A scenario on the 3+3 cluster with 2 replicas of ingest, the evaluator and the notifier."""
    return Scenario(name, what, inject, recover, cluster=True, evaluators=2, ingests=2, notifiers=2)


CLUSTER_SCENARIOS: list[Scenario] = [
    on_cluster(
        "cluster-baseline",
        "no fault on a Redis Cluster (3 masters + 3 replicas), 2 ingest + 2 evaluator + 2 notifier processes",
        noop,
        noop,
    ),
    on_cluster(
        "cluster-kill-owners",
        "on the cluster, SIGKILL the evaluator and the ingest replica that own BTCUSDT's shard mid-burst; the "
        "survivors take their shards within the lease, the victims restart once they have",
        together(kill_owner("evaluator"), kill_owner("ingest")),
        handover_then_restart,
    ),
    on_cluster(
        "cluster-kill-master",
        "on the cluster, kill -9 the master serving BTCUSDT's shard mid-burst (its replica is promoted), restart "
        "it once the cluster is ok again (it rejoins as a replica)",
        kill_master,
        promoted_then_rejoin,
    ),
]
