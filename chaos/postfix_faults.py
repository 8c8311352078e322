"""The scenarios on Debian's Postfix as the mail server (issue 22): stopped for 60 s under load, deferring every
recipient (450) for 20 s by its configuration, and rejecting (550) a chosen subset of the users' addresses."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

from chaos.oracle import Observation
from chaos.scenarios import FaultContext, Scenario, in_flight, noop, wall_ms
from chaos.stack import ChaosStack
from pricealert.common.events import DeliveryStatus, NotificationResult
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS

DEFER_S = 20.0
REFUSED = ("^chaos(3|8)@",)  # two of the twelve workload users: Postfix rejects their alert mails (550)


def refused_triggers(stack: ChaosStack, triggers: list[dict[str, str]]) -> frozenset[str]:
    """The trigger ids whose mail Postfix rejects by the scenario's configuration."""
    return frozenset(t["trigger_id"] for t in triggers if stack.refuses(t.get("email", "")))


async def email_results(stack: ChaosStack) -> dict[str, list[NotificationResult]]:
    """Trigger id -> every result of its email delivery (one per attempt), over every shard."""
    out: dict[str, list[NotificationResult]] = defaultdict(list)
    for shard in range(stack.shards):
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await stack.redis.xrange(NotificationResult.stream_of(shard))  # type: ignore[assignment]  # redis-py types replies as Any-ish unions
        for _, fields in entries:
            result = NotificationResult.from_fields(fields)
            if result.channel_kind == "email":
                out[result.trigger_id].append(result)
    return out


async def refusal_verdict(stack: ChaosStack, obs: Observation, *, passed: bool) -> dict[str, Any]:
    """The refused triggers each ended failed at the first attempt with Postfix's 550, were never retried nor
    mailed, and the API shows their firings failed; the whole verdict with it ({} without refusals)."""
    if not stack.refused_recipients:
        return {}
    refused = refused_triggers(stack, obs.triggers)
    results = await email_results(stack)
    wrong = []
    for trigger_id in sorted(refused):
        got = [(r.status.value, r.attempts, (r.reply or "")[:9]) for r in results.get(trigger_id, [])]
        if got != [(DeliveryStatus.FAILED.value, 1, "550 5.1.1")]:
            wrong.append(f"{trigger_id}: {got}")
    mailed = sorted({tid for _, tid in obs.mails} & refused)
    alerts = {t["alert_id"] for t in obs.triggers if t["trigger_id"] in refused}
    shown_wrong = [
        f"{alert_id}: {history}"[:200]
        for alert_id, history in obs.history.items()
        if alert_id in alerts
        and (isinstance(history, str) or any(f.get("delivery_status") != "failed" for f in history))
    ]
    verdict: dict[str, Any] = {
        "refused_expected": len(refused),
        "refused_results_wrong": wrong[:10],
        "refused_results_wrong_count": len(wrong),
        "refused_mailed": mailed,
        "refused_history_wrong": shown_wrong[:5],
    }
    ok = bool(refused) and not wrong and not mailed and not shown_wrong
    return verdict | {"refused_pass": ok, "pass": passed and ok}


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
    Scenario(
        "postfix-reject-5xx",
        "Postfix rejects (550, its access table) two users' addresses once they are verified; everyone else's mail "
        "goes through",
        noop,
        noop,
        mail_server="postfix",
        refused_recipients=REFUSED,
    ),
]
