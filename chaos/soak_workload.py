"""The soak's steady load: the market swinging under steady trades; alerts created, fired, mailed and deleted
continuously; and its oracle: every acknowledged alert the market reached fired once and was mailed once."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from typing import Any

import httpx

from chaos.oracle import is_alert_mail, trigger_id_of
from chaos.stack import ChaosStack
from chaos.workload import CENT, STEP, SYMBOLS, Created, Market, PlannedAlert, User, create_alert, fires_at
from pricealert.common import names

SWING_LEVELS = 8  # the market swings between -8 and +8 levels (±0.4 %), one level every STEP_S
STEP_S = 0.25  # so it passes every level both ways every 8 s
NEVER_FACTOR = Decimal("0.2")  # "never" alerts lie 20 % away: the swing never reaches them
DELETE_NEVER_AFTER_S = 3.0  # a "never" alert is deleted this long after it was acknowledged
KINDS = ("up", "down", "never")  # in turn: an above and a below alert the swing reaches, then one it does not


def swing_levels() -> list[int]:
    """One full swing: 0 up to +SWING_LEVELS, down to -SWING_LEVELS, back to 0 (the last level left out)."""
    up = list(range(SWING_LEVELS))
    down = list(range(SWING_LEVELS, -SWING_LEVELS, -1))
    back = list(range(-SWING_LEVELS, 0))
    return up + down + back


def plan_alert(n: int, users: int, rng: random.Random) -> PlannedAlert:
    """The n-th alert of the soak: half a level off a market level, so no trade lands on its target."""
    symbol = list(SYMBOLS)[n % len(SYMBOLS)]
    base, phase = SYMBOLS[symbol], KINDS[n % len(KINDS)]
    offset = Decimal(rng.randrange(SWING_LEVELS - 1)) + Decimal("0.5")
    if phase == "up":
        target, condition = base * (1 + offset * STEP / 2), "above"
    elif phase == "down":
        target, condition = base * (1 - offset * STEP / 2), "below"
    else:
        condition = "above" if rng.random() < 0.5 else "below"
        target = base * (1 + NEVER_FACTOR if condition == "above" else 1 - NEVER_FACTOR)
    return PlannedAlert(f"soak-{n}-{phase}", n % users, symbol, condition, target.quantize(CENT), phase)


@dataclass
class SoakLoad:
    """The running load and what it saw: creations, deletions, triggers (tailed from the streams, which are
    trimmed) and accepted mails."""

    stack: ChaosStack
    client: httpx.AsyncClient
    users: list[User]
    alerts_per_s: float = 3.0
    created: list[Created] = field(default_factory=list)
    deletes: Counter[str] = field(default_factory=Counter)  # answer status -> count
    triggers: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # alert name -> its trigger entries
    mails: Counter[str] = field(default_factory=Counter)  # trigger id -> accepted mails
    deleted_fired: set[str] = field(default_factory=set)  # alert ids deleted after their mail
    _last_ids: dict[str, str] = field(default_factory=dict)
    _mails_read: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)  # the watcher and the settle check both read

    async def swing(self, market: Market, stop: asyncio.Event) -> None:
        """Move the market through the swing, again and again, until `stop`."""
        while not stop.is_set():
            for level in swing_levels():
                if stop.is_set():
                    return
                market.set_level(level)
                await asyncio.sleep(STEP_S)

    async def create(self, stop: asyncio.Event) -> None:
        """Create alerts at `alerts_per_s` until `stop` (each request on its own, at most 8 in flight)."""
        rng, gate, began = random.Random(20261206), asyncio.Semaphore(8), time.monotonic()
        n = 0
        while not stop.is_set():
            alert = plan_alert(n, len(self.users), rng)
            self._spawn(self._create_one(alert, gate))
            n += 1
            await asyncio.sleep(max(0.0, began + n / self.alerts_per_s - time.monotonic()))

    async def _create_one(self, alert: PlannedAlert, gate: asyncio.Semaphore) -> None:
        async with gate:
            created = await create_alert(self.client, self.users[alert.user], alert, retry_catalog_s=30)
        self.created.append(created)
        if created.acknowledged and not alert.must_fire:
            await asyncio.sleep(DELETE_NEVER_AFTER_S)
            await self._delete(created)

    async def _delete(self, created: Created) -> None:
        try:
            response = await self.client.delete(
                f"/alerts/{created.alert_id}", headers=self.users[created.alert.user].headers
            )
            self.deletes[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            self.deletes[type(exc).__name__] += 1

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def watch(self, stop: asyncio.Event) -> None:
        """Tail the triggers streams and the mailbox every 0.3 s; delete each fired alert once its mail is in."""
        while not stop.is_set():
            await self.read_new()
            await asyncio.sleep(0.3)

    async def read_new(self) -> None:
        """Read the triggers and mails that arrived since the last call, and delete the alerts mailed."""
        async with self._reading:
            await self._read_new()

    async def _read_new(self) -> None:
        streams = {
            names.triggers_stream(shard): self._last_ids.get(names.triggers_stream(shard), "0-0")
            for shard in range(self.stack.shards)
        }
        replies: list[Any] = await self.stack.redis.xread(streams, count=10_000)  # type: ignore[arg-type,assignment]  # redis-py: invariant id mapping, reply typed as a union
        for stream, entries in replies:
            for entry_id, fields in entries:
                row = {k.decode(): v.decode() for k, v in fields.items()}
                self.triggers.setdefault(row.get("name", "?"), []).append(row)
                self._last_ids[stream.decode()] = entry_id.decode()
        mails = self.stack.smtp.mails
        fresh, self._mails_read = mails[self._mails_read : len(mails)], len(mails)
        by_id = {c.alert_id: c for c in self.created if c.alert_id}
        for mail in fresh:
            message_id = str(message_from_bytes(mail.raw, policy=policy.default).get("Message-ID", ""))
            if not is_alert_mail(message_id):
                continue
            trigger_id = trigger_id_of(message_id)
            self.mails[trigger_id] += 1
            if trigger_id in by_id and trigger_id not in self.deleted_fired:  # a once alert's trigger id is its id
                self.deleted_fired.add(trigger_id)
                self._spawn(self._delete(by_id[trigger_id]))

    def settled(self) -> bool:
        """Every acknowledged alert the market reaches fired, every trigger was mailed and its alert deleted."""
        fired = {c.alert.name for c in self.created if c.acknowledged and c.alert.must_fire}
        if not fired <= set(self.triggers) or self._tasks:
            return False
        trigger_ids = {t["trigger_id"] for rows in self.triggers.values() for t in rows}
        return trigger_ids <= set(self.mails)

    async def drain(self) -> None:
        """Wait for the requests still in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


