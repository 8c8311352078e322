"""Symbols the fake exchange lists, with Binance-style PRICE_FILTERs and 8-decimal formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

EIGHT = Decimal("0.00000001")


def fmt8(value: Decimal | str | int | float) -> str:
    """A number as Binance writes it on the wire: a plain string with exactly 8 decimals."""
    if isinstance(value, str) and len(value) > 9 and value[-9] == "." and value.replace(".", "", 1).isdigit():
        return value  # already in wire form
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.quantize(EIGHT, rounding=ROUND_HALF_UP), "f")


@dataclass
class SymbolSpec:
    """One listed symbol: status, price filter and the current (last traded) price."""

    symbol: str
    base: str
    quote: str
    price: Decimal
    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    status: str = "TRADING"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def trading(self) -> bool:
        """Whether the symbol trades (only TRADING symbols get trades from the random walk)."""
        return self.status == "TRADING"

    def round_price(self, price: Decimal) -> Decimal:
        """`price` snapped to the tick size and clamped into the price filter."""
        snapped = (price / self.tick_size).to_integral_value(rounding=ROUND_HALF_UP) * self.tick_size
        return min(max(snapped, self.min_price), self.max_price)

    def exchange_info(self) -> dict[str, object]:
        """The symbol's entry in GET /api/v3/exchangeInfo."""
        return {
            "symbol": self.symbol,
            "status": self.status,
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(self.min_price),
                    "maxPrice": fmt8(self.max_price),
                    "tickSize": fmt8(self.tick_size),
                },
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            **self.extra,
        }


def _spec(
    symbol: str, base: str, quote: str, price: str, tick: str, max_price: str = "1000000", status: str = "TRADING"
) -> SymbolSpec:
    return SymbolSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        price=Decimal(price),
        tick_size=Decimal(tick),
        min_price=Decimal(tick),
        max_price=Decimal(max_price),
        status=status,
    )


def default_symbols() -> list[SymbolSpec]:
    """A handful of well-known symbols (fresh objects each call), plus one that does not trade."""
    return [
        _spec("BTCUSDT", "BTC", "USDT", "65000.00", "0.01"),
        _spec("ETHUSDT", "ETH", "USDT", "3200.00", "0.01"),
        _spec("BNBUSDT", "BNB", "USDT", "580.00", "0.01", "100000"),
        _spec("SOLUSDT", "SOL", "USDT", "150.00", "0.01", "100000"),
        _spec("XRPUSDT", "XRP", "USDT", "0.5200", "0.0001", "10000"),
        _spec("ADAUSDT", "ADA", "USDT", "0.4500", "0.0001", "10000"),
        _spec("DOGEUSDT", "DOGE", "USDT", "0.12000", "0.00001", "1000"),
        _spec("LTCUSDT", "LTC", "USDT", "85.00", "0.01", "100000"),
        _spec("ETHBTC", "ETH", "BTC", "0.05000", "0.00001", "922327"),
        _spec("BTCSTUSDT", "BTCST", "USDT", "1.000", "0.001", "10000", status="BREAK"),
    ]


def synthetic_symbols(count: int, *, quote: str = "USDT") -> list[SymbolSpec]:
    """`count` TRADING symbols named S0000USDT, S0001USDT, ... with spread-out prices (for benchmarks)."""
    specs = []
    for i in range(count):
        base = f"S{i:04d}"
        price = Decimal(1 + (i * 37) % 997).quantize(Decimal("0.01"))
        specs.append(_spec(f"{base}{quote}", base, quote, str(price), "0.01", "1000000"))
    return specs
