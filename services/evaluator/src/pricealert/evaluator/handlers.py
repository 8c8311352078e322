"""The evaluator's stream handlers: per owned shard, one consumer keeps the index current, another evaluates ticks.

Shards (ownership.py): each replica holds leases on its fair share of the shards and works only those.
Consumes: pricealert:{s<k>}:alert-events (AlertEvent, group evaluator) into the index (index.py);
          pricealert:{s<k>}:ticks (Tick, group evaluator; raw fast path, matcher.py, fenced by the shard's lease).
Produces: pricealert:{s<k>}:triggers (Trigger), appended by the evaluation script (lua/evaluate_ticks.lua).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog
from structlog.contextvars import bound_contextvars

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, Received, StreamConsumer
from pricealert.common.events import AlertEvent, Tick, decode_entry
from pricealert.common.health import keep_beating
from pricealert.common.ownership import ShardOwnership
from pricealert.common.redisconn import RedisClient
from pricealert.common.runner import gather_until_stopped
from pricealert.evaluator import metrics
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Matcher
from pricealert.evaluator.settings import EvaluatorSettings

log = structlog.get_logger()
SERVICE = "evaluator"
TICK_FIELDS = len(Tick.FIELDS)


def alert_events_consumer(redis: RedisClient, settings: EvaluatorSettings, shard: int) -> StreamConsumer:
    """Applies the shard's alert.created / deleted / expired to the index."""
    index = AlertIndex(redis, settings.shards)

    async def handle_alert_events(messages: Sequence[Received[AlertEvent]]) -> None:
        for message in messages:
            event = message.event
            with bound_contextvars(alert_id=event.alert_id):
                changed = await index.apply(event)
                log.info("alert.indexed", kind=event.type.value, symbol=event.symbol, changed=changed)
            if changed:
                metrics.INDEX_CHANGES.labels(event.type.name.lower()).inc()

    options = ConsumerOptions(
        stream=AlertEvent.stream_of(shard),
        group=names.GROUP_EVALUATOR,
        consumer=settings.consumer_name,
        service=SERVICE,
        batch_size=200,
        reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
        exclusive=True,
    )
    return StreamConsumer(redis, options, handle_alert_events, event=AlertEvent)


def ticks_consumer(
    redis: RedisClient, settings: EvaluatorSettings, shard: int, *, owner_key: str, token: str
) -> StreamConsumer:
    """Evaluates the shard's ticks in batches against the index, while `token` holds the shard's lease."""
    matcher = Matcher(
        redis,
        shard=shard,
        count=settings.shards,
        owner_key=owner_key,
        token=token,
        firings_per_hour=settings.firings_per_hour,
        consumer=settings.consumer_name,
    )

    async def handle_ticks(messages: Sequence[Message]) -> None:
        started = time.perf_counter()
        for message in messages:
            if len(message.raw) != TICK_FIELDS:
                # The matcher reads only a tick's own fields: any other must still be readable and of sane size.
                decode_entry(message.raw)
        fired = await matcher.fire(messages)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.TICKS.inc(len(messages))
        if not fired:
            return
        metrics.TRIGGERS.inc(len(fired))
        # Triggers are rare next to ticks: one line each is affordable, and it is what an operator greps for.
        for trigger in fired:
            with bound_contextvars(alert_id=trigger.alert_id, trigger_id=trigger.trigger_id):
                log.info("trigger.fired", symbol=trigger.symbol, price=trigger.price)

    options = ConsumerOptions(
        stream=Tick.stream_of(shard),
        group=names.GROUP_EVALUATOR,
        consumer=settings.consumer_name,
        service=SERVICE,
        batch_size=settings.tick_batch_size,
        reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
        # A new group starts at the stream's end: ticks from before the first start judge no alert.
        group_start_id="$",
        handler_acks=True,
        # Redis runs one batch's script while this process parses the next batch: the two cores work at once.
        prefetch=True,
        # The shard's owner takes over what a dead owner left pending, at once; the evaluation script refuses a batch
        # while another consumer holds pending ticks (a former owner's late read), so they are judged first.
        exclusive=True,
        handler_checks_pending=True,
    )
    return StreamConsumer(redis, options, handle_ticks)


def ownership_of(redis: RedisClient, settings: EvaluatorSettings) -> ShardOwnership:
    """This replica's leases on the evaluator's shards."""
    return ShardOwnership(
        redis,
        service=SERVICE,
        consumer=settings.consumer_name,
        count=settings.shards,
        lease_ms=settings.shard_lease_ms,
        interval_s=settings.shard_interval_s,
    )


async def run_shard(
    redis: RedisClient, settings: EvaluatorSettings, ownership: ShardOwnership, shard: int, stop: asyncio.Event
) -> None:
    """Both consumers of one owned shard until `stop` is set (the shard went) or one fails (ShardLeaseLost)."""
    events = alert_events_consumer(redis, settings, shard)
    ticks = ticks_consumer(redis, settings, shard, owner_key=ownership.owner_key(shard), token=ownership.token)
    await gather_until_stopped(stop, events.run(stop), ticks.run(stop))


async def run(redis: RedisClient, settings: EvaluatorSettings, stop: asyncio.Event) -> None:
    """Work the shards this replica holds until `stop` is set; the heartbeat goes on while it holds none."""
    ownership = ownership_of(redis, settings)

    async def work(shard: int, shard_stop: asyncio.Event) -> None:
        await run_shard(redis, settings, ownership, shard, shard_stop)

    await gather_until_stopped(
        stop, ownership.run(stop, work), keep_beating(redis, SERVICE, settings.consumer_name, stop)
    )
