"""A random-walk market: trades at a steady total rate, prices drifting by small random steps."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pricealert.devstack.fakeexchange.trading import TradingMixin


class RandomWalk:
    """Plays `rate_per_s` trades a second in total, round-robin over `symbols`."""

    def __init__(
        self,
        exchange: TradingMixin,
        rate_per_s: float,
        symbols: list[str],
        *,
        volatility: float = 0.0005,
        seed: int | None = None,
    ) -> None:
        if rate_per_s <= 0 or not symbols:
            raise ValueError("a random walk needs a positive rate and at least one symbol")
        self.exchange = exchange
        self.rate_per_s = rate_per_s
        self.symbols = symbols
        self.volatility = volatility
        self.trades = 0
        self._random = random.Random(seed)
        self._prices: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start trading in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop trading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def step(self) -> None:
        """Play one trade on the next symbol, a small random step away from its last price."""
        symbol = self.symbols[self.trades % len(self.symbols)]
        price = self._prices.get(symbol)
        spec = self.exchange.symbols.get(symbol)
        if price is None:
            price = float(spec.price) if spec is not None else 100.0
        # Floats, then 8-decimal text: Decimal arithmetic here would cost more than the send itself.
        price *= 1 + self._random.gauss(0, self.volatility)
        if spec is not None:
            tick = float(spec.tick_size)
            price = min(max(round(price / tick) * tick, float(spec.min_price)), float(spec.max_price))
        self._prices[symbol] = price
        quantity = self._random.randint(1, 100_000) / 100_000
        self.exchange.trade(symbol, f"{price:.8f}", f"{quantity:.8f}", buyer_maker=self._random.random() < 0.5)
        self.trades += 1

    async def _run(self) -> None:
        started = time.monotonic()
        # Catch up on whatever is due at each wake-up, so high rates don't depend on sleep precision.
        pause = max(0.001, min(0.05, 1 / self.rate_per_s))
        while True:
            due = int((time.monotonic() - started) * self.rate_per_s) - self.trades
            for _ in range(min(due, 10_000)):
                self.step()
            await asyncio.sleep(pause)
