"""A person's first session in the page: register, verify, sign in, set alerts, watch one fire live, tidy up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from browser_pages import PASSWORD, Page
from browser_testkit import screenshot
from selenium.webdriver.common.by import By

from pricealert.common.prices import format_price

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(180)]

SYMBOL = "ETHUSDT"


def test_register_verify_sign_in_and_watch_an_alert_fire_live(page: Page) -> None:
    email = "ada@example.com"
    page.register(email)
    page.verify(email)
    page.sign_in(email)

    price = page.stack.current_price(SYMBOL)
    target = (price * Decimal("1.01")).quantize(Decimal("0.01"))
    page.click("#nav-new-alert")
    form = page.fill("alert-form", symbol=SYMBOL.lower(), condition="above", target_price=str(target), name="eth up")
    page.find('#current-price[data-state="price"]', within=15)
    assert Decimal(str(page.find("#current-price").get_attribute("data-price"))) == price
    screenshot(page.browser, "create-alert")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    fired_id = page.until(lambda b: page.detail_id(), "the new alert's detail")
    other_id = page.create_alert(symbol=SYMBOL, condition="below", target_price=str(price / 2), name="eth down")

    page.click("#nav-alerts")
    page.row_status(fired_id, "active")
    page.row_status(other_id, "active")
    page.text(f'#alert-list [data-alert-id="{fired_id}"]', f"above {format_price(target)}")
    page.text(f'#alert-list [data-alert-id="{fired_id}"]', "eth up")
    screenshot(page.browser, "alert-list")

    page.script("window.sameDocument = true")  # a reload would lose it
    traded = target + Decimal("5")
    page.stack.trade(SYMBOL, traded)
    page.row_status(fired_id, "triggered", within=20)
    page.text("#toasts .toast", f"{SYMBOL} alert fired at {format_price(traded)}")
    assert page.script("return window.sameDocument === true"), "the page reloaded to show the firing"
    page.until(lambda b: "sent" in page.row(fired_id).text, "the list's delivery status sent", within=20)
    screenshot(page.browser, "alert-fired")

    page.click(f'#alert-list [data-alert-id="{fired_id}"] a')
    page.find('#alert-detail [data-status="triggered"]')
    firing = page.find("#firings [data-firing-id]")
    assert format_price(traded) in firing.text
    delivery = page.find('#deliveries [data-channel-id][data-status="sent"]', within=20)
    assert "email" in delivery.text

    page.go(f"/alerts/{other_id}")
    page.click("#edit-alert")
    page.submit("alert-form", name="eth much lower", target_price=str(price / 4))
    page.text("#alert-detail", "eth much lower")
    page.click("#pause-alert")
    page.find('#alert-detail [data-status="paused"]')
    page.click("#nav-alerts")
    page.row_status(other_id, "paused")
    page.go(f"/alerts/{other_id}")
    page.click("#resume-alert")
    page.find('#alert-detail [data-status="active"]')
    page.delete_alert()
    page.find(f'#alert-list [data-alert-id="{fired_id}"]')
    page.go("/alerts?status=active")
    page.text("#alert-list-status", "No alerts")
    assert not page.exists(f'#alert-list [data-alert-id="{other_id}"]')


def api_message(error: dict[str, Any], field: str) -> str:
    """The API's words about `field`: its 422 detail, or the error's message when it names no field."""
    details = error.get("details")
    if isinstance(details, list):
        return next(str(d["msg"]) for d in details if d["loc"][-1] == field)
    return str(error["message"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"condition": "above", "target_price": "abc"}, "target_price"),
        ({"condition": "below", "target_price": "-5"}, "target_price"),
        ({"condition": "enter_range", "low": "3000", "high": "2500"}, "high"),
    ],
    ids=["not-a-number", "negative", "low-above-high"],
)
def test_a_bad_alert_shows_the_apis_message_beside_its_field(page: Page, fields: dict[str, str], field: str) -> None:
    email = f"bad-{fields['condition']}-{field}@example.com"
    page.stack.account(email, PASSWORD)
    page.sign_in(email)
    page.click("#nav-new-alert")
    page.submit("alert-form", symbol=SYMBOL, **fields)
    expected = api_message(page.stack.api_error("/alerts", {"symbol": SYMBOL, **fields}, (email, PASSWORD)), field)
    assert expected in page.field_error("alert-form", field)
    assert page.detail_id() is None, "the bad alert was created"


def test_a_short_password_shows_the_apis_message_beside_the_password(page: Page) -> None:
    body = {"email": "short@example.com", "password": "short"}
    page.open("/register")
    page.submit("register-form", **body)
    assert api_message(page.stack.api_error("/auth/register", body), "password") in page.field_error(
        "register-form", "password"
    )
