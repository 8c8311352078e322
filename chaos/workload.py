"""The workload and its oracle: users, alerts that must (or must not) fire, and the scripted market."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from pricealert.common.tasks import cancel_and_wait
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.devstack.postfix import PostfixServer
from pricealert.devstack.smtp import MailboxServer

SYMBOLS = {
    "BTCUSDT": Decimal("65000"),
    "ETHUSDT": Decimal("3200"),
    "BNBUSDT": Decimal("580"),
    "SOLUSDT": Decimal("150"),
}
STEP = Decimal("0.001")  # alert targets lie 0.1 % apart; the market moves half a step per level
LEVELS = 44  # the ramp's last level (P * 1.022) is past every "up" target; -LEVELS is past every "down" one
CROSS_KS = (2, 6, 10, 14, 18)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PlannedAlert:
    """One alert of the workload; `name` is unique and comes back in its trigger."""

    name: str
    user: int
    symbol: str
    condition: str
    target: Decimal | None  # None: a range alert (low and high)
    phase: str  # "up": fires on the way up, "down": on the way down, "never": must not fire; "recur": every_time
    frequency: str = "once"
    cooldown_s: int | None = None
    low: Decimal | None = None
    high: Decimal | None = None

    @property
    def must_fire(self) -> bool:
        """Whether the scripted market reaches this alert's target."""
        return self.phase != "never"

    @property
    def recurring(self) -> bool:
        """Whether this is an every_time alert (chaos/recurring.py judges those)."""
        return self.frequency != "once"

    def body(self) -> dict[str, str | int]:
        """The POST /alerts body."""
        body: dict[str, str | int] = {"symbol": self.symbol, "condition": self.condition, "name": self.name}
        for key, value in (("target_price", self.target), ("low", self.low), ("high", self.high)):
            if value is not None:
                body[key] = str(value)
        if self.recurring:
            body["frequency"] = self.frequency
            if self.cooldown_s is not None:
                body["cooldown_s"] = self.cooldown_s
        return body


def plan_alerts(users: int) -> list[PlannedAlert]:
    """60 alerts per symbol: 50 the market will reach (above, below, cross both ways) and 10 it never will."""
    rows: list[tuple[str, str, str, Decimal, str]] = []
    for symbol, base in SYMBOLS.items():
        for k in range(1, 21):
            rows.append((f"{symbol}-up-above-{k}", symbol, "above", base * (1 + k * STEP), "up"))
            rows.append((f"{symbol}-down-below-{k}", symbol, "below", base * (1 - k * STEP), "down"))
        for k in CROSS_KS:
            rows.append((f"{symbol}-up-cross-{k}", symbol, "cross", base * (1 + (k + Decimal("0.5")) * STEP), "up"))
            rows.append((f"{symbol}-down-cross-{k}", symbol, "cross", base * (1 - (k + Decimal("0.5")) * STEP), "down"))
        for k in range(5):
            rows.append(
                (
                    f"{symbol}-never-up-{k}",
                    symbol,
                    "above" if k % 2 else "cross",
                    base * (Decimal("1.2") + k * CENT),
                    "never",
                )
            )
            rows.append(
                (
                    f"{symbol}-never-down-{k}",
                    symbol,
                    "below" if k % 2 else "cross",
                    base * (Decimal("0.8") - k * CENT),
                    "never",
                )
            )
    random.Random(20261125).shuffle(rows)  # every symbol and kind in any slice of the plan
    return [
        PlannedAlert(name, i % users, symbol, condition, target.quantize(CENT), phase)
        for i, (name, symbol, condition, target, phase) in enumerate(rows)
    ]


def fires_at(alert: PlannedAlert, price: Decimal) -> bool:
    """Whether a trade at `price` may fire the once alert `alert` (cross: its side is fixed by the base price)."""
    if alert.target is None:
        return False
    if alert.condition == "above" or (alert.condition == "cross" and alert.target > SYMBOLS[alert.symbol]):
        return price >= alert.target
    return price <= alert.target


@dataclass
class Created:
    """What the API answered to one alert's creation."""

    alert: PlannedAlert
    status: int | None  # None: no answer at all (transport error)
    alert_id: str | None = None
    error: str = ""
    answered_ms: float | None = None  # epoch ms of the answer
    retry_after: str | None = None  # the Retry-After header of a refusal

    @property
    def acknowledged(self) -> bool:
        """Answered 201: the alert must reach the evaluator."""
        return self.status == 201


