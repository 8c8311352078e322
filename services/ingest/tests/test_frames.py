"""Frame parsing, trade dedupe and backoff, without a network."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from pricealert.common.events import CatalogSymbol, Tick
from pricealert.ingest.backoff import AttemptLimiter, Backoff, retry_after_s
from pricealert.ingest.frames import (
    REJECT_REASONS,
    ControlReply,
    MalformedFrame,
    OtherEvent,
    PriceFilters,
    RecentTrades,
    RejectedTrade,
    ServerShutdown,
    Trade,
    parse_frame,
)
from pricealert.ingest.tickwriter import SEPARATOR, tick_row

TRADE = {
    "e": "trade",
    "E": 1777807004059,
    "s": "BTCUSDT",
    "t": 6268487624,
    "p": "78530.40000000",
    "q": "0.00039000",
    "T": 1777807004058,
    "m": True,
    "M": True,
}


def test_combined_trade_becomes_tick() -> None:
    trade = parse_frame(json.dumps({"stream": "btcusdt@trade", "data": TRADE}), 42)
    assert isinstance(trade, Trade)
    tick = trade.to_tick()
    assert tick == Tick(
        symbol="BTCUSDT",
        price=Decimal("78530.40000000"),
        trade_id=6268487624,
        exchange_time=1777807004058,
        received_at=42,
    )
    assert tick.to_fields()["price"] == "78530.40000000"


def test_published_row_matches_the_tick_schema() -> None:
    trade = parse_frame(json.dumps(TRADE), 42)
    assert isinstance(trade, Trade)
    assert Trade._fields == Tick.FIELDS
    assert dict(zip(Tick.FIELDS, tick_row(trade).split(SEPARATOR), strict=True)) == trade.to_tick().to_fields()


def test_raw_trade_and_agg_trade_become_ticks() -> None:
    assert isinstance(parse_frame(json.dumps(TRADE), 1), Trade)
    agg = {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 9, "p": "1.5", "q": "1", "f": 100, "l": 104, "T": 1}
    tick = parse_frame(json.dumps(agg), 1)
    assert isinstance(tick, Trade) and tick.trade_id == 104


def test_control_replies_and_shutdown_are_recognised() -> None:
    assert parse_frame('{"result":null,"id":3}', 1) == ControlReply(3, None, None)
    reply = parse_frame('{"error":{"code":2,"msg":"Invalid request"},"id":4}', 1)
    assert isinstance(reply, ControlReply) and reply.error == {"code": 2, "msg": "Invalid request"}
    assert parse_frame('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}', 1) == ServerShutdown()
    assert parse_frame('{"e":"serverShutdown","E":1}', 1) == ServerShutdown()
    assert parse_frame('{"e":"24hrMiniTicker","s":"BTCUSDT"}', 1) == OtherEvent("24hrMiniTicker")


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1,2]",
        b"\x00\xff",
        '{"stream":"x","data":[1]}',
        '{"foo":1}',
        json.dumps({**TRADE, "p": 78530.4}),
        json.dumps({**TRADE, "p": "NaN"}),
        json.dumps({**TRADE, "p": "-1"}),
        json.dumps({**TRADE, "p": "abc"}),
        json.dumps({**TRADE, "t": "x"}),
        json.dumps({**TRADE, "T": True}),
        json.dumps({**TRADE, "s": ""}),
        json.dumps({**TRADE, "p": "Infinity"}),
        json.dumps({**TRADE, "s": "A\x1fB"}),
    ],
)
def test_malformed_frames_raise(raw: str | bytes) -> None:
    with pytest.raises(MalformedFrame):
        parse_frame(raw, 1)


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        ("1e7000000", "not_decimal"),
        ("1E+2", "not_decimal"),
        ("+5", "not_decimal"),
        (" 5", "not_decimal"),
        ("5.", "not_decimal"),
        (".5", "not_decimal"),
        ("0x10", "not_decimal"),
        ("١٢٣", "not_decimal"),
        (78530.4, "not_decimal"),
        (None, "not_decimal"),
        ("9" * 41, "too_long"),
        ("9" * 21, "too_long"),
        ("1." + "0" * 18 + "1", "too_long"),
        ("0", "not_positive"),
        ("0.00000000", "not_positive"),
    ],
)
def test_prices_that_are_not_plain_positive_decimals_of_sane_size_are_rejected(price: object, reason: str) -> None:
    with pytest.raises(RejectedTrade) as caught:
        parse_frame(json.dumps({**TRADE, "p": price}), 1)
    assert caught.value.reason == reason and caught.value.reason in REJECT_REASONS
    assert len(str(caught.value)) < 200  # a megabyte price is not repeated in full anywhere


def test_prices_at_the_limits_are_accepted() -> None:
    for price in ("9" * 20 + "." + "9" * 18, "0.000000000000000001", "78530.40000000", "1"):
        trade = parse_frame(json.dumps({**TRADE, "p": price}), 1)
        assert isinstance(trade, Trade) and format(trade.price, "f") == price


def test_prices_outside_the_symbols_price_filter_are_rejected_once_the_catalog_is_known() -> None:
    filters = PriceFilters()
    assert isinstance(parse_frame(json.dumps({**TRADE, "p": "5000000"}), 1, filters), Trade)  # no catalog yet
    filters.update(
        [
            CatalogSymbol(
                symbol="BTCUSDT", min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01")
            ),
            CatalogSymbol(symbol="OPENUSDT", min_price=Decimal("0"), max_price=Decimal("0"), tick_size=Decimal("0")),
        ]
    )
    for price, reason in (("5000000", "above_max_price"), ("0.001", "below_min_price")):
        with pytest.raises(RejectedTrade) as caught:
            parse_frame(json.dumps({**TRADE, "p": price}), 1, filters)
        assert caught.value.reason == reason
    for price in ("1000000", "0.01", "70000.5"):  # the bounds themselves are inside
        assert isinstance(parse_frame(json.dumps({**TRADE, "p": price}), 1, filters), Trade)
    # A bound of 0 is no bound (Binance); a symbol the catalog does not list is not judged.
    assert isinstance(parse_frame(json.dumps({**TRADE, "s": "OPENUSDT", "p": "99999999"}), 1, filters), Trade)
    assert isinstance(parse_frame(json.dumps({**TRADE, "s": "NEWUSDT", "p": "99999999"}), 1, filters), Trade)


def test_recent_trades_window_is_bounded() -> None:
    recent = RecentTrades(3)
    assert recent.first_time("A", 1) and not recent.first_time("A", 1)
    assert recent.first_time("B", 1)
    for trade_id in (2, 3, 4):
        recent.first_time("A", trade_id)
    assert len(recent) == 3
    assert recent.first_time("A", 1)  # forgotten once out of the window


def test_backoff_starts_quick_grows_and_caps() -> None:
    backoff = Backoff(0.25, 60.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[0] <= 0.25
    assert all(d <= 60.0 for d in delays) and delays[-1] >= 30.0
    backoff.reset()
    assert backoff.next_delay() <= 0.25


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry_after_s("7") == 7.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


async def test_attempt_limiter_waits_when_the_budget_is_spent() -> None:
    limiter = AttemptLimiter(2, window_s=0.3)
    started = time.monotonic()
    for _ in range(3):
        await limiter.acquire()
    assert time.monotonic() - started >= 0.25
