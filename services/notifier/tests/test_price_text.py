"""Every price and percent a notification shows is in the canonical form (prices.format_price): the mail's subject
and rows, the message placeholders, the Apprise text and the webhook body, whatever text the exchange sent."""

from __future__ import annotations

from decimal import Decimal

from webhook_testkit import firing

from pricealert.common.events import Condition
from pricealert.notifier.alerttext import describe, placeholder_values
from pricealert.notifier.channelsend import apprise_text
from pricealert.notifier.webhookpayload import encode, firing_payload

# The exchange's trade text, a target written with an exponent, and a tiny price with trailing zeros.
LEVEL = firing(1).model_copy(update={"target_price": Decimal("1E+5"), "price": Decimal("64818.28000000")})
TINY = firing(2).model_copy(
    update={"condition": Condition.BELOW, "target_price": Decimal("1.234E-5"), "price": Decimal("0.00001234000")}
)
PERCENT = firing(3).model_copy(
    update={
        "condition": Condition.PCT_UP,
        "target_price": None,
        "percent": Decimal("5.0"),
        "window": "1h",
        "reference_price": Decimal("61731.70000000"),
        "change_pct": "5.00",
        "price": Decimal("64818.28000000"),
        "message": "{{symbol}} {{change_pct}} % {{price}} {{target}}",
    }
)


def test_the_mail_subject_and_rows_are_canonical() -> None:
    level = describe(LEVEL)
    assert level.subject == "BTCUSDT rose to 100000 (above alert) - traded at 64818.28"
    assert ("Target", "100000 (above)") in level.rows and ("Trade price", "64818.28") in level.rows
    tiny = describe(TINY)
    assert tiny.subject == "BTCUSDT fell to 0.00001234 (below alert) - traded at 0.00001234"
    assert ("Trade price", "0.00001234") in tiny.rows


def test_a_percent_firing_and_its_placeholders_are_canonical() -> None:
    text = describe(PERCENT)
    assert text.subject == "BTCUSDT rose 5 % within 1h: 61731.7 -> 64818.28 (pct_up alert)"
    assert ("Move", "+5 %") in text.rows and ("From", "61731.7 (the lowest price within 1h)") in text.rows
    assert text.message == "BTCUSDT 5 % 64818.28 5 % in 1h"
    values = placeholder_values(PERCENT)
    assert (values["price"], values["change_pct"], values["target"]) == ("64818.28", "5", "5 % in 1h")


def test_a_move_that_is_no_decimal_is_shown_as_written() -> None:
    odd = PERCENT.model_copy(update={"change_pct": "n/a"})
    assert placeholder_values(odd)["change_pct"] == "n/a"
    assert firing_payload(odd, None)["change_pct"] == "n/a"


def test_the_apprise_text_is_canonical() -> None:
    title, body = apprise_text(LEVEL)
    assert title == "BTCUSDT rose to 100000 (above alert) - traded at 64818.28"
    assert "Trade price: 64818.28" in body.splitlines() and "64818.28000000" not in body and "E+" not in body


def test_the_webhook_body_is_canonical() -> None:
    level = firing_payload(LEVEL, None)
    assert (level["target_price"], level["price"]) == ("100000", "64818.28")
    percent = firing_payload(PERCENT, "rendered")
    assert (percent["percent"], percent["price"], percent["change_pct"]) == ("5", "64818.28", "5")
    assert b'"price":"0.00001234"' in encode(firing_payload(TINY, None))
