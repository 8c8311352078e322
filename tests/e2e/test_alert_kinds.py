"""Percent, range and recurring alerts through the gateway: each fires on the fake exchange's trades, its mail arrives.

The rules are docs/conditions.md's. One stack (per database) runs every scenario, each on symbols of its own: the
new conditions with their message and firing history, a recurring alert's cooldown, pause/resume, PATCH of a target.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_stack import Stack, alert_mails, create_alert, register_verified

from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer, ReceivedMail
from pricealert.testsupport.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PASSWORD = "s3cret-pass"
# Every placeholder of the message, and characters the HTML part must escape.
MESSAGE = (
    "{{name}}: {{symbol}} {{condition}} at {{price}} for {{target}}, "
    "move {{change_pct}} in {{window}}, trade {{trade_id}} at {{time}} <&>"
)


@dataclass
class Case:
    """One alert of a new condition, the trades played to it and what its firing must show."""

    body: dict[str, Any]
    prices: list[str]  # the last fires it, none before does
    target: str  # {{target}} as the mail shows it
    change_pct: str = ""
    window: str = ""


CASES = [
    # +0.93 % does not reach 1 %, +1.07 % does (the lowest price of the window is 150).
    Case({"symbol": "SOLUSDT", "condition": "pct_up", "percent": "1", "window": "1m"}, ["150", "151.4", "151.6"],
         "1 % in 1m", "1.07", "1m"),
    # -1.72 % does not reach 2 %, -2.07 % does (from the highest, 580).
    Case({"symbol": "BNBUSDT", "condition": "pct_down", "percent": "2", "window": "5m"}, ["580", "570", "568"],
         "2 % in 5m", "-2.07", "5m"),
    # Either way: -0.59 % no, -1.06 % yes.
    Case({"symbol": "LTCUSDT", "condition": "pct_move", "percent": "1", "window": "1m"}, ["85", "84.5", "84.1"],
         "1 % in 1m", "-1.06", "1m"),
    # Starts above the range, still above at 0.5101; a trade exactly on the upper bound is inside.
    Case({"symbol": "XRPUSDT", "condition": "enter_range", "low": "0.50", "high": "0.51"},
         ["0.52", "0.5101", "0.51"], "0.5\N{EN DASH}0.51"),
    # Starts inside, the upper bound itself is inside, just above it is out.
    Case({"symbol": "ADAUSDT", "condition": "exit_range", "low": "0.44", "high": "0.46"},
         ["0.45", "0.46", "0.4601"], "0.44\N{EN DASH}0.46"),
]  # fmt: skip


@dataclass
class User:
    """A logged-in user of the stack's gateway, and what the scenarios watch: the exchange and the mailbox."""

    stack: Stack
    exchange: FakeExchange
    mailbox: MailboxServer
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /alerts, then wait until the alert is watched (see `watched`)."""
        alert = await create_alert(self.client, self.headers, body)
        await watched(self.stack, self.exchange, alert)
        return alert

    async def get(self, alert_id: str) -> dict[str, Any]:
        """GET /alerts/{id}."""
        response = await self.client.get(f"/alerts/{alert_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def patch(self, alert_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH /alerts/{id}, which must succeed."""
        response = await self.client.patch(f"/alerts/{alert_id}", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def firings(self, alert_id: str, **query: int) -> dict[str, Any]:
        """GET /alerts/{id}/firings."""
        response = await self.client.get(f"/alerts/{alert_id}/firings", headers=self.headers, params=query)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def delivered(self, alert_id: str, count: int) -> list[dict[str, Any]]:
        """The alert's firings once there are `count` and every one's mail is sent (newest first)."""

        async def sent() -> list[dict[str, Any]] | None:
            items = list((await self.firings(alert_id))["items"])
            return items if len(items) == count and all(f["delivery_status"] == "sent" for f in items) else None

        found: list[dict[str, Any]] | None = await eventually(sent, within=30, what=f"{count} firings of {alert_id}")
        assert found is not None
        return found

    def mails(self, alert_id: str) -> list[ReceivedMail]:
        """The alert mails of one alert, in the order they arrived."""
        return [m for m in alert_mails(self.mailbox) if m.message["X-Pricealert-Alert-Id"] == alert_id]


async def log_in(client: httpx.AsyncClient, mailbox: MailboxServer, email: str) -> dict[str, str]:
    """Register and verify `email`, log in: the Authorization header."""
    await register_verified(client, mailbox, email, PASSWORD)
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def watched(stack: Stack, exchange: FakeExchange, alert: dict[str, Any]) -> None:
    """Wait until ingest trades the alert's symbol and the evaluator has indexed the new alert: only trades
    appended after that count for it (docs/conditions.md)."""
    stream = f"{alert['symbol'].lower()}@trade"
    await exchange.wait_for(lambda: stream in exchange.subscriptions(), within=20, what=f"ingest on {stream}")
    log = stack.directory / "evaluator.log"

    def indexed() -> bool:
        return any(
            "alert.indexed" in line and alert["id"] in line and "alert.created" in line
            for line in log.read_text(errors="replace").splitlines()
        )

    await eventually(indexed, within=20, what=f"the evaluator indexed {alert['id']}")


def html(mail: ReceivedMail) -> str:
    """The HTML body of a mail."""
    body = mail.message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def above(symbol: str, target: str) -> dict[str, str]:
    """The body of a one-shot `above` alert."""
    return {"symbol": symbol, "condition": "above", "target_price": target}


def iso(ms: int) -> str:
    """Epoch ms as the mail's {{time}}."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_new_kinds_of_alert_fire_through_the_gateway(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        headers = await log_in(client, smtp_server, "kinds@example.com")
        user = User(stack, exchange, smtp_server, client, headers)
        await each_new_condition_fires_once(user)
        await percent_move_counts_trades_from_before_the_alert(user)
        await recurring_fires_per_crossing_outside_its_cooldown(user)
        await paused_does_not_fire_until_resumed(user)
        await patched_target_replaces_the_old_within_a_second(user)


async def each_new_condition_fires_once(user: User) -> None:
    """Each new condition fires on the trade the rules say, once; its mail shows the message rendered."""
    alerts = []
    for case in CASES:
        body = {**case.body, "name": f"my {case.body['condition']}", "message": MESSAGE}
        alert = await user.create(body)
        assert alert["status"] == "active" and alert["version"] == 1 and alert["firing_count"] == 0, alert
        assert alert["frequency"] == "once" and alert["message"] == MESSAGE and alert["target_price"] is None
        alerts.append(alert)
    listed = await user.client.get("/alerts", headers=user.headers, params={"condition": "pct_down"})
    assert [a["id"] for a in listed.json()["items"]] == [alerts[1]["id"]], listed.text

    played: list[tuple[int, int]] = []  # the firing trade of each case: its id and time
    for case in CASES:
        for price in case.prices:
            at = int(time.time() * 1000)
            trade_id = await user.exchange.play_trade(case.body["symbol"], price, trade_time=at)
        played.append((trade_id, at))

    histories = [await user.delivered(alert["id"], 1) for alert in alerts]
    await asyncio.sleep(1.0)  # nothing else fires meanwhile
    for case, alert, (trade_id, at), [firing] in zip(CASES, alerts, played, histories, strict=True):
        shown = await user.get(alert["id"])
        assert shown["status"] == "triggered" and shown["firing_count"] == 1, shown
        assert shown["last_fired_at"] and shown["triggered_price"] == case.prices[-1], shown  # canonical text
        assert firing["id"] == alert["id"] and firing["version"] == 1 and firing["trade_id"] == trade_id, firing
        assert firing["price"] == case.prices[-1] and not firing["paused"], firing
        assert firing["delivery_error"] is None and firing["exchange_time"], firing

        [mail] = user.mails(alert["id"])
        condition = case.body["condition"]
        assert case.body["symbol"] in mail.message["Subject"] and f"({condition} alert)" in mail.message["Subject"]
        rendered = (
            f"my {condition}: {case.body['symbol']} {condition} at {case.prices[-1]} for {case.target}, "
            f"move {case.change_pct} in {case.window}, trade {trade_id} at {iso(at)} <&>"
        )
        assert rendered in mail.text(), mail.text()
        assert rendered.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html(mail)
    assert len(alert_mails(user.mailbox)) == len(CASES)


async def percent_move_counts_trades_from_before_the_alert(user: User) -> None:
    """LTCUSDT's 1m window still holds the 85 of the pct_move case (kept while the symbol had percent alerts): a new
    pct_down 1 % alert fires on its very first trade, 84.1, a fall that began before it was created."""
    alert = await user.create({"symbol": "LTCUSDT", "condition": "pct_down", "percent": "1", "window": "1m"})
    first = await user.exchange.play_trade("LTCUSDT", "84.1")
    [firing] = await user.delivered(alert["id"], 1)
    assert firing["trade_id"] == first, firing
    assert "-1.06 %" in user.mails(alert["id"])[0].text()


async def recurring_fires_per_crossing_outside_its_cooldown(user: User) -> None:
    """An every_time alert fires at 3310, not at the crossing to 3305 inside its cooldown (5 s of trade time: the
    crossing is spent, not queued), again at 3320 6 s after the first firing; each firing its own id and mail."""
    alert = await user.create({**above("ETHUSDT", "3300"), "frequency": "every_time", "cooldown_s": 5})
    assert alert["frequency"] == "every_time" and alert["cooldown_s"] == 5, alert
    base = int(time.time() * 1000)
    ids = {}
    for price, after in (("3250", 0), ("3310", 100), ("3290", 200), ("3305", 300), ("3280", 6000), ("3320", 6100)):
        ids[price] = await user.exchange.play_trade("ETHUSDT", price, trade_time=base + after)

    [second, first] = await user.delivered(alert["id"], 2)
    assert (first["id"], first["firing"], first["trade_id"]) == (f"{alert['id']}:1", 1, ids["3310"]), first
    assert (second["id"], second["firing"], second["trade_id"]) == (f"{alert['id']}:2", 2, ids["3320"]), second
    page = await user.firings(alert["id"], page=1, page_size=1)
    assert page["total"] == 2 and [f["firing"] for f in page["items"]] == [2] and page["next"], page
    shown = await user.get(alert["id"])
    assert shown["status"] == "active" and shown["firing_count"] == 2 and shown["last_fired_at"], shown
    await asyncio.sleep(1.0)  # no third mail
    mails = user.mails(alert["id"])
    assert [m.message["Message-ID"].split("@")[0] for m in mails] == [
        f"<trigger.{alert['id']}.1",
        f"<trigger.{alert['id']}.2",
    ]
    assert "firing #1" in mails[0].message["Subject"] and "firing #2" in mails[1].message["Subject"]


async def paused_does_not_fire_until_resumed(user: User) -> None:
    """A paused alert lets a trade above its target pass (the witness on the same symbol shows it was judged), and
    fires on the first one after it is resumed, on its new version."""
    alert = await user.create(above("DOGEUSDT", "0.13"))
    witness = await user.create(above("DOGEUSDT", "0.131"))
    paused = await user.patch(alert["id"], {"status": "paused"})
    assert paused["status"] == "paused" and paused["version"] == 2, paused
    await asyncio.sleep(1.0)
    await user.exchange.play_trade("DOGEUSDT", "0.132")
    await user.delivered(witness["id"], 1)
    assert (await user.firings(alert["id"]))["total"] == 0 and not user.mails(alert["id"])

    resumed = await user.patch(alert["id"], {"status": "active"})
    assert resumed["status"] == "active" and resumed["version"] == 3, resumed
    await asyncio.sleep(1.0)
    after_resume = await user.exchange.play_trade("DOGEUSDT", "0.133")
    [fired] = await user.delivered(alert["id"], 1)
    assert (fired["trade_id"], fired["version"]) == (after_resume, 3), fired
    assert len(user.mails(alert["id"])) == 1


async def patched_target_replaces_the_old_within_a_second(user: User) -> None:
    """One second after a PATCH of the target answered, a trade past the old target only does not fire; the next
    past the new one does, and its firing records the new version."""
    alert = await user.create(above("BTCUSDT", "66000"))
    changed = await user.patch(alert["id"], {"target_price": "67000"})
    assert changed["version"] == 2 and changed["target_price"] == "67000", changed
    await asyncio.sleep(1.0)
    await user.exchange.play_trade("BTCUSDT", "66500")
    fired_new = await user.exchange.play_trade("BTCUSDT", "67100")
    [firing] = await user.delivered(alert["id"], 1)
    assert (firing["trade_id"], firing["version"], firing["price"]) == (fired_new, 2, "67100"), firing
    [mail] = user.mails(alert["id"])
    assert "67000" in mail.message["Subject"] and "67100" in mail.message["Subject"]
