"""What a person does in the page, by the DOM contract of app.js (ids, names, data attributes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from browser_testkit import BrowserStack
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

T = TypeVar("T")
PASSWORD = "s3cret-pass-phrase"


class Page:
    """The page in one browser, with waits on what a person would look at."""

    def __init__(self, browser: webdriver.Chrome, stack: BrowserStack) -> None:
        self.browser = browser
        self.stack = stack

    # -- looking -------------------------------------------------------------------------------------

    def until(self, check: Callable[[webdriver.Chrome], T | None], what: str, within: float = 10.0) -> T:
        """Wait until `check` returns something truthy (a vanished element counts as "not yet")."""
        ignored = (StaleElementReferenceException,)
        value = WebDriverWait(self.browser, within, poll_frequency=0.1, ignored_exceptions=ignored).until(
            check, f"waited {within} s for {what}"
        )
        assert value is not None
        return value

    def find(self, css: str, within: float = 10.0) -> WebElement:
        """The displayed element matching `css`, once there is one."""

        def shown(browser: webdriver.Chrome) -> WebElement | None:
            return next((e for e in browser.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)

        return self.until(shown, css, within)

    def text(self, css: str, contains: str, within: float = 10.0) -> str:
        """The text of `css` once it contains `contains`."""

        def shown(browser: webdriver.Chrome) -> str | None:
            text = self.find(css, within).text
            return text if contains in text else None

        return self.until(shown, f"{contains!r} in {css}", within)

    def absent(self, css: str, within: float = 10.0) -> None:
        """Wait until nothing displayed matches `css`."""
        self.until(
            lambda b: not any(e.is_displayed() for e in b.find_elements(By.CSS_SELECTOR, css)), f"no {css}", within
        )

    def exists(self, css: str) -> bool:
        """Whether something displayed matches `css` now."""
        return any(e.is_displayed() for e in self.browser.find_elements(By.CSS_SELECTOR, css))

    def script(self, source: str, *args: Any) -> Any:
        """Run `source` in the page and return its value."""
        return self.browser.execute_script(source, *args)

    # -- acting --------------------------------------------------------------------------------------

    def open(self, route: str = "") -> None:
        """Load the page afresh at `/#<route>` (a full load: the app starts over and restores its session)."""
        self.browser.get(f"{self.stack.url}/#{route}" if route else f"{self.stack.url}/")
        self.until(lambda b: b.execute_script("return document.readyState") == "complete", "the page loaded")

    def go(self, route: str) -> None:
        """Move to `/#<route>` inside the running app, as a link would (no reload)."""
        self.script("window.location.hash = arguments[0]", route)

    def reset(self) -> None:
        """Signed out and on a blank page: cookies and storage gone, the in-memory token with the old document."""
        self.browser.get("about:blank")
        self.browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.browser.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": self.stack.url, "storageTypes": "all"})

    def delete_alert(self) -> None:
        """Press #delete-alert, then #confirm-delete (again if a live redraw closed the confirmation meanwhile)."""

        def deleted(browser: webdriver.Chrome) -> bool:
            try:
                if not self.exists("#confirm-delete"):
                    self.find("#delete-alert", within=2).click()
                self.find("#confirm-delete", within=2).click()
            except TimeoutException:
                return False
            return True

        self.until(deleted, "the alert deleted", within=15)

    def fill(self, form: str, **fields: str) -> WebElement:
        """Type into the fields of `#<form>` by their API names (select boxes pick by value); returns the form."""
        element = self.find(f"#{form}")
        for name, value in fields.items():
            field = element.find_element(By.NAME, name)
            if field.tag_name == "select":
                Select(field).select_by_value(value)
                continue
            field.clear()
            field.send_keys(value)
        return element

    def submit(self, form: str, **fields: str) -> None:
        """Fill `#<form>` and press its submit button."""
        element = self.fill(form, **fields)
        element.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()

    def click(self, css: str) -> None:
        """Click the displayed element matching `css` (again if a live update redrew it meanwhile)."""

        def clicked(browser: webdriver.Chrome) -> bool:
            self.find(css).click()
            return True

        self.until(clicked, f"a click on {css}")

    def field_error(self, form: str, field: str, within: float = 10.0) -> str:
        """The error shown beside `field` of `#<form>`, once there is one; it is the input's aria-describedby."""
        text = self.until(
            lambda b: self.find(f"#{form}-{field}-error").text.strip(), f"the {form} {field} error", within
        )
        described = self.find(f"#{form}").find_element(By.NAME, field).get_attribute("aria-describedby") or ""
        assert f"{form}-{field}-error" in described.split(), f"{field}'s aria-describedby is {described!r}"
        return text

    # -- a person's errands --------------------------------------------------------------------------

    def register(self, email: str, password: str = PASSWORD) -> None:
        """Fill and send the register form (the page shows it signed out)."""
        self.open("/register")
        self.submit("register-form", email=email, password=password)
        self.until(lambda b: self.find("#register-result").text.strip(), "the register form's answer")

    def verify(self, email: str) -> None:
        """Open the link of the verification mail; the page says the address is verified."""
        self.browser.get(self.stack.page_verification_link(email))
        self.until(lambda b: self.find("#verify-result").get_attribute("data-state") != "pending", "the verification")
        result = self.find("#verify-result")
        assert result.get_attribute("data-state") == "ok" and "verified" in result.text.lower(), result.text

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        """Sign in with the sign-in form; the status line shows the address."""
        self.open("/login")
        self.submit("login-form", email=email, password=password)
        self.text("#session-user", email)

    def new_user(self, email: str) -> None:
        """Register, verify and sign in, all in the page."""
        self.register(email)
        self.verify(email)
        self.sign_in(email)

    def create_alert(self, **fields: str) -> str:
        """Fill `#alert-form` from the nav link and send it; returns the new alert's id (the page opens its detail)."""
        self.click("#nav-new-alert")
        self.submit("alert-form", **fields)
        opened = self.until(lambda b: self.detail_id(), "the new alert's detail")
        self.find("#alert-detail [data-status]")
        return opened

    def detail_id(self) -> str | None:
        """The id of the alert whose detail is open (from the address), else None."""
        route = str(self.script("return location.hash")).removeprefix("#/alerts/")
        return route if route and "/" not in route and route != "new" and not route.startswith("#") else None

    def row(self, alert_id: str) -> WebElement:
        """The alert's row in `#alert-list`."""
        return self.find(f'#alert-list [data-alert-id="{alert_id}"]')

    def row_status(self, alert_id: str, status: str, within: float = 15.0) -> None:
        """Wait until the alert's row says `status` (data-status)."""

        def shows(browser: webdriver.Chrome) -> bool:
            try:
                return self.row(alert_id).get_attribute("data-status") == status
            except NoSuchElementException:
                return False

        self.until(shows, f"alert {alert_id} {status}", within)
