"""Percent, range and recurring alerts through the gateway: each fires on the fake exchange's trades, its mail arrives.

The rules are docs/conditions.md's; the firing history, the message placeholders, pause/resume and PATCH of the
target are checked on the same stacks (one per test function).
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


async def log_in(client: httpx.AsyncClient, mailbox: MailboxServer, email: str) -> dict[str, str]:
    """Register and verify `email`, log in: the Authorization header."""
    await register_verified(client, mailbox, email, PASSWORD)
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def watched(stack: Stack, exchange: FakeExchange, alert: dict[str, Any], kind: str = "alert.created") -> None:
    """Wait until ingest trades the alert's symbol and the evaluator has indexed the alert's `kind` event: only
    trades appended after that count for it (docs/conditions.md)."""
    stream = f"{alert['symbol'].lower()}@trade"
    await exchange.wait_for(lambda: stream in exchange.subscriptions(), within=20, what=f"ingest on {stream}")
    log = stack.directory / "evaluator.log"

    def indexed() -> bool:
        return any(
            "alert.indexed" in line and alert["id"] in line and kind in line
            for line in log.read_text(errors="replace").splitlines()
        )

    await eventually(indexed, within=20, what=f"the evaluator indexed {kind} of {alert['id']}")


def mails_of(mailbox: MailboxServer, alert_id: str) -> list[ReceivedMail]:
    """The alert mails of one alert, in the order they arrived."""
    return [m for m in alert_mails(mailbox) if m.message["X-Pricealert-Alert-Id"] == alert_id]


def html(mail: ReceivedMail) -> str:
    """The HTML body of a mail."""
    body = mail.message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


async def firings(client: httpx.AsyncClient, headers: dict[str, str], alert_id: str, **query: int) -> dict[str, Any]:
    """GET /alerts/{id}/firings."""
    response = await client.get(f"/alerts/{alert_id}/firings", headers=headers, params=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def delivered(
    client: httpx.AsyncClient, headers: dict[str, str], alert_id: str, count: int
) -> list[dict[str, Any]]:
    """The alert's firings once there are `count` and every one's mail is sent (newest first)."""

    async def sent() -> list[dict[str, Any]] | None:
        items = list((await firings(client, headers, alert_id))["items"])
        return items if len(items) == count and all(f["delivery_status"] == "sent" for f in items) else None

    found: list[dict[str, Any]] | None = await eventually(sent, within=30, what=f"{count} firings of {alert_id} sent")
    assert found is not None
    return found


async def get_alert(client: httpx.AsyncClient, headers: dict[str, str], alert_id: str) -> dict[str, Any]:
    """GET /alerts/{id}."""
    response = await client.get(f"/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def patch(
    client: httpx.AsyncClient, headers: dict[str, str], alert_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """PATCH /alerts/{id}, which must succeed."""
    response = await client.patch(f"/alerts/{alert_id}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def above(symbol: str, target: str) -> dict[str, str]:
    """The body of a one-shot `above` alert."""
    return {"symbol": symbol, "condition": "above", "target_price": target}


def iso(ms: int) -> str:
    """Epoch ms as the mail's {{time}}."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_each_new_condition_fires_once_with_its_message_and_history(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        headers = await log_in(client, smtp_server, "kinds@example.com")
        alerts = []
        for case in CASES:
            body = {**case.body, "name": f"my {case.body['condition']}", "message": MESSAGE}
            alert = await create_alert(client, headers, body)
            assert alert["status"] == "active" and alert["version"] == 1 and alert["firing_count"] == 0, alert
            assert alert["frequency"] == "once" and alert["message"] == MESSAGE and alert["target_price"] is None
            alerts.append(alert)
        listed = await client.get("/alerts", headers=headers, params={"condition": "pct_down"})
        assert [a["id"] for a in listed.json()["items"]] == [alerts[1]["id"]], listed.text
        for alert in alerts:
            await watched(stack, exchange, alert)

        played: list[tuple[int, int]] = []  # the firing trade of each case: its id and time
        for case in CASES:
            for price in case.prices:
                at = int(time.time() * 1000)
                trade_id = await exchange.play_trade(case.body["symbol"], price, trade_time=at)
            played.append((trade_id, at))

        histories = [await delivered(client, headers, alert["id"], 1) for alert in alerts]
        await asyncio.sleep(1.0)  # nothing else fires meanwhile
        for case, alert, (trade_id, at), [firing] in zip(CASES, alerts, played, histories, strict=True):
            shown = await get_alert(client, headers, alert["id"])
            assert shown["status"] == "triggered" and shown["firing_count"] == 1, shown
            assert shown["triggered_price"].rstrip("0").rstrip(".") == case.prices[-1].rstrip("0").rstrip(".")
            assert firing["id"] == alert["id"] and firing["version"] == 1 and firing["trade_id"] == trade_id
            assert firing["price"].rstrip("0").rstrip(".") == case.prices[-1].rstrip("0").rstrip(".")
            assert firing["delivery_error"] is None and not firing["paused"]

            [mail] = mails_of(smtp_server, alert["id"])
            condition = case.body["condition"]
            assert case.body["symbol"] in mail.message["Subject"] and f"({condition} alert)" in mail.message["Subject"]
            rendered = (
                f"my {condition}: {case.body['symbol']} {condition} at {case.prices[-1]} for {case.target}, "
                f"move {case.change_pct} in {case.window}, trade {trade_id} at {iso(at)} <&>"
            )
            assert rendered in mail.text(), mail.text()
            assert rendered.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html(mail)
        assert len(alert_mails(smtp_server)) == len(CASES)


