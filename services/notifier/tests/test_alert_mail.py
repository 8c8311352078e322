"""Alert mails for every condition and frequency, through a real SMTP server: what happened, the firing, the pause,
the user's message (rendered, escaped in HTML, never in a header), and one mail per firing of a recurring alert."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from notifier_testkit import RETRY_QUEUE, SHARD, TRIGGERS, StartNotifier, pending, results, settings_for
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Condition, Frequency, Trigger
from pricealert.devstack.smtp import MailboxServer, ReceivedMail
from pricealert.testsupport.polling import eventually

RECURRING: dict[str, Any] = {"frequency": Frequency.EVERY_TIME, "cooldown_s": 300}
PCT_UP: dict[str, Any] = {
    "condition": Condition.PCT_UP,
    "percent": Decimal("5"),
    "window": "1h",
    "reference_price": Decimal("64000.00"),
    "change_pct": "5.03",
    "price": Decimal("67219.00000000"),
}


def make(trigger_id: str, **facts: Any) -> Trigger:
    """A trigger on BTCUSDT (an above-100000 alert unless `facts` say otherwise); its alert id is the id's head."""
    values: dict[str, Any] = {
        "trigger_id": trigger_id,
        "alert_id": trigger_id.split(":")[0],
        "user_id": "u1",
        "email": "ada@example.com",
        "symbol": "BTCUSDT",
        "condition": Condition.ABOVE,
        "target_price": Decimal("100000"),
        "price": Decimal("100012.50000000"),
        "trade_id": 42,
        "exchange_time": 1_777_807_004_059,
        "tick_received_at": 1_777_807_004_070,
        "fired_at": 1_777_807_004_071,
    }
    if "condition" in facts and facts["condition"] not in (Condition.ABOVE, Condition.BELOW, Condition.CROSS):
        del values["target_price"]
    return Trigger(**(values | facts))


async def send(redis: Redis, server: MailboxServer, *triggers: Trigger) -> dict[str, ReceivedMail]:
    """Publish `triggers`, wait for their results, and return the mails by trigger id (Message-ID `<trigger.X@..>`)."""
    async with redis.pipeline(transaction=False) as pipe:
        for trigger in triggers:
            pipe.xadd(TRIGGERS, trigger.to_fields())  # type: ignore[arg-type]
        await pipe.execute()
    wanted = {t.trigger_id for t in triggers}

    async def all_sent() -> bool:
        return wanted <= {r.trigger_id for r in await results(redis) if r.status == "sent"}

    await eventually(all_sent)
    by_id = {str(m.message["Message-ID"]): m for m in server.mails}
    return {t.trigger_id: by_id[f"<trigger.{t.trigger_id.replace(':', '.')}@pricealert.localhost>"] for t in triggers}


def html(mail: ReceivedMail) -> str:
    part = mail.message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def header_block(mail: ReceivedMail) -> bytes:
    return re.split(rb"\r\n\r\n", mail.raw, maxsplit=1)[0]


