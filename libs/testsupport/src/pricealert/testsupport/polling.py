"""The one polling helper of the tests, chaos runs and benchmarks: wait for a condition with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T] | T],
    *,
    within: float = 10.0,
    every: float = 0.02,
    what: str = "condition",
    alive: asyncio.Task[Any] | None = None,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `check` (sync or async) until it returns something truthy and return that; AssertionError after `within` s.

    `alive`: a task that must keep running meanwhile (its end fails at once, with its exception).
    `tolerate`: exceptions of `check` that count as "not yet" (a server still starting).
    """
    deadline = time.monotonic() + within
    while True:
        if alive is not None and alive.done():
            raise AssertionError(f"{what}: the task stopped: {alive.exception()!r}")
        value: T | None = None
        try:
            result = check()
            value = await result if isinstance(result, Awaitable) else result
        except tolerate:
            pass
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(every)


async def holds_within(check: Callable[[], Awaitable[Any]], within: float, every: float = 0.25) -> bool:
    """Whether `check` became truthy within `within` s (its errors count as "not yet"); for reports, not asserts."""
    try:
        await eventually(check, within=within, every=every, tolerate=(Exception,))
    except AssertionError:
        return False
    return True
