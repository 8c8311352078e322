"""Market data of the fake exchange: single trades in Binance's trade and aggTrade frames, and random walks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pricealert.devstack.fakeexchange.market import RandomWalk
from pricealert.devstack.fakeexchange.session import ClientSession
from pricealert.devstack.fakeexchange.symbols import SymbolSpec, fmt8


class TradingMixin:
    """Trades played to the subscribers of a symbol's streams."""

    sessions: list[ClientSession]
    symbols: dict[str, SymbolSpec]
    _trade_ids: dict[str, int]
    _agg_ids: dict[str, int]
    _trade_id_start: int
    _walks: list[RandomWalk]

    def trade(
        self,
        symbol: str,
        price: Decimal | str | float,
        quantity: Decimal | str = "0.001",
        trade_time: int | None = None,
        *,
        buyer_maker: bool = False,
        trade_id: int | None = None,
    ) -> int:
        """Emit one trade to `<sym>@trade` and `<sym>@aggTrade` subscribers now; returns its trade id.

        Passing an earlier `trade_id` replays that trade (a duplicate, as overlapping connections see).
        """
        now = int(time.time() * 1000)
        if trade_id is None:
            trade_id = self._trade_ids.get(symbol, self._trade_id_start) + 1
            self._trade_ids[symbol] = trade_id
        p, q = fmt8(price), fmt8(quantity)
        spec = self.symbols.get(symbol)
        if spec is not None:
            spec.price = Decimal(p)
        t = trade_time if trade_time is not None else now
        m = "true" if buyer_maker else "false"
        lower = symbol.lower()
        name = json.dumps(symbol)
        # Formatted by hand: json.dumps of the dict costs more than everything else here together.
        self.emit(
            f"{lower}@trade",
            f'{{"e":"trade","E":{now},"s":{name},"t":{trade_id},"p":"{p}","q":"{q}","T":{t},"m":{m},"M":true}}',
        )
        agg_stream = f"{lower}@aggTrade"
        for session in self.sessions:
            if session.open and agg_stream in session.streams:
                agg_id = self._agg_ids.get(symbol, self._trade_id_start // 2) + 1
                self._agg_ids[symbol] = agg_id
                self.emit(
                    agg_stream,
                    f'{{"e":"aggTrade","E":{now},"s":{name},"a":{agg_id},"p":"{p}","q":"{q}",'
                    f'"f":{trade_id},"l":{trade_id},"T":{t},"m":{m},"M":true}}',
                )
                break
        return trade_id

    async def play_trade(
        self,
        symbol: str,
        price: Decimal | str | float,
        quantity: Decimal | str = "0.001",
        trade_time: int | None = None,
        *,
        buyer_maker: bool = False,
        trade_id: int | None = None,
    ) -> int:
        """Emit one trade (see `trade`) and yield to the loop so it goes out; returns its trade id."""
        played = self.trade(symbol, price, quantity, trade_time, buyer_maker=buyer_maker, trade_id=trade_id)
        await asyncio.sleep(0)
        return played

    def emit(self, stream: str, payload: dict[str, Any] | list[Any] | str) -> int:
        """Send `payload` (or its JSON text) on `stream` to its subscribers (wrapped for combined ones)."""
        raw: str | None = payload if isinstance(payload, str) else None
        wrapped: str | None = None
        count = 0
        for session in self.sessions:
            if not session.open or stream not in session.streams:
                continue
            if raw is None:
                raw = json.dumps(payload, separators=(",", ":"))
            if session.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{stream}","data":{raw}}}'
                session.enqueue(wrapped)
            else:
                session.enqueue(raw)
            count += 1
        return count

    def start_random_walk(
        self,
        rate_per_s: float,
        symbols: Iterable[str] | None = None,
        *,
        volatility: float = 0.0005,
        seed: int | None = None,
    ) -> RandomWalk:
        """Trade `rate_per_s` times a second in total over `symbols` (default: every TRADING symbol)."""
        chosen = list(symbols) if symbols is not None else [s.symbol for s in self.symbols.values() if s.trading]
        walk = RandomWalk(self, rate_per_s, chosen, volatility=volatility, seed=seed)
        walk.start()
        self._walks.append(walk)
        return walk

    async def stop_random_walks(self) -> None:
        """Stop every random walk."""
        for walk in self._walks:
            await walk.stop()
        self._walks.clear()