# Per condition: the trigger's facts, its subject, and lines its text part holds.
CASES: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "above": ({}, "BTCUSDT rose to 100000 (above alert) - traded at 100012.5", ["Target:      100000 (above)"]),
    "below": (
        {"condition": Condition.BELOW, "target_price": Decimal("60000.0"), "price": Decimal("59990.10")},
        "BTCUSDT fell to 60000 (below alert) - traded at 59990.1",
        ["Target:      60000 (below)", "Trade price: 59990.1"],
    ),
    "cross": (
        {"condition": Condition.CROSS, "target_price": Decimal("0.00012300")},
        "BTCUSDT crossed 0.000123 (cross alert) - traded at 100012.5",
        ["Target:      0.000123 (cross)"],
    ),
    "exponent": (
        {"target_price": Decimal("1E+5"), "price": Decimal("64818.28000000")},
        "BTCUSDT rose to 100000 (above alert) - traded at 64818.28",
        ["Target:      100000 (above)", "Trade price: 64818.28"],
    ),
    "tiny": (
        {"condition": Condition.BELOW, "target_price": Decimal("1.234E-5"), "price": Decimal("0.00001234000")},
        "BTCUSDT fell to 0.00001234 (below alert) - traded at 0.00001234",
        ["Target:      0.00001234 (below)", "Trade price: 0.00001234"],
    ),
    "pct_up": (
        PCT_UP,
        "BTCUSDT rose 5.03 % within 1h: 64000 -> 67219 (pct_up alert)",
        [
            "BTCUSDT rose 5.03 % within 1h: 64000 -> 67219",
            "Condition:   pct_up: a move of at least 5 % within 1h",
            "Move:        +5.03 %",
            "From:        64000 (the lowest price within 1h)",
            "Trade price: 67219",
        ],
    ),
    "pct_down": (
        {
            "condition": Condition.PCT_DOWN,
            "percent": Decimal("4"),
            "window": "4h",
            "reference_price": Decimal("67219"),
            "change_pct": "-4.12",
            "price": Decimal("64449.58"),
        },
        "BTCUSDT fell 4.12 % within 4h: 67219 -> 64449.58 (pct_down alert)",
        ["Move:        -4.12 %", "From:        67219 (the highest price within 4h)"],
    ),
    "pct_move": (
        {
            "condition": Condition.PCT_MOVE,
            "percent": Decimal("0.5"),
            "window": "1m",
            "reference_price": Decimal("100"),
            "change_pct": "-0.50",
            "price": Decimal("99.5"),
        },
        "BTCUSDT fell 0.5 % within 1m: 100 -> 99.5 (pct_move alert)",
        ["Condition:   pct_move: a move of at least 0.5 % within 1m", "From:        100 (the highest price within 1m)"],
    ),
    "enter_range": (
        {
            "condition": Condition.ENTER_RANGE,
            "low": Decimal("60000"),
            "high": Decimal("62000.00"),
            "price": Decimal("61000"),
        },
        "BTCUSDT entered 60000\N{EN DASH}62000 (enter_range alert) - traded at 61000",
        ["BTCUSDT entered 60000\N{EN DASH}62000", "Range:       60000\N{EN DASH}62000 (enter_range)"],
    ),
    "exit_range": (
        {
            "condition": Condition.EXIT_RANGE,
            "low": Decimal("60000"),
            "high": Decimal("62000"),
            "price": Decimal("62000.5"),
        },
        "BTCUSDT left 60000\N{EN DASH}62000 (exit_range alert) - traded at 62000.5",
        ["Range:       60000\N{EN DASH}62000 (exit_range)"],
    ),
}


