"""The evaluator's stream handlers: one consumer keeps the index current, another evaluates ticks.

Consumes: pricealert:alert-events (AlertEvent, group evaluator) into the index (index.py);
          pricealert:ticks (Tick, group evaluator; raw fast path, matcher.py).
Produces: pricealert:triggers (Trigger), appended by the evaluation script (lua/evaluate_ticks.lua).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis
from structlog.contextvars import bound_contextvars

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, Received, StreamConsumer
from pricealert.common.events import AlertEvent, Tick, decode_entry, trigger_id_for
from pricealert.common.runner import gather_until_stopped
from pricealert.evaluator import metrics
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Matcher
from pricealert.evaluator.settings import EvaluatorSettings

log = structlog.get_logger()
SERVICE = "evaluator"
TICK_FIELDS = len(Tick.FIELDS)


def alert_events_consumer(redis: Redis, settings: EvaluatorSettings) -> StreamConsumer:
    """Applies alert.created / deleted / expired to the index."""
    index = AlertIndex(redis)

    async def handle_alert_events(messages: Sequence[Received[AlertEvent]]) -> None:
        for message in messages:
            event = message.event
            with bound_contextvars(alert_id=event.alert_id):
                changed = await index.apply(event)
                log.info("alert.indexed", kind=event.type.value, symbol=event.symbol, changed=changed)
            if changed:
                metrics.INDEX_CHANGES.labels(event.type.name.lower()).inc()

    options = ConsumerOptions(
        stream=AlertEvent.stream,
        group=names.GROUP_EVALUATOR,
        consumer=settings.consumer_name,
        service=SERVICE,
        batch_size=200,
        reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
    )
    return StreamConsumer(redis, options, handle_alert_events, event=AlertEvent)


def ticks_consumer(redis: Redis, settings: EvaluatorSettings) -> StreamConsumer:
    """Evaluates ticks in batches against the index."""
    matcher = Matcher(redis)

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
            with bound_contextvars(alert_id=trigger.alert_id, trigger_id=trigger_id_for(trigger.alert_id)):
                log.info("trigger.fired", symbol=trigger.symbol, price=trigger.price)

    options = ConsumerOptions(
        stream=Tick.stream,
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
    )
    return StreamConsumer(redis, options, handle_ticks)


async def run(redis: Redis, settings: EvaluatorSettings, stop: asyncio.Event) -> None:
    """Run both consumers until `stop` is set."""
    await gather_until_stopped(
        stop, alert_events_consumer(redis, settings).run(stop), ticks_consumer(redis, settings).run(stop)
    )
