"""One scenario from start to verdict: fresh stack, users and alerts, the market under the fault, the oracle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from chaos.latency import latency_figures
from chaos.oracle import accepted_ids, backlog, index_ids, judge, observe, read_triggers, statuses
from chaos.postfix_faults import refusal_verdict, refused_triggers
from chaos.recurring import FIRST_HOLD_S, plan_workload, swing
from chaos.recurring_oracle import firings_of, settled_recurring
from chaos.scenarios import FaultContext, Scenario, noop, run_fault
from chaos.stack import ChaosStack
from chaos.webhook_receiver import WebhookReceiver
from chaos.webhooks import WEBHOOK_ENV, arrivals, create_webhook_channels, expected_deliveries, judge_webhooks
from chaos.workload import LEVELS, SYMBOLS, Created, Market, User, create_alerts, register_users
from pricealert.common import names
from pricealert.testsupport.polling import holds_within

USERS = 12
HOLD_S = 35.0  # longest wait for the market's targets to fire after a ramp (covers restarts and reclaims)
SETTLE_S = 45.0  # longest wait, after the fault ended, for every trigger to be mailed and every backlog drained
QUIET_S = 2.0  # then this long with nothing pending, so late duplicates would still be seen


def fired_all(stack: ChaosStack, created: list[Created], phase: str) -> Any:
    """A check: every acknowledged alert of `phase` has a trigger."""
    wanted = {c.alert.name for c in created if c.acknowledged and c.alert.phase == phase}

    async def check() -> bool:
        return wanted <= {t.get("name") for t in await read_triggers(stack.redis, stack.shards)}

    return check


def fired_recurring(stack: ChaosStack, created: list[Created]) -> Any:
    """A check: every acknowledged recurring alert fired as often as the script crosses it (or more)."""

    async def check() -> bool:
        return all(
            have >= want for have, want in firings_of(created, await read_triggers(stack.redis, stack.shards)).values()
        )

    return check


async def triggers_count(stack: ChaosStack) -> int:
    """How many entries the triggers streams hold."""
    return sum([int(await stack.redis.xlen(names.triggers_stream(shard))) for shard in range(stack.shards)])


async def fault_in_swing(scenario: Scenario, ctx: FaultContext) -> None:
    """The fault, the moment the first swing's second crossing fires (its first fires each symbol's enter_range;
    the second, each symbol's above and cross at once): its firings are in flight."""
    await asyncio.sleep(FIRST_HOLD_S / 2)  # the down ramp's last firings (exit_range at -LEVELS) are in by now
    before = await triggers_count(ctx.stack)

    async def burst() -> bool:
        return await triggers_count(ctx.stack) > before + len(SYMBOLS)

    if not await holds_within(burst, within=FIRST_HOLD_S + 5, every=0.005):
        ctx.notes.append("the swing's burst was not seen: the fault came late")
    await run_fault(scenario, ctx)


def indexed_all(stack: ChaosStack, created: list[Created]) -> Any:
    """A check: the evaluator's index holds every acknowledged alert, and ingest subscribed to every symbol."""
    wanted = {c.alert_id for c in created if c.acknowledged}
    symbols = {c.alert.symbol.lower() for c in created if c.acknowledged}

    async def check() -> bool:
        subscribed = {s.split("@")[0] for s in stack.exchange.subscriptions()}
        return wanted <= await index_ids(stack.redis, stack.shards) and symbols <= subscribed

    return check


def settled(stack: ChaosStack, client: httpx.AsyncClient, users: list[User], created: list[Created]) -> Any:
    """A check: every trigger mailed, nothing pending or waiting for a retry, every status final."""

    async def check() -> bool:
        # The mails Postfix rejects by the scenario's configuration never come (chaos/postfix_faults.py judges them).
        triggers = [t for t in await read_triggers(stack.redis, stack.shards) if not stack.refuses(t.get("email", ""))]
        mailed = set(accepted_ids(stack.smtp))
        if not {t["trigger_id"] for t in triggers} <= mailed:
            return False
        if stack.webhooks is not None and not expected_deliveries(triggers, users) <= set(
            arrivals(stack.webhooks.received)
        ):
            return False
        if any(v for k, v in (await backlog(stack.redis, stack.shards)).items() if not k.startswith("dead ")):
            return False
        fired = {t["alert_id"] for t in triggers}
        shown = await statuses(client, users, stack.api_errors)
        return settled_recurring(created, triggers, shown) and all(
            shown.get(c.alert_id or "", ("", "", None))[0] == "triggered" and shown[c.alert_id or ""][1] == "sent"
            for c in created
            if c.acknowledged and c.alert_id in fired and not c.alert.recurring
        )

    return check


