"""Fixtures of the browser tests: one whole stack and one headless Chromium per module, artifacts on failure."""

from __future__ import annotations

import re
import signal
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from browser_pages import Page
from browser_testkit import BrowserStack, browser_binaries, chromium, console_errors, running_stack, save_artifacts
from selenium import webdriver


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so a fixture's teardown knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(request.node, f"report_{when}", None) and getattr(request.node, f"report_{when}").failed
        for when in ("setup", "call")
    )


@pytest.fixture(scope="module")
def browser_stack(tmp_path_factory: pytest.TempPathFactory, redis_server_url: str) -> Iterator[BrowserStack]:
    """Every service as its own process behind the dev gateway, for the whole module (users keep apart by email)."""
    browser_binaries()  # skip (or fail under CI) before starting anything
    with running_stack(tmp_path_factory.mktemp("browser-stack"), redis_server_url) as running:
        yield running
        codes = running.stack.stop()
    # uvicorn re-raises SIGTERM after its clean shutdown, so the APIs end "killed by SIGTERM".
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), f"unclean exits: {codes}"


@pytest.fixture(scope="module")
def desktop(browser_stack: BrowserStack) -> Iterator[webdriver.Chrome]:
    """One headless Chromium at 1280x900 for the module's tests (each test starts from a cleared session).

    It needs the stack so that it closes first: its open event stream would hold the gateway's shutdown.
    """
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


def _watched(
    browser: webdriver.Chrome, stack: BrowserStack, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    """A page on `browser` from a clean start; the console must stay free of errors; artifacts when the test fails."""
    page = Page(browser, stack)
    page.reset()
    console_errors(browser)  # what an earlier test left in the log is that test's business
    yield page
    if _failed(request):
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        folder = save_artifacts(browser, tmp_path / "browser", name, stack)
        print(f"browser artifacts: {folder}")  # noqa: T201 - pytest shows captured output only when the test fails
        return
    errors = console_errors(browser)
    assert not errors, "the page logged errors:\n" + "\n".join(errors)


@pytest.fixture
def page(
    desktop: webdriver.Chrome, browser_stack: BrowserStack, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    """The page in the module's desktop browser, signed out."""
    yield from _watched(desktop, browser_stack, request, tmp_path)


@pytest.fixture
def phone_page(browser_stack: BrowserStack, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """The page in a browser of its own, as wide as a phone (375x812)."""
    browser = chromium((375, 812), mobile=True)
    try:
        yield from _watched(browser, browser_stack, request, tmp_path)
    finally:
        browser.quit()
