"""`python -m pricealert.auth` runs the API; `python -m pricealert.auth generate-key` adds a signing key."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from pricealert.auth.app import create_app
from pricealert.auth.keys import generate_key
from pricealert.auth.settings import get_settings
from pricealert.common.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(prog="python -m pricealert.auth", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "generate-key"],
        default="serve",
        help="serve the API (default) or add a new signing key to AUTH_KEY_DIR (key rotation)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(service="auth", level=settings.log_level, json=settings.log_json)
    if args.command == "generate-key":
        pair = generate_key(settings.key_dir)
        sys.stdout.write(f"{pair.kid}\n")
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
