"""What the system did (triggers, mails, index, statuses, backlogs) and the verdict against the workload's oracle."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email import message_from_bytes, policy
from typing import Any

import httpx

from chaos.accounting import delivery_spans, held, recovery, trigger_spans
from chaos.recurring_oracle import History, Shown, firing_history, judge_recurring
from chaos.stack import ChaosStack
from chaos.workload import SYMBOLS, Created, User, fires_at
from pricealert.common import names
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import shard_of
from pricealert.devstack.postfix import PostfixServer
from pricealert.devstack.smtp import MailboxServer
from pricealert.evaluator.index import member_alert_id

# (stream kind, group) of every per-shard consumer group the workload goes through; each shard has them all.
GROUPS = (
    (names.TICKS_KIND, names.GROUP_EVALUATOR),
    (names.ALERT_EVENTS_KIND, names.GROUP_EVALUATOR),
    (names.ALERT_EVENTS_KIND, names.GROUP_INGEST),
    (names.TRIGGERS_KIND, names.GROUP_NOTIFIER),
    (names.TRIGGERS_KIND, names.GROUP_ALERTS),
    (names.TRIGGERS_KIND, names.GROUP_INGEST),
    (names.NOTIFICATION_RESULTS_KIND, names.GROUP_ALERTS),
)


def trigger_id_of(message_id: str) -> str:
    """The trigger id inside a Message-ID '<trigger.<id>@domain>' (a recurring firing's '<alert id>.<n>' is
    '<alert id>:<n>': notifier/mail.py message_id; alert ids are UUIDs, without a dot)."""
    inside = message_id.strip().strip("<>").split("@", 1)[0].removeprefix("trigger.")
    alert_id, dot, firing = inside.rpartition(".")
    return f"{alert_id}:{firing}" if dot and firing.isdigit() else inside


def is_alert_mail(message_id: str) -> bool:
    """Whether a Message-ID is an alert mail's (the verification mails of the workload's users are not)."""
    return message_id.strip().startswith("<trigger.")


def accepted_ids(smtp: MailboxServer | PostfixServer) -> list[str]:
    """Trigger ids of every alert mail the SMTP server accepted so far, in order (duplicates kept)."""
    ids = []
    for mail in list(smtp.mails):
        message_id = str(message_from_bytes(mail.raw, policy=policy.default).get("Message-ID", ""))
        if is_alert_mail(message_id):
            ids.append(trigger_id_of(message_id))
    return ids


def accept_times(stack: ChaosStack) -> list[tuple[float, str]]:
    """(epoch ms, trigger id) of every accepted alert mail, from the SMTP server's accept log (Postfix: delivered
    to its Maildir)."""
    if isinstance(stack.smtp, PostfixServer):
        delivered = stack.smtp.delivery_times()
        return [(at, trigger_id_of(mid)) for at, mid in delivered if is_alert_mail(mid)]
    if not stack.accept_log.exists():
        return []
    rows = []
    for line in stack.accept_log.read_text().splitlines():
        at, _, message_id = line.partition(" ")
        if is_alert_mail(message_id):
            rows.append((float(at), trigger_id_of(message_id)))
    return rows


# (stream, entry id) of the triggers-stream entries a scenario wrote itself (chaos/poison.py's garbage): no trigger.
FOREIGN_TRIGGERS: set[tuple[str, str]] = set()


async def read_triggers(redis: RedisClient, shards: int) -> list[dict[str, str]]:
    """Every entry of every shard's triggers stream as text, with its entry id under 'entry_id' and 'shard'."""
    rows = []
    for shard in range(shards):
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(names.triggers_stream(shard))  # type: ignore[assignment]  # redis-py types replies as Any-ish unions
        for entry_id, fields in entries:
            if (names.triggers_stream(shard), entry_id.decode()) in FOREIGN_TRIGGERS:
                continue
            row = {k.decode(): v.decode() for k, v in fields.items()}
            row["entry_id"], row["shard"] = entry_id.decode(), str(shard)
            rows.append(row)
    return rows


async def index_ids(redis: RedisClient, shards: int) -> set[str]:
    """Ids of the alerts the evaluator's index holds now (each symbol's keys live in its shard): the v1-shaped
    members of the level sets and every alert of the shards' definitions hashes (recurring ones among them)."""
    ids: set[str] = set()
    for shard in {shard_of(symbol, shards) for symbol in SYMBOLS}:
        defined: list[bytes] = await redis.hkeys(names.eval_defs_key(shard))  # type: ignore[assignment]  # redis-py types replies as Any-ish unions
        ids.update(key.decode() for key in defined)
    for symbol in SYMBOLS:
        shard = shard_of(symbol, shards)
        for key in (
            names.eval_above_key(shard, symbol),
            names.eval_below_key(shard, symbol),
            names.eval_cross_key(shard, symbol),
        ):
            members: list[bytes] = await redis.zrange(key, 0, -1)  # type: ignore[assignment]  # redis-py types replies as Any-ish unions
            ids.update(member_alert_id(member) for member in members)
    return ids


