"""A whole stack behind the dev gateway and a headless Chromium to drive the page with."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx
import pytest
import redis
from e2e_stack import Stack, stack_environment
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer

T = TypeVar("T")
DESKTOP = (1280, 900)
PHONE = (375, 812)
# Every run takes the screenshots; only `make screenshots` (SCREENSHOTS_DIR=docs/screenshots) replaces the README's,
# so that `make test` leaves the working tree as it found it.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "pricealert-screenshots")
# A console entry from these sources fails the test: a script error or a Content-Security-Policy refusal.
# Network entries ("Failed to load resource: 401") are the API's answers the page handles (a wrong password).
FATAL_SOURCES = {"javascript", "security", "console-api"}


def browser_binaries() -> tuple[str, str]:
    """Chromium and chromedriver: a test without them skips loudly, and fails under CI (which installs them)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI is set and {message}", pytrace=False)
    pytest.skip(message)


class ExchangeThread:
    """The fake exchange on its own event loop in a thread, so synchronous browser tests can play trades."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-exchange", daemon=True)
        self.fake: FakeExchange | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coroutine` on the exchange's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> FakeExchange:
        """Start the loop and the exchange on a free port."""
        self.thread.start()

        async def started() -> FakeExchange:
            return await FakeExchange().start()

        self.fake = self.run(started())
        return self.fake

    def stop(self) -> None:
        """Stop the exchange, then its loop."""
        if self.fake is not None:
            self.run(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class BrowserStack:
    """The running services, the fake exchange and the mail sink; `url` is the gateway the browser opens."""

    stack: Stack
    exchange: ExchangeThread
    mailbox: MailboxServer

    @property
    def url(self) -> str:
        """The gateway's base URL (the services' APP_URL)."""
        return self.stack.url

    def current_price(self, symbol: str) -> Decimal:
        """The symbol's price on the fake exchange, from its REST ticker as ingest reads it."""
        assert self.exchange.fake is not None
        answer = httpx.get(f"{self.exchange.fake.rest_url}/api/v3/ticker/price", params={"symbol": symbol})
        answer.raise_for_status()
        return Decimal(answer.json()["price"])

    def trade(self, symbol: str, price: Decimal | str) -> None:
        """Play one trade on the fake exchange, once ingest listens to the symbol's trades."""
        fake = self.exchange.fake
        assert fake is not None
        stream = f"{symbol.lower()}@trade"
        self.exchange.run(fake.wait_for(lambda: stream in fake.subscriptions(), within=20, what=f"ingest on {stream}"))
        self.exchange.run(fake.play_trade(symbol, str(price)))

    def verification_link(self, email: str, within: float = 20.0) -> str:
        """The link in the newest verification mail to `email`, once it arrived."""

        def newest() -> str | None:
            mails = [
                m
                for m in list(self.mailbox.mails)
                if m.recipients == [email] and m.message["X-Pricealert-Verify-Token"]
            ]
            lines = [line.strip() for m in mails[-1:] for line in m.text().splitlines() if "verify?token=" in line]
            return lines[0] if lines else None

        return wait_until(newest, within, f"the verification mail to {email}")

    def account(self, email: str, password: str) -> None:
        """A verified account made through the API (the page's own sign-up is test_page_alerts' business)."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            registered = client.post("/auth/register", json={"email": email, "password": password})
            assert registered.status_code == 202, registered.text
            token = link_token(self.verification_link(email))
            verified = client.post("/auth/verify", json={"token": token})
            assert verified.status_code == 200, verified.text

    def api_alert(self, credentials: tuple[str, str], body: dict[str, Any]) -> str:
        """Create an alert through the API as `credentials`' user (waiting out the catalog's first load); its id."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            login = client.post("/auth/login", json=dict(zip(("email", "password"), credentials, strict=True)))
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

            def created() -> str | None:
                answer = client.post("/alerts", json=body, headers=headers)
                assert answer.status_code in (201, 503), answer.text
                return str(answer.json()["id"]) if answer.status_code == 201 else None

            return wait_until(created, 30, "the symbol catalog", every=0.5)

    def api_error(self, path: str, body: dict[str, Any], credentials: tuple[str, str] | None = None) -> dict[str, Any]:
        """The API's error answer to POST `path` with `body` (as `credentials`' user): what the page must show."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            headers = {}
            if credentials is not None:
                login = client.post("/auth/login", json=dict(zip(("email", "password"), credentials, strict=True)))
                headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            answer = client.post(path, json=body, headers=headers)
        assert 400 <= answer.status_code < 500, answer.text
        return dict(answer.json()["error"])

    def page_verification_link(self, email: str) -> str:
        """The verification mail's link: the page's own `/#/verify?token=` address at the gateway the browser uses."""
        link = self.verification_link(email)
        assert link.startswith(f"{self.url}/#/verify?token="), link
        return link


def link_token(link: str) -> str:
    """The token of a verification link (`/#/verify?token=`), which the page posts to the API."""
    found = re.search(r"[?&]token=([^&#\s]+)", link)
    assert found is not None, link
    return unquote(found.group(1))


def wait_until(check: Callable[[], T | None], within: float, what: str, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; AssertionError after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        time.sleep(every)


@contextmanager
def running_stack(directory: Path, redis_url: str) -> Iterator[BrowserStack]:
    """Every service as a process behind the dev gateway, on SQLite, the fake exchange and a mail sink."""
    redis.Redis.from_url(redis_url).flushall()
    with ExitStack() as cleanup:
        mailbox = MailboxServer().start()
        cleanup.callback(mailbox.stop)
        exchange = ExchangeThread()
        fake = exchange.start()
        cleanup.callback(exchange.stop)
        env = stack_environment(
            directory,
            redis_url=redis_url,
            database_url="sqlite",
            smtp_port=mailbox.port,
            exchange_ws_url=fake.ws_url,
            exchange_rest_url=fake.rest_url,
        )
        # Every test signs up from 127.0.0.1: the per-address sign-up limit is not what these tests are about.
        stack = Stack(directory, env | {"AUTH_REGISTER_MAX_PER_ADDRESS": "1000"})
        cleanup.callback(stack.stop)
        stack.start()
        asyncio.run(stack.wait_ready(within=120))  # a loaded machine starts seven Python processes slowly
        yield BrowserStack(stack, exchange, mailbox)


def chromium(size: tuple[int, int] = DESKTOP, *, mobile: bool = False) -> webdriver.Chrome:
    """A headless Chromium whose viewport is exactly `size` CSS pixels, its console kept for `console_errors`."""
    binary, driver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(driver))
    # The window's frame takes some of --window-size: pin the viewport itself (screenshots come out at `size`).
    metrics = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    browser.set_page_load_timeout(20)
    return browser


def browser_log(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console entries since the last read (reading drains them)."""
    entries: list[dict[str, Any]] = browser.get_log("browser")  # type: ignore[no-untyped-call]  # selenium: untyped
    return entries


def console_errors(browser: webdriver.Chrome) -> list[str]:
    """The console's script errors and CSP refusals since the last call (reading the log drains it)."""
    entries = browser_log(browser)
    return [
        f"{e['source']}: {e['message']}"
        for e in entries
        if e["level"] == "SEVERE" and (e.get("source") in FATAL_SOURCES or "Content Security Policy" in e["message"])
    ]


def save_artifacts(browser: webdriver.Chrome, folder: Path, name: str, stack: BrowserStack | None) -> Path:
    """A failing test's screenshot, page source, console and service logs, under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    browser.get_screenshot_as_file(str(folder / f"{name}.png"))
    (folder / f"{name}.html").write_text(browser.page_source)
    console = "\n".join(f"{e['level']} {e.get('source')}: {e['message']}" for e in browser_log(browser))
    (folder / f"{name}.console.txt").write_text(f"url: {browser.current_url}\n{console}\n")
    if stack is not None:
        (folder / f"{name}.services.log").write_text(stack.stack.logs())
    return folder


def screenshot(browser: webdriver.Chrome, name: str) -> Path:
    """Save the viewport as <SCREENSHOTS>/<name>.png (docs/screenshots under `make screenshots`: the README's)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(browser.get_screenshot_as_png())
    return path