async def test_recurring_cooldown_pause_resume_and_patch(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        headers = await log_in(client, smtp_server, "recurring@example.com")
        recurring = await create_alert(
            client,
            headers,
            {"symbol": "ETHUSDT", "condition": "above", "target_price": "3300", "frequency": "every_time",
             "cooldown_s": 5},
        )  # fmt: skip
        assert recurring["frequency"] == "every_time" and recurring["cooldown_s"] == 5
        paused = await create_alert(client, headers, above("BNBUSDT", "600"))
        # On the same symbol: keeps ingest on it while the other is paused, and shows the trade was judged.
        witness = await create_alert(client, headers, above("BNBUSDT", "605"))
        moved = await create_alert(client, headers, above("BTCUSDT", "66000"))
        for alert in (recurring, paused, witness, moved):
            await watched(stack, exchange, alert)

        # Recurring, cooldown 5 s of trade time: fires at 3310, the crossing at 3305 0.2 s later is inside the
        # cooldown (spent, not queued), the one at 3320 6 s after the first firing fires again.
        base = int(time.time() * 1000)
        ids = {}
        for price, after in (("3250", 0), ("3310", 100), ("3290", 200), ("3305", 300), ("3280", 6000), ("3320", 6100)):
            ids[price] = await exchange.play_trade("ETHUSDT", price, trade_time=base + after)

        # Pause, then a trade above both BNBUSDT targets: only the witness fires.
        assert (await patch(client, headers, paused["id"], {"status": "paused"}))["status"] == "paused"
        await asyncio.sleep(1.0)
        await exchange.play_trade("BNBUSDT", "610")
        await delivered(client, headers, witness["id"], 1)

        # A new target: one second after the PATCH answered, the old target no longer fires, the new one does.
        changed = await patch(client, headers, moved["id"], {"target_price": "67000"})
        assert changed["version"] == 2 and changed["target_price"] == "67000", changed
        await asyncio.sleep(1.0)
        await exchange.play_trade("BTCUSDT", "66500")
        fired_new = await exchange.play_trade("BTCUSDT", "67100")

        [second, first] = await delivered(client, headers, recurring["id"], 2)
        assert (first["id"], first["firing"], first["trade_id"]) == (f"{recurring['id']}:1", 1, ids["3310"])
        assert (second["id"], second["firing"], second["trade_id"]) == (f"{recurring['id']}:2", 2, ids["3320"])
        page = await firings(client, headers, recurring["id"], page=1, page_size=1)
        assert page["total"] == 2 and [f["firing"] for f in page["items"]] == [2] and page["next"], page
        shown = await get_alert(client, headers, recurring["id"])
        assert shown["status"] == "active" and shown["firing_count"] == 2 and shown["last_fired_at"], shown
        mails = mails_of(smtp_server, recurring["id"])
        assert [m.message["Message-ID"].split("@")[0] for m in mails] == [
            f"<trigger.{recurring['id']}.1",
            f"<trigger.{recurring['id']}.2",
        ]
        assert "firing #1" in mails[0].message["Subject"] and "firing #2" in mails[1].message["Subject"]

        [by_new] = await delivered(client, headers, moved["id"], 1)
        assert (by_new["trade_id"], by_new["version"]) == (fired_new, 2), by_new
        assert "67000" in mails_of(smtp_server, moved["id"])[0].message["Subject"]

        # Nothing fired the paused alert; resumed, it fires on the next trade above its target.
        assert (await firings(client, headers, paused["id"]))["total"] == 0
        resumed = await patch(client, headers, paused["id"], {"status": "active"})
        assert resumed["status"] == "active" and resumed["version"] > paused["version"], resumed
        await asyncio.sleep(1.0)
        after_resume = await exchange.play_trade("BNBUSDT", "612")
        [fired] = await delivered(client, headers, paused["id"], 1)
        assert (fired["trade_id"], fired["version"]) == (after_resume, resumed["version"]), fired

        await asyncio.sleep(1.0)  # no further mail for any of them
        assert len(mails_of(smtp_server, recurring["id"])) == 2
        assert len(mails_of(smtp_server, paused["id"])) == 1 and len(mails_of(smtp_server, moved["id"])) == 1
