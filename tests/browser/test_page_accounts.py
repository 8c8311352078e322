"""Accounts in the page: one user never sees another's alerts, the session stays out of script reach, the
keyboard alone signs in, and a phone-wide screen needs no sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest
from browser_pages import PASSWORD, Page
from browser_testkit import chromium, console_errors
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(180)]

REFRESH_COOKIE = "pricealert_refresh"
# The computed focus ring of the focused element: an outline, or a box-shadow standing in for one.
FOCUS_RING = """
const style = getComputedStyle(document.activeElement);
return {id: document.activeElement.id, tag: document.activeElement.tagName, outline: style.outlineStyle,
        width: parseFloat(style.outlineWidth) || 0, shadow: style.boxShadow};
"""


def refresh_cookies(page: Page) -> list[dict[str, Any]]:
    """The browser's refresh cookies, httpOnly ones included (DevTools sees every path)."""
    cookies: list[dict[str, Any]] = page.browser.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
    return [c for c in cookies if c["name"] == REFRESH_COOKIE]


def test_another_user_sees_none_of_the_first_users_alerts(page: Page) -> None:
    first, second = "first@example.com", "second@example.com"
    for email in (first, second):
        page.stack.account(email, PASSWORD)
    page.sign_in(first)
    mine = page.create_alert(symbol="BTCUSDT", condition="above", target_price="90000", name="first's secret")
    page.click("#nav-alerts")
    page.row_status(mine, "active")

    other_browser = chromium()  # a browser session of its own, the first one still signed in
    try:
        other = Page(other_browser, page.stack)
        other.sign_in(second)
        other.text("#alert-list-status", "No alerts")
        assert not other.exists("#alert-list [data-alert-id]")
        other.go(f"/alerts/{mine}")
        other.text("#alert-detail", "does not exist")
        assert "first's secret" not in other.find("#main").text
        for shown in ("#pause-alert", "#resume-alert", "#edit-alert", "#delete-alert", "#firings [data-firing-id]"):
            assert not other.exists(shown), f"{shown} shown for another user's alert"
        assert not console_errors(other_browser)
    finally:
        other_browser.quit()
    page.row_status(mine, "active")


def test_the_session_lives_in_an_httponly_cookie_survives_a_reload_and_ends_on_sign_out(page: Page) -> None:
    email = "careful@example.com"
    page.stack.account(email, PASSWORD)
    page.sign_in(email)
    assert page.script("return [localStorage.length, sessionStorage.length]") == [0, 0]
    assert REFRESH_COOKIE not in page.script("return document.cookie")
    [cookie] = refresh_cookies(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/auth/session", cookie

    page.browser.refresh()
    page.text("#session-user", email)
    page.find("#alert-list")
    assert page.script("return [localStorage.length, sessionStorage.length]") == [0, 0]

    page.click("#nav-sign-out")
    page.find("#login-form")
    assert not refresh_cookies(page)
    page.browser.refresh()
    page.find("#login-form")
    assert not page.exists("#nav-alerts") and not page.exists("#session-user")


def test_signing_in_with_the_keyboard_alone_with_a_visible_focus_ring(page: Page) -> None:
    email = "keys@example.com"
    page.stack.account(email, PASSWORD)
    page.open("/login")
    page.find("#login-form")
    keys = ActionChains(page.browser)
    rings = []
    for _ in range(15):
        keys.send_keys(Keys.TAB).perform()
        rings.append(page.script(FOCUS_RING))
        if rings[-1]["id"] == "login-form-email":
            break
    assert rings[-1]["id"] == "login-form-email", f"TAB never reached the email field: {rings}"
    keys.send_keys(email, Keys.TAB).perform()
    rings.append(page.script(FOCUS_RING))
    assert rings[-1]["id"] == "login-form-password", rings[-1]
    keys.send_keys(PASSWORD, Keys.TAB).perform()
    rings.append(page.script(FOCUS_RING))
    assert rings[-1]["tag"] == "BUTTON", rings[-1]
    unringed = [r for r in rings if r["outline"] == "none" or r["width"] < 2]
    assert not unringed, f"focused without a visible outline: {unringed}"
    keys.send_keys(Keys.ENTER).perform()
    page.text("#session-user", email)


def test_the_list_fits_a_phone_wide_screen(phone_page: Page) -> None:
    email = "phone@example.com"
    phone_page.stack.account(email, PASSWORD)
    for n, symbol in enumerate(("BTCUSDT", "DOGEUSDT", "ETHBTC")):
        body = {"symbol": symbol, "condition": "enter_range", "low": "0.01", "high": "0.02", "name": f"range {n}"}
        phone_page.stack.api_alert((email, PASSWORD), body)
    phone_page.sign_in(email)
    assert phone_page.script("return window.innerWidth") == 375
    phone_page.text("#alert-list-status", "3 alerts")
    for route in ("/alerts", "/alerts/new"):
        phone_page.go(route)
        phone_page.find("#alert-list" if route == "/alerts" else "#alert-form")
        width = phone_page.script("return document.documentElement.scrollWidth")
        assert width <= 375 + 1, f"{route} is {width} px wide on a 375 px screen"
