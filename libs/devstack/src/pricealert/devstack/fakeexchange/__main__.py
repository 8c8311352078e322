"""Run the fake exchange: `python -m pricealert.devstack.fakeexchange --port 9443 --random-walk`."""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog

from pricealert.common.logging import configure_logging
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.fakeexchange.symbols import default_symbols, synthetic_symbols

log = structlog.get_logger()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m pricealert.devstack.fakeexchange", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--random-walk", action="store_true", help="trade continuously on every TRADING symbol")
    parser.add_argument("--rate", type=float, default=20.0, help="random-walk trades per second, in total")
    parser.add_argument("--synthetic", type=int, default=0, help="also list N synthetic symbols S0000USDT...")
    parser.add_argument("--max-lifetime-s", type=float, default=24 * 3600.0, help="connection lifetime")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    symbols = default_symbols() + synthetic_symbols(args.synthetic)
    exchange = FakeExchange(symbols, host=args.host, port=args.port, max_lifetime_s=args.max_lifetime_s)
    await exchange.start()
    if args.random_walk:
        exchange.start_random_walk(args.rate, seed=args.seed)
    log.info(
        "fakeexchange.ready",
        ws_url=exchange.ws_url,
        rest_url=exchange.rest_url,
        random_walk=args.random_walk,
        rate=args.rate,
    )
    try:
        await stop.wait()
    finally:
        await exchange.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    configure_logging(service="fakeexchange", level=args.log_level)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