@dataclass
class User:
    """A registered, logged-in user."""

    email: str
    headers: dict[str, str]
    channels: list[str] = field(default_factory=list)  # the channels every alert of theirs notifies (none: email)
    hook: str = ""  # the receiver path of their webhook channel (chaos/webhooks.py), if any


async def verification_token(mailbox: MailboxServer | PostfixServer, email: str, within: float = 30.0) -> str:
    """The token of the verification mail to `email`, once the notifier has sent it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for mail in list(mailbox.mails):
            token = mail.message["X-Pricealert-Verify-Token"]
            if mail.recipients == [email] and token:
                return str(token)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no verification mail to {email} within {within} s")


async def register_users(client: httpx.AsyncClient, count: int, mailbox: MailboxServer | PostfixServer) -> list[User]:
    """Register `count` users, verify their addresses with the token from the mailbox, and log them in."""

    async def one(n: int) -> User:
        email, password = f"chaos{n}@example.com", f"chaos-password-{n}"
        registered = await client.post("/auth/register", json={"email": email, "password": password})
        if registered.status_code != 202:
            raise RuntimeError(f"register {email}: {registered.status_code} {registered.text}")
        token = await verification_token(mailbox, email)
        verified = await client.post("/auth/verify", json={"token": token})
        if verified.status_code != 200:
            raise RuntimeError(f"verify {email}: {verified.status_code} {verified.text}")
        login = await client.post("/auth/login", json={"email": email, "password": password})
        if login.status_code != 200:
            raise RuntimeError(f"login {email}: {login.status_code} {login.text}")
        return User(email, {"Authorization": f"Bearer {login.json()['access_token']}"})

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def create_alert(
    client: httpx.AsyncClient, user: User, alert: PlannedAlert, *, retry_catalog_s: float = 0.0
) -> Created:
    """POST /alerts once (retrying only 'catalog not published yet' for up to `retry_catalog_s`)."""
    deadline = time.monotonic() + retry_catalog_s
    while True:
        try:
            body: dict[str, object] = {**alert.body(), **({"channels": user.channels} if user.channels else {})}
            response = await client.post("/alerts", json=body, headers=user.headers)
        except httpx.HTTPError as exc:
            return Created(alert, None, error=f"{type(exc).__name__}: {exc}")
        if response.status_code == 201:
            return Created(alert, 201, alert_id=str(response.json()["id"]), answered_ms=time.time() * 1000)
        if response.status_code == 503 and "catalog" in response.text and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            continue
        return Created(
            alert, response.status_code, error=response.text[:300], retry_after=response.headers.get("retry-after")
        )


async def create_alerts(
    client: httpx.AsyncClient,
    users: list[User],
    alerts: list[PlannedAlert],
    *,
    concurrency: int = 8,
    per_second: float | None = None,
    retry_catalog_s: float = 0.0,
) -> list[Created]:
    """Create `alerts` with `concurrency` requests in flight, at most `per_second` started per second."""
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def one(i: int, alert: PlannedAlert) -> Created:
        if per_second:
            await asyncio.sleep(max(0.0, started + i / per_second - time.monotonic()))
        async with gate:
            return await create_alert(client, users[alert.user], alert, retry_catalog_s=retry_catalog_s)

    return list(await asyncio.gather(*(one(i, a) for i, a in enumerate(alerts))))


class Market:
    """The scripted market: every symbol at the same relative level, with steady trades at that level."""

    def __init__(self, exchange: FakeExchange, trades_per_s: float = 200.0) -> None:
        self.exchange = exchange
        self.level = 0
        self.trades_per_s = trades_per_s
        self.played = 0
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def price(symbol: str, level: int) -> Decimal:
        """The price of `symbol` at `level` (half a target step per level)."""
        return (SYMBOLS[symbol] * (1 + level * STEP / 2)).quantize(CENT)

    def set_level(self, level: int) -> None:
        """Move the market: one trade per symbol at the new level, at once."""
        self.level = level
        self._trade_all()

    def _trade_all(self) -> None:
        for symbol in SYMBOLS:
            self.exchange.trade(symbol, self.price(symbol, self.level))
            self.played += 1

    async def ramp(self, levels: range, pause_s: float) -> None:
        """Walk through `levels`, `pause_s` apart."""
        for level in levels:
            self.set_level(level)
            await asyncio.sleep(pause_s)

    def start(self) -> None:
        """Keep trading at the current level in the background (the load, and the market holding there)."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the background trades."""
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        pause = len(SYMBOLS) / self.trades_per_s
        while True:
            self._trade_all()
            await asyncio.sleep(pause)