async def create_under_fault(
    client: httpx.AsyncClient, users: list[User], scenario: Scenario, ctx: FaultContext
) -> tuple[list[Created], asyncio.Task[None]]:
    """Half the alerts before the fault; the other half at a steady pace while the API is killed and restarted.
    Without `hold_down_phase` the fault may still hold when this returns (its task): the market moves under it."""
    plan = plan_workload(USERS)
    half = len(plan) // 2
    created = await create_alerts(client, users, plan[:half], retry_catalog_s=30)
    fault = asyncio.create_task(run_fault(scenario, ctx, delay=2.0))
    # 20 s of creations: the kill lands 2 s in, and the restarted API (~8 s to boot here) answers well before the end.
    created += await create_alerts(client, users, plan[half:], concurrency=4, per_second=6)
    if scenario.hold_down_phase:
        await fault
    return created, fault


async def create_workload(
    client: httpx.AsyncClient, users: list[User], scenario: Scenario, ctx: FaultContext
) -> tuple[list[Created], asyncio.Task[None] | None]:
    """Every alert of the workload, under the fault if it comes while they are created (then its task too)."""
    if scenario.during == "create":
        return await create_under_fault(client, users, scenario, ctx)
    return await create_alerts(client, users, plan_workload(USERS), retry_catalog_s=30), None