async def test_each_condition_says_what_happened(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    mails = await send(redis, smtp_server, *(make(name, **facts) for name, (facts, _, _) in CASES.items()))
    for name, (_, subject, lines) in CASES.items():
        mail = mails[name]
        assert mail.message["Subject"] == subject, name
        text = mail.text().splitlines()
        for line in [*lines, "Trade id:    42", "Trade time:  2026-05-03 11:16:44.059 (exchange time, UTC)"]:
            assert line in text, (name, line)
        assert "This alert has fired and will not fire again; create a new one to keep watching BTCUSDT." in text
        assert "Firing" not in mail.text()
        assert subject.split(" (")[0].replace("->", "-&gt;") in html(mail)


async def test_the_message_is_rendered_in_text_and_escaped_in_html(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    template = (
        "<b>{{symbol}}</b> {{ price }} | {{target}} | {{condition}} | {{name}} | {{time}} | {{trade_id}} | "
        "{{change_pct}} | {{window}} | {{nope}} & bye\nsecond line"
    )
    pct = make("p", **PCT_UP, name="<i>moon</i>", message=template)
    ranged = make("r", condition=Condition.ENTER_RANGE, low=Decimal("1.5"), high=Decimal("2"), message="{{target}}!")
    level = make("l", message="[{{target}}|{{change_pct}}|{{window}}|{{name}}]")
    mails = await send(redis, smtp_server, pct, ranged, level)
    rendered = (
        "<b>BTCUSDT</b> 67219 | 5 % in 1h | pct_up | <i>moon</i> | 2026-05-03T11:16:44.059Z | 42 | "
        "5.03 | 1h | {{nope}} & bye"
    )
    assert rendered in mails["p"].text().splitlines() and "second line" in mails["p"].text().splitlines()
    body = html(mails["p"])
    assert rendered.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in body
    assert "<b>" not in body and "<i>" not in body and "<strong>&lt;i&gt;moon&lt;/i&gt;</strong>" in body
    assert "1.5\N{EN DASH}2!" in mails["r"].text().splitlines()
    assert "[100000|||]" in mails["l"].text().splitlines()


async def test_line_breaks_in_the_name_or_message_never_reach_a_header(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    evil = "x\r\nBcc: eve@example.com\r\nSubject: free money\r\n\r\n--=_pricealert_t\r\nContent-Type: text/html"
    mails = await send(redis, smtp_server, make("e", name=f"moon{evil}", message=f"hi{evil}\rend"))
    mail = mails["e"]
    assert mail.recipients == ["ada@example.com"]
    assert b"eve@" not in header_block(mail) and b"free money" not in header_block(mail)
    message = mail.message
    assert message["Bcc"] is None and message.get_all("Subject") == [
        "BTCUSDT rose to 100000 (above alert) - traded at 100012.5"
    ]
    assert [p.get_content_type() for p in message.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    text = mail.text()
    assert "Bcc: eve@example.com" in text and "free money" in text  # in the body, as text
    assert 'Your alert "moonx Bcc: eve@example.com Subject: free money' in text  # the name on one line
    assert "Bcc: eve@example.com" in html(mail)


async def test_a_paused_firing_says_so_and_how_to_resume(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    paused = make("a7:20", **RECURRING, **PCT_UP, firing=20, paused=True, hour_firings=20)
    mail = (await send(redis, smtp_server, paused))["a7:20"]
    assert mail.message["Subject"] == (
        "BTCUSDT rose 5.03 % within 1h: 64000 -> 67219 (pct_up alert) - firing #20, alert paused"
    )
    text = mail.text()
    assert "This alert fired 20 times within an hour, its limit, and is now paused" in text
    assert 'To resume it: PATCH /alerts/a7 with {"status": "active"} (its next firing will be #21)' in text
    assert "Firing:      #20" in text.splitlines()
    assert "stays active" not in text and "will not fire again;" not in text
    assert "is now paused" in html(mail) and "&#34;status&#34;: &#34;active&#34;" in html(mail)


async def test_two_firings_of_a_recurring_alert_are_two_mails_and_a_redelivered_one_is_not_sent_again(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    first = make("a9:1", **RECURRING, condition=Condition.BELOW, target_price=Decimal("100"), price=Decimal("99"))
    second = make(
        "a9:2", **RECURRING, condition=Condition.BELOW, target_price=Decimal("100"), price=Decimal("98"), firing=2
    )
    mails = await send(redis, smtp_server, first, second)
    assert mails["a9:1"].message["Message-ID"] != mails["a9:2"].message["Message-ID"]
    assert mails["a9:2"].message["Subject"] == "BTCUSDT fell to 100 (below alert) - traded at 98 - firing #2"
    lines = mails["a9:2"].text().splitlines()
    assert "Firing:      #2" in lines and "Cooldown:    5 min" in lines
    assert any(
        line.startswith("This alert stays active: it fires again at the next crossing, no sooner than 5 min")
        for line in lines
    )
    assert await redis.exists(names.notifier_sent_key(SHARD, "a9:1"), names.notifier_sent_key(SHARD, "a9:2")) == 2
    last = await redis.xadd(TRIGGERS, second.to_fields())  # type: ignore[arg-type]  # redelivered firing

    async def acknowledged() -> bool:
        [group] = await redis.xinfo_groups(TRIGGERS)
        return bool(group["last-delivered-id"] == last) and await pending(redis) == 0

    await eventually(acknowledged)
    assert len(smtp_server.mails) == 2
    assert sorted(r.trigger_id for r in await results(redis)) == ["a9:1", "a9:2"]


async def test_a_firing_that_waits_for_a_retry_does_not_hold_up_the_next_one(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    smtp_server.handler.fail_next(1, "451 4.3.0 Try again later")
    notifier(settings_for(smtp_server.port, backoff_base_s=2.0, backoff_max_s=2.0))
    await redis.xadd(TRIGGERS, make("b1:1", **RECURRING).to_fields())  # type: ignore[arg-type]

    async def waiting() -> bool:
        return await redis.zscore(RETRY_QUEUE, "b1:1") is not None

    await eventually(waiting)
    await send(redis, smtp_server, make("b1:2", **RECURRING, firing=2))
    assert {r.trigger_id: r.attempts for r in await results(redis)} == {"b1:2": 1}  # sent while b1:1 waits

    async def both_sent() -> bool:
        return {r.trigger_id: r.attempts for r in await results(redis)} == {"b1:2": 1, "b1:1": 2}

    await eventually(both_sent)
    assert len(smtp_server.mails) == 2
    assert not await redis.exists(names.notifier_retry_key(SHARD, "b1:1"))
