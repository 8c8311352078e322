"""The webhook scenarios (issue 19): the users' endpoint down for 60 s while alerts fire, and kill -9 of the notifier
while webhooks are in flight. Both run the webhook workload (chaos/webhooks.py) on top of the usual one."""

from __future__ import annotations

import asyncio

from chaos.oracle import read_triggers
from chaos.scenarios import FaultContext, Scenario, in_flight, restart, wall_ms
from chaos.webhook_receiver import WebhookReceiver
from chaos.webhooks import webhooks_in_flight
from pricealert.testsupport.polling import holds_within

SLOW_S = 1.0  # the endpoint answers this late while the notifier is killed, so its sends are in flight
IN_FLIGHT_AT_KILL = 6  # the kill waits until the endpoint has read this many deliveries it has not answered yet


def _receiver(ctx: FaultContext) -> WebhookReceiver:
    assert ctx.stack.webhooks is not None, "a webhook scenario runs the webhook workload"
    return ctx.stack.webhooks


async def endpoint_down(ctx: FaultContext) -> None:
    """The endpoint goes down: it answers what it has read, closes every connection, then refuses connections."""
    receiver = _receiver(ctx)
    ctx.started_ms = wall_ms()
    await receiver.stop()
    ctx.notes.append(f"webhook endpoint down ({len(receiver.received)} deliveries in before)")


async def endpoint_up(ctx: FaultContext) -> None:
    """The endpoint listens again on the same port."""
    await _receiver(ctx).start()
    ctx.ended_ms = wall_ms()
    ctx.notes.append("webhook endpoint up")


async def kill_notifier_mid_webhook(ctx: FaultContext) -> None:
    """Slow the endpoint down, SIGKILL the notifier once it waits for answers, and count what it had in flight."""
    receiver = _receiver(ctx)
    receiver.delay_s = SLOW_S

    async def waiting() -> bool:
        return receiver.in_progress >= IN_FLIGHT_AT_KILL

    seen = await holds_within(waiting, within=20, every=0.005)
    ctx.started_ms = wall_ms()
    unanswered = receiver.in_progress
    ctx.stack.kill("notifier-1")
    await asyncio.sleep(0.2)  # the SMTP server finishes any DATA that arrived before the kill
    receiver.delay_s = 0.0
    ctx.mail_window = len((await in_flight(ctx.stack))[0])
    triggers = await read_triggers(ctx.stack.redis, ctx.stack.shards)
    ctx.webhook_window = len(await webhooks_in_flight(ctx.stack, triggers))
    ctx.notes.append(
        f"SIGKILL notifier-1 with {unanswered} webhooks read and unanswered by the endpoint"
        + ("" if seen else f" (fewer than {IN_FLIGHT_AT_KILL} were in flight within 20 s)")
    )


WEBHOOK_SCENARIOS: list[Scenario] = [
    Scenario(
        "webhook-down-60s",
        "the users' webhook endpoint is down for 60 s while alerts fire",
        endpoint_down,
        endpoint_up,
        60.0,
        hold_down_phase=False,
        webhooks=True,
    ),
    Scenario(
        "kill-notifier-webhook",
        f"SIGKILL the notifier while webhooks are in flight (the endpoint answering {SLOW_S:g} s late), restart "
        "after 2 s",
        kill_notifier_mid_webhook,
        restart("notifier-1"),
        2.0,
        webhooks=True,
    ),
]
