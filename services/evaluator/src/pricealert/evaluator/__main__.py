"""`python -m pricealert.evaluator`: run the evaluator until SIGTERM."""

import asyncio

from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.common.runner import run_until_signalled
from pricealert.evaluator.settings import get_settings
from pricealert.evaluator.worker import SERVICE, run


async def main() -> None:
    """Build settings and Redis, then evaluate until told to stop."""
    settings = get_settings()
    configure_logging(service=SERVICE, level=settings.log_level, json=settings.log_json)
    redis = connect(settings.redis_url)
    try:
        await run_until_signalled(lambda stop: run(redis, settings, stop))
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