async def backlog(redis: RedisClient, shards: int) -> dict[str, int]:
    """Pending entries per stream kind/group and the notifier's retry queues, summed over the shards; every
    dead-letter stream's length."""
    out: dict[str, int] = {}
    for kind, group in GROUPS:
        total = 0
        for shard in range(shards):
            try:
                info = await redis.xpending(names.shard_stream(shard, kind), group)
                total += int(info["pending"])
            except Exception:  # a group not created yet has nothing pending
                pass
        out[f"pending {kind}/{group}"] = total
    queued = [int(await redis.zcard(names.notifier_retry_queue_key(shard))) for shard in range(shards)]
    out["notifier retry queue"] = sum(queued)
    # On a cluster scan_iter walks every master.
    async for key in redis.scan_iter(match=f"{names.PREFIX}:*:dead"):
        out[f"dead {key.decode()}"] = int(await redis.xlen(key))
    return out


async def statuses(client: httpx.AsyncClient, users: list[User], errors: list[str] | None = None) -> dict[str, Shown]:
    """alert id -> (status, delivery_status, firing_count) as the API shows them (a 5xx is retried a few times, and
    noted)."""
    shown: dict[str, Shown] = {}
    for user in users:
        page = 1
        while page < 20:
            for _ in range(5):
                response = await client.get("/alerts", params={"page": page, "page_size": 100}, headers=user.headers)
                if response.status_code < 500:
                    break
                if errors is not None:
                    errors.append(f"{time.strftime('%H:%M:%S')} {response.status_code} {response.text[:160]}")
                await asyncio.sleep(0.5)
            response.raise_for_status()
            items = response.json()["items"]
            for item in items:
                count = item.get("firing_count")
                shown[str(item["id"])] = (str(item["status"]), str(item.get("delivery_status")), count)
            if len(items) < 100:
                break
            page += 1
    return shown


@dataclass
class Observation:
    """Everything read from the system at the end of a scenario."""

    triggers: list[dict[str, str]]
    mails: list[tuple[float, str]]
    indexed: set[str]
    backlog: dict[str, int]
    shown: dict[str, Shown]
    crashed: dict[str, int | None] = field(default_factory=dict)
    status_error: str = ""
    history: dict[str, History] = field(default_factory=dict)  # recurring alert id -> its firings in the API


async def observe(
    stack: ChaosStack, client: httpx.AsyncClient, users: list[User], created: list[Created]
) -> Observation:
    """Read the final state of a scenario's stack."""
    crashed: dict[str, int | None] = {name: code for name, code in stack.exit_codes().items() if code is not None}
    try:
        shown, status_error = await statuses(client, users, stack.api_errors), ""
    except httpx.HTTPError as exc:  # judged as every status wrong; the other counts still stand
        shown, status_error = {}, f"{type(exc).__name__}: {exc}"[:300]
    return Observation(
        await read_triggers(stack.redis, stack.shards),
        accept_times(stack),
        await index_ids(stack.redis, stack.shards),
        await backlog(stack.redis, stack.shards),
        shown,
        crashed,
        status_error,
        await firing_history(client, users, created),
    )


def _correct(created: Created, trigger: dict[str, str]) -> bool:
    try:
        price = Decimal(trigger["price"])
    except (KeyError, InvalidOperation):
        return False
    same_alert = created.alert_id is None or trigger.get("alert_id") == created.alert_id
    return same_alert and created.alert.must_fire and fires_at(created.alert, price)