FAILURES = (
    "alerts_refused",
    "triggers_lost",
    "triggers_duplicated",
    "triggers_unexpected",
    "emails_lost",
    "emails_duplicated",
    "emails_unexpected",
    "deletes_failed",
)


def soak_oracle(load: SoakLoad) -> dict[str, Any]:
    """Lost, duplicated and unexpected triggers and mails; creations and deletions refused (a request without an
    answer is indeterminate: counted, not a failure)."""
    by_name = {c.alert.name: c for c in load.created}
    acknowledged = [c for c in load.created if c.acknowledged]
    must_fire = [c for c in acknowledged if c.alert.must_fire]
    rows = [t for ts in load.triggers.values() for t in ts]
    unexpected = sorted(
        t.get("name", "?")
        for t in rows
        if t.get("name") not in by_name
        or not by_name[t["name"]].alert.must_fire
        or not fires_at(by_name[t["name"]].alert, Decimal(t["price"]))
    )
    trigger_ids = {t["trigger_id"] for t in rows}
    refused = [c for c in load.created if not c.acknowledged and c.status is not None]
    result: dict[str, Any] = {
        "alerts_attempted": len(load.created),
        "alerts_acknowledged": len(acknowledged),
        # No answer within the client's timeout: indeterminate (counted; the alert may exist, and may fire).
        "alerts_indeterminate": sum(1 for c in load.created if c.status is None),
        "alerts_refused": sorted(f"{c.alert.name}: {c.status} {c.error[:120]}" for c in refused)[:20],
        "triggers_expected": len(must_fire),
        "triggers_seen": len(rows),
        "triggers_lost": sorted(c.alert.name for c in must_fire if c.alert.name not in load.triggers),
        "triggers_duplicated": sum(len(ts) - 1 for ts in load.triggers.values() if len(ts) > 1),
        "triggers_unexpected": unexpected,
        "triggers_recovered": sum(1 for name in load.triggers if name in by_name and not by_name[name].acknowledged),
        "emails_accepted": sum(load.mails.values()),
        "emails_lost": sorted(t for t in trigger_ids if not load.mails[t]),
        "emails_duplicated": sum(n - 1 for n in load.mails.values() if n > 1),
        "emails_unexpected": sorted(t for t in load.mails if t not in trigger_ids),
        "deletes": dict(load.deletes),
        "deletes_indeterminate": sum(n for status, n in load.deletes.items() if not status.isdigit()),
        "deletes_failed": sum(n for status, n in load.deletes.items() if status.isdigit() and status != "204"),
    }
    result["pass"] = not any(result[k] for k in FAILURES)
    return result