async def run_scenario(scenario: Scenario, root: Path) -> dict[str, Any]:
    """Run one scenario on its own stack; returns its measured result."""
    began = time.monotonic()
    stack = ChaosStack(
        root / scenario.name,
        evaluators=scenario.evaluators,
        notifiers=scenario.notifiers,
        ingests=scenario.ingests,
        cluster=scenario.cluster,
        database=scenario.database,
        extra_env=dict(WEBHOOK_ENV) if scenario.webhooks else {},
        webhooks=WebhookReceiver(log_path=root / scenario.name / "webhooks.log") if scenario.webhooks else None,
        mail_server=scenario.mail_server,
        refused_recipients=scenario.refused_recipients,
        proxy_redis="redis" in scenario.proxies,
        proxy_smtp="smtp" in scenario.proxies,
    )
    stack.directory.mkdir(parents=True, exist_ok=True)
    ctx = FaultContext(stack)
    result: dict[str, Any] = {"scenario": scenario.name, "what": scenario.what, "oracle": scenario.oracle}
    market: Market | None = None
    phases: dict[str, float] = {}
    result["phases_s"] = phases

    def mark(phase: str) -> None:
        phases[phase] = round(time.monotonic() - began, 1)

    try:
        await stack.start()
        mark("ready")
        async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
            users = await workload_users(client, stack)
            market = Market(stack.exchange)
            market.start()
            created, fault_task = await create_workload(client, users, scenario, ctx)
            mark("created")
            result["indexed_before_ramp"] = await holds_within(indexed_all(stack, created), within=30)
            mark("indexed")
            await asyncio.sleep(0.5)  # the steady trades fix every cross alert's side
            await market.ramp(range(1, 9), 0.2)
            market.set_level(24)  # a burst: ten alerts per symbol fire at once, and the fault hits right then
            if scenario.during == "ramp":
                fault_task = asyncio.create_task(run_fault(scenario, ctx, delay=0.03))
            await market.ramp(range(25, LEVELS + 1), 0.2)
            result["up_fired"] = await holds_within(fired_all(stack, created, "up"), within=HOLD_S)
            mark("up")
            if fault_task is not None and scenario.hold_down_phase:
                await fault_task
            await market.ramp(range(LEVELS - 1, -LEVELS - 1, -1), 0.05)
            result["down_fired"] = await holds_within(fired_all(stack, created, "down"), within=HOLD_S)
            mark("down")
            if scenario.during == "swing":
                fault_task = asyncio.create_task(fault_in_swing(scenario, ctx))
            await swing(market)  # the recurring alerts' crossings, back and forth
            result["recurring_fired"] = await holds_within(fired_recurring(stack, created), within=HOLD_S)
            mark("swung")
            await market.stop()
            if fault_task is not None:
                await fault_task
            result["settled"] = await holds_within(settled(stack, client, users, created), within=SETTLE_S, every=0.5)
            mark("settled")
            await asyncio.sleep(QUIET_S)
            obs = await observe(stack, client, users, created)
        result.update(
            judge(
                created,
                obs,
                mail_window=ctx.mail_window,
                fault_end_ms=ctx.ended_ms,
                fault_start_ms=None if scenario.inject is noop else ctx.started_ms,  # no fault: nothing recovered
                recovery_of_recurring=scenario.during == "swing",
                refused=refused_triggers(stack, obs.triggers),
            )
        )
        result.update(await refusal_verdict(stack, obs, passed=result["pass"]))
        result.update(latency_figures(obs.triggers, obs.mails, ctx.started_ms, ctx.ended_ms))
        result.update(webhook_verdict(stack, obs.triggers, users, ctx, passed=result["pass"]))
        for verdict in ctx.verdicts:
            own = await verdict()
            result.update(own | {"pass": result["pass"] and all(v for k, v in own.items() if k.endswith("_pass"))})
        if scenario.during == "create":
            result.update(creation_verdict(created, ctx, scenario, passed=result["pass"]))
        result["trades_played"] = market.played
    except Exception as exc:  # a scenario that could not run is a failed scenario, not a failed chaos run
        result.update({"pass": False, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        if market is not None:
            await market.stop()
        result["fault_notes"] = ctx.notes
        result["fault_started_ms"], result["fault_ended_ms"] = ctx.started_ms, ctx.ended_ms
        result["fault_duration_s"] = (
            round((ctx.ended_ms - ctx.started_ms) / 1000, 2) if (ctx.ended_ms and ctx.started_ms) else None
        )
        try:
            result["exit_codes"] = await stack.stop()
        except Exception as exc:
            result["stop_error"] = f"{type(exc).__name__}: {exc}"
    result["api_5xx_seen"] = len(stack.api_errors)
    result["api_5xx_samples"] = stack.api_errors[:5]
    if not result.get("pass"):
        result["log_excerpt"] = stack.log_lines("error", "Error", "exception", "Traceback", limit=25)
    mark("stopped")
    result["wall_s"] = round(time.monotonic() - began, 1)
    return result


async def workload_users(client: httpx.AsyncClient, stack: ChaosStack) -> list[User]:
    """The workload's users, registered and verified; each with a webhook channel when the scenario has them."""
    users = await register_users(client, USERS, stack.smtp)
    await stack.refuse_recipients()
    if stack.webhooks is not None:
        await create_webhook_channels(client, users, stack.webhooks)
    return users


def webhook_verdict(
    stack: ChaosStack, triggers: list[dict[str, str]], users: list[User], ctx: FaultContext, *, passed: bool
) -> dict[str, Any]:
    """The webhook workload's oracle (chaos/webhooks.py) on what the endpoint received, and the whole verdict."""
    if stack.webhooks is None:
        return {}
    fault = (ctx.started_ms, ctx.ended_ms)
    result = judge_webhooks(triggers, users, stack.webhooks.received, window=ctx.webhook_window, fault=fault)
    return result | {"pass": passed and result["webhooks_pass"]}


def api_recovery(created: list[Created], ctx: FaultContext) -> dict[str, Any]:
    """For the API kill: the fault's end -> the next alert answered 201."""
    answered = [
        c.answered_ms
        for c in created
        if c.acknowledged and c.answered_ms and ctx.ended_ms and c.answered_ms >= ctx.ended_ms
    ]
    next_201 = round((min(answered) - (ctx.ended_ms or 0)) / 1000, 2) if answered else None
    return {"next_201_s": next_201, "recovery_s": next_201}


def creation_verdict(created: list[Created], ctx: FaultContext, scenario: Scenario, *, passed: bool) -> dict[str, Any]:
    """For a fault while alerts are created: the next 201 after it, the refusals, and the whole verdict."""
    result = api_recovery(created, ctx) | refusals(created, strict=scenario.refusals_503)
    return result | {"pass": passed and not (scenario.refusals_503 and result["refusals_wrong"])}


def refusals(created: list[Created], *, strict: bool) -> dict[str, Any]:
    """The creations not acknowledged: how many were a 503 database_unavailable with Retry-After, and the others
    (a 500, a 503 of another kind or without Retry-After, no answer; any 4xx too with `strict`)."""
    refused = [c for c in created if not c.acknowledged]
    proper = [c for c in refused if c.status == 503 and "database_unavailable" in c.error and c.retry_after]
    wrong = [c for c in refused if c not in proper and (strict or c.status is None or c.status >= 500)]
    return {
        "refusals_503": len(proper),
        "refusals_wrong": sorted(f"{c.alert.name}: {c.status} {c.error[:120]}" for c in wrong),
    }
