"""A local Binance stand-in: WebSocket market streams and REST market data on one port."""

from pricealert.devstack.fakeexchange.market import RandomWalk
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.fakeexchange.session import ClientSession, ConnectionAttempt, Received
from pricealert.devstack.fakeexchange.symbols import SymbolSpec, default_symbols, fmt8, synthetic_symbols

__all__ = [
    "ClientSession",
    "ConnectionAttempt",
    "FakeExchange",
    "RandomWalk",
    "Received",
    "SymbolSpec",
    "default_symbols",
    "fmt8",
    "synthetic_symbols",
]