def judge(
    created: list[Created],
    obs: Observation,
    *,
    mail_window: int,
    fault_end_ms: float | None,
    recovery_of_recurring: bool = False,
    fault_start_ms: float | None = None,
    refused: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Count what was lost, duplicated and unexpected against the oracle; the pass/fail verdict.

    The once alerts' triggers are judged here, the recurring alerts' by recurring_oracle.judge_recurring; every
    trigger's mail (either kind) counts in the emails figures, their duplicates against the one crash window.
    Recovery is measured on the once alerts' triggers and mails, or with `recovery_of_recurring` (a fault while
    the market swings) on the recurring alerts'. An alert the API refused (4xx) that fired is unexpected; one whose
    creation got no answer or a 5xx that fired, recovered; so is each trigger and mail the fault held (accounting;
    none without `fault_start_ms`: a run without a fault).
    `refused`: triggers whose mail the mail server rejects by its configuration (chaos/postfix_faults.py): no
    mail expected (one is unexpected), their once alerts shown failed, their recurring alerts judged there.
    """
    by_name = {c.alert.name: c for c in created}
    recurring_names = {c.alert.name for c in created if c.alert.recurring}
    once_triggers = [t for t in obs.triggers if t.get("name") not in recurring_names]
    recurring_triggers = [t for t in obs.triggers if t.get("name") in recurring_names]
    fired = Counter(t.get("name", "") for t in once_triggers)
    acknowledged = [c for c in created if c.acknowledged]
    once_acknowledged = [c for c in acknowledged if not c.alert.recurring]
    lost_triggers = sorted(c.alert.name for c in once_acknowledged if c.alert.must_fire and not fired[c.alert.name])
    unexpected = sorted(
        t.get("name", "?") for t in once_triggers if t.get("name") not in by_name or not _correct(by_name[t["name"]], t)
    )
    fired_names = {t.get("name", "") for t in obs.triggers}
    refused_by_api = {c.alert.name for c in created if c.status is not None and 400 <= c.status < 500}
    undecided = {c.alert.name for c in created if not c.acknowledged and c.alert.name not in refused_by_api}
    fault = (fault_start_ms, fault_end_ms) if fault_start_ms is not None else (None, None)  # no fault: none held
    trigger_ids = {t["trigger_id"] for t in obs.triggers} - refused
    refused_alerts = {t["alert_id"] for t in obs.triggers if t["trigger_id"] in refused}
    mailed = Counter(tid for _, tid in obs.mails)
    fired_alert_ids = {t["alert_id"] for t in obs.triggers}
    alerts_lost = sorted(
        c.alert.name for c in acknowledged if c.alert_id not in obs.indexed and c.alert_id not in fired_alert_ids
    )
    wrong_status = []
    for c in once_acknowledged:
        sent = "failed" if c.alert_id in refused_alerts else "sent"
        want = ("triggered", sent) if c.alert_id in fired_alert_ids else ("active", "None")
        got = obs.shown.get(c.alert_id or "")
        if got is None or got[0] != want[0] or (want[0] == "triggered" and got[1] != want[1]):
            wrong_status.append(f"{c.alert.name}: {got} (expected {want})")
    result: dict[str, Any] = {
        "alerts_attempted": len(created),
        "alerts_acknowledged": len(acknowledged),
        "alerts_unanswered": sorted(
            f"{c.alert.name}: {c.status} {c.error[:120]}" for c in created if not c.acknowledged
        ),
        "alerts_lost": alerts_lost,
        "triggers_expected": sum(1 for c in once_acknowledged if c.alert.must_fire),
        "triggers_seen": len(once_triggers),
        "triggers_lost": lost_triggers,
        "triggers_duplicated": sum(n - 1 for n in fired.values() if n > 1),
        "triggers_unexpected": unexpected,
        "triggers_recovered": held(trigger_spans(once_triggers), *fault),
        "alerts_unexpected": sorted(refused_by_api & fired_names),
        "alerts_recovered": sorted(undecided & fired_names),
        "emails_recovered": held(delivery_spans(obs.triggers, obs.mails), *fault),
        "emails_expected": len(trigger_ids),
        "emails_accepted": len(obs.mails),
        "emails_lost": sorted(t for t in trigger_ids if not mailed[t]),
        "emails_duplicated": sum(n - 1 for n in mailed.values() if n > 1),
        "emails_unexpected": sorted(t for t in mailed if t not in trigger_ids),
        "mail_crash_window": mail_window,
        "status_wrong": wrong_status[:20],
        "status_wrong_count": len(wrong_status),
        "status_error": obs.status_error,
        "backlog": obs.backlog,
        "crashed_processes": obs.crashed,
        "dead_letters": sum(v for k, v in obs.backlog.items() if k.startswith("dead ")),
    }
    judged = [c for c in created if c.alert_id not in refused_alerts]
    delivered = [t for t in recurring_triggers if t["trigger_id"] not in refused]
    result.update(judge_recurring(judged, delivered, mailed, obs.shown, obs.history, obs.indexed))
    result["recurring_firings_recovered"] = held(trigger_spans(recurring_triggers), *fault)
    recurring_ids = {t["trigger_id"] for t in recurring_triggers}
    measured = recurring_triggers if recovery_of_recurring else once_triggers
    mails = [m for m in obs.mails if (m[1] in recurring_ids) == recovery_of_recurring]
    result.update(recovery(measured, mails, fault_end_ms))
    result["pass"] = passed(result)
    return result


def passed(result: dict[str, Any]) -> bool:
    """0 lost, 0 unexpected, trigger duplicates 0, email duplicates within the crash window, statuses right; the
    recurring alerts' oracle passes."""
    return (
        not result["triggers_lost"]
        and not result["triggers_unexpected"]
        and not result["alerts_lost"]
        and not result["alerts_unexpected"]
        and result["triggers_duplicated"] == 0
        and not result["emails_lost"]
        and not result["emails_unexpected"]
        and result["emails_duplicated"] <= result["mail_crash_window"]
        and result["status_wrong_count"] == 0
        and not result["crashed_processes"]
        and result["recurring_pass"]
    )
