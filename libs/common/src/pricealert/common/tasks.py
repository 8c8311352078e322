"""Stopping tasks for sure: a cancellation can be lost under Python 3.11, so it is repeated until the task ends."""

from __future__ import annotations

import asyncio
from typing import Any

# Python 3.11's asyncio.wait_for returns the inner result when the inner future finished in the same loop turn as
# the outer task's cancellation, and the cancellation is gone (fixed in 3.12). Our Redis clients raise it again
# themselves (redisconn's connections); websockets and aiosmtplib use wait_for too, so a task cancelled while it
# loops on either may carry on, and `await task` never returns.
RECANCEL_EVERY_S = 0.05


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again any that swallowed it."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY_S)
    for task in tasks:  # retrieve each outcome: no "exception was never retrieved" for a task that failed meanwhile
        if not task.cancelled():
            task.exception()
