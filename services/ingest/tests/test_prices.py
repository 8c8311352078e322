"""Current prices (the ticker snapshot and the last trades) and the exchange link's state, from the fake exchange."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog
from ingest_testkit import Ingest, emit_alert, make_settings
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType
from pricealert.common.prices import EXCHANGE_LINK_TTL_S, ExchangeLink, LinkState, PriceQuote
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.prices import parse_ticker
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]


async def quotes(redis: Redis) -> dict[str, PriceQuote]:
    raw = await redis.hgetall(names.PRICES)
    return {k.decode(): q for k, v in raw.items() if (q := PriceQuote.unpack(v)) is not None}


async def link(redis: Redis) -> ExchangeLink:
    return ExchangeLink.from_fields(
        {k.decode(): v.decode() for k, v in (await redis.hgetall(names.EXCHANGE_LINK)).items()}
    )


async def test_the_ticker_snapshot_writes_every_trading_symbol(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    before_ms = int(time.time() * 1000)
    start_ingest(make_settings(exchange, redis_url, price_snapshot_s=0.5))
    written = await eventually(lambda: quotes(redis), what="price snapshot")
    trading = {s.symbol for s in exchange.symbols.values() if s.trading}
    assert set(written) == trading and "BTCSTUSDT" not in written  # a BREAK symbol has no current price
    btc = written["BTCUSDT"]
    assert btc.price == exchange.symbols["BTCUSDT"].price and btc.at_ms >= before_ms
    ticker = [path for _at, path in exchange.rest_faults.requests if path.startswith("/api/v3/ticker/price")]
    assert ticker[0] == "/api/v3/ticker/price?symbolStatus=TRADING"
    exchange.symbols["ETHUSDT"].price = Decimal("2345.6")
    await eventually(lambda: _price_is(redis, "ETHUSDT", Decimal("2345.6")), what="the next snapshot")
    assert (await redis.hget(names.PRICES, "ETHUSDT") or b"").startswith(b"2345.6 ")  # canonical text


async def _price_is(redis: Redis, symbol: str, price: Decimal) -> bool:
    quote = (await quotes(redis)).get(symbol)
    return quote is not None and quote.price == price


async def test_the_last_trade_of_a_subscribed_symbol_is_flushed_within_a_second(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest(make_settings(exchange, redis_url, price_snapshot_s=8.0))
    await eventually(lambda: ingest.service.prices.snapshots >= 1, what="first snapshot")
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await eventually(lambda: exchange.subscriptions() == {"btcusdt@trade"}, what="subscribed")
    await exchange.play_trade("BTCUSDT", "70000.5", trade_time=1_700_000_000_001)
    await exchange.play_trade("BTCUSDT", "70123.45", trade_time=1_700_000_000_123)
    flushed = await eventually(lambda: _quote_at(redis, "BTCUSDT", 1_700_000_000_123), within=3.0, what="flush")
    assert flushed == PriceQuote(Decimal("70123.45"), 1_700_000_000_123)
    assert ingest.service.prices.snapshots == 1  # the trade's price came from the flush, not a snapshot
    assert ingest.service.pipeline.last_trades == {}


async def _quote_at(redis: Redis, symbol: str, at_ms: int) -> PriceQuote | None:
    quote = (await quotes(redis)).get(symbol)
    return quote if quote is not None and quote.at_ms == at_ms else None


async def test_the_link_turns_unreachable_when_the_exchange_stops_and_back_once_it_answers(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    with structlog.testing.capture_logs() as logs:
        start_ingest(make_settings(exchange, redis_url, price_snapshot_s=0.5, catalog_enabled=False))
        up = await eventually(lambda: _state(redis, LinkState.CONNECTED), what="connected")
        assert up.url == exchange.rest_url and up.error == ""
        assert 0 < await redis.ttl(names.EXCHANGE_LINK) <= EXCHANGE_LINK_TTL_S
        await exchange.stop()
        down = await eventually(lambda: _state(redis, LinkState.UNREACHABLE), what="unreachable")
        assert down.error == "connection refused" and down.since is not None
        await eventually(lambda: _count(logs, "ingest.exchange.still_unreachable") >= 2, within=6.0, what="retries")
        assert (await link(redis)).since == down.since  # the state's start stays put while it lasts
        await exchange.start()
        await eventually(lambda: _state(redis, LinkState.CONNECTED), within=10.0, what="reachable again")
    errors = [e for e in logs if e["event"] == "ingest.exchange.unreachable"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    assert errors[0]["message"] == (
        f"Binance ({exchange.rest_url}) is unreachable from this machine: connection refused. Live prices and the "
        "symbol catalog need it; `make demo` runs offline on the fake exchange."
    )
    assert _count(logs, "ingest.exchange.reachable") == 1
    assert all(e["log_level"] == "debug" for e in logs if e["event"] == "ingest.exchange.still_unreachable")


async def test_an_unresolvable_exchange_is_named_and_the_other_failures_go_quiet(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    url = "http://no-such-host.invalid"
    settings = make_settings(exchange, redis_url, binance_rest_url=url, binance_ws_url="ws://no-such-host.invalid")
    with structlog.testing.capture_logs() as logs:
        ingest = start_ingest(settings)
        down = await eventually(lambda: _state(redis, LinkState.UNREACHABLE), within=15.0, what="unreachable")
        await eventually(lambda: bool(_after_error(logs, "ingest.catalog.failed")), within=15.0, what="retried")
    assert down.error == "cannot resolve no-such-host.invalid (no internet?)"
    assert down.public()["state"] == "unreachable" and down.public()["url"] == url
    assert _count(logs, "ingest.exchange.unreachable") == 1
    assert ingest.service.stats.exchange_unreachable_since is not None
    # Once the link is known down, the catalog's and the connections' retries log at debug.
    later = _after_error(logs, "ingest.catalog.failed") + _after_error(logs, "ingest.connect.failed")
    assert later and all(e["log_level"] == "debug" for e in later)


def _after_error(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    (error,) = [i for i, e in enumerate(logs) if e["event"] == "ingest.exchange.unreachable"] or [len(logs)]
    return [e for e in logs[error + 1 :] if e["event"] == event]


async def _state(redis: Redis, state: LinkState) -> ExchangeLink | None:
    current = await link(redis)
    return current if current.state is state else None


def _count(logs: list[dict[str, Any]], event: str) -> int:
    return sum(1 for e in logs if e["event"] == event)


def test_parse_ticker_keeps_sane_prices_of_known_symbols() -> None:
    body = [
        {"symbol": "AAAUSDT", "price": "1.50000000"},
        {"symbol": "BBBUSDT", "price": "0.00000000"},
        {"symbol": "CCCUSDT", "price": "NaN"},
        {"symbol": "DDDUSDT", "price": "oops"},
        {"symbol": 7, "price": "1"},
        "junk",
    ]
    assert parse_ticker(body) == {"AAAUSDT": Decimal("1.5")}
