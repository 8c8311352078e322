"""The scenarios on Debian's Postfix as the mail server (issue 22): stopped for 60 s under load, deferring every
recipient (450) for 20 s by its configuration, and rejecting (550) a chosen subset of the users' addresses."""

from __future__ import annotations

import asyncio
import contextlib

from chaos.scenarios import FaultContext, Scenario, in_flight, wall_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS

DEFER_S = 20.0


async def postfix_down(ctx: FaultContext) -> None:
    """`postfix stop`: every process gone, connections refused."""
    ctx.started_ms = wall_ms()
    await asyncio.to_thread(ctx.stack.postfix.stop)
    with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
        ctx.mail_window = len((await in_flight(ctx.stack))[0])
    ctx.notes.append("postfix stopped")


async def postfix_up(ctx: FaultContext) -> None:
    """`postfix start` on the same port, queue and Maildir."""
    await asyncio.to_thread(ctx.stack.postfix.start)
    ctx.ended_ms = wall_ms()
    ctx.notes.append("postfix started")


async def defer_all(ctx: FaultContext) -> None:
    """Postfix's recipient access table defers every recipient (450 4.2.1), reloaded; open sessions are ended."""
    before, _ = await in_flight(ctx.stack)
    ctx.started_ms = wall_ms()
    await asyncio.to_thread(ctx.stack.postfix.set_policy, defer=["."])
    await asyncio.sleep(0.2)  # a DATA under way when its session was ended has been answered, or not, by now
    with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
        ctx.mail_window = len(before | (await in_flight(ctx.stack))[0])
    ctx.notes.append("postfix defers every recipient (450)")


async def accept_all(ctx: FaultContext) -> None:
    """The access table emptied and reloaded: Postfix accepts every recipient again."""
    await asyncio.to_thread(ctx.stack.postfix.set_policy)
    ctx.ended_ms = wall_ms()
    ctx.notes.append("postfix accepts again")


POSTFIX_SCENARIOS: list[Scenario] = [
    Scenario(
        "postfix-down-60s",
        "Postfix (the mail server) is stopped for 60 s under load",
        postfix_down,
        postfix_up,
        60.0,
        hold_down_phase=False,
        mail_server="postfix",
    ),
    Scenario(
        "postfix-defer-4xx",
        f"Postfix defers every recipient (450, its access table) for {DEFER_S:g} s, then accepts",
        defer_all,
        accept_all,
        DEFER_S,
        hold_down_phase=False,
        mail_server="postfix",
    ),
]
