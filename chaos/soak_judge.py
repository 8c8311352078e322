"""The soak's samples (each process's RSS and open files, Redis memory, every stream's length and pending counts) and
the growth judge: a series whose last third still climbs above the rest fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.stack import ChaosStack
from pricealert.common import names
from pricealert.common.publisher import maxlen_for

KINDS = ("rss", "fds", "redis", "streams", "pending")
UNITS = {"rss": "MiB", "fds": "open fds", "redis": "MiB", "streams": "entries", "pending": "entries"}
# Absolute and relative (of the middle third's median) slack per kind: allocator noise, a connection more or less,
# a few entries in flight. A stream may grow up to its cap (plus the slack of approximate trimming, which drops
# whole nodes of stream-node-max-entries, 100 by default): trimming bounds it there.
TOLERANCE: dict[str, tuple[float, float]] = {
    "rss": (3.0, 0.02),
    "fds": (4.0, 0.0),
    "redis": (2.0, 0.05),
    "streams": (10.0, 0.0),
    "pending": (50.0, 0.0),
}
NODE_SLACK = 100  # how far past its cap an approximately trimmed stream may get
MIN_SAMPLES = 6


@dataclass
class Sample:
    """One sampling of the stack, `at_s` seconds into the soak."""

    at_s: float
    series: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> series name -> value
    info: dict[str, float] = field(default_factory=dict)  # not judged: Redis keys and RSS


def _descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):  # it ended meanwhile
                todo.extend(int(child) for child in task.read_text().split())
    return out


def process_usage(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of a process and its children, from /proc."""
    rss_kb, fds = 0, 0
    for one in _descendants(pid):
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{one}/fd"))
        except OSError:  # it ended between the listing and the read
            pass
    return rss_kb / 1024, fds


def short(key: str) -> str:
    """A stream's name without the common prefix."""
    return key.removeprefix(f"{names.PREFIX}:")


async def take_sample(stack: ChaosStack, at_s: float) -> Sample:
    """Read every series once."""
    sample = Sample(round(at_s, 1), {kind: {} for kind in KINDS})
    for name, process in stack.processes.items():
        if process.process is not None and process.process.poll() is None:
            rss, fds = process_usage(process.process.pid)
            sample.series["rss"][name], sample.series["fds"][name] = round(rss, 2), fds
    memory: dict[str, Any] = await stack.redis.info("memory")
    sample.series["redis"]["used_memory"] = round(int(memory["used_memory"]) / 2**20, 3)
    sample.info["redis_rss_mib"] = round(int(memory["used_memory_rss"]) / 2**20, 3)
    sample.info["redis_keys"] = int(await stack.redis.dbsize())
    async for raw in stack.redis.scan_iter(_type="stream", count=1000):
        key = raw.decode()
        sample.series["streams"][short(key)] = int(await stack.redis.xlen(key))
        for group in await stack.redis.xinfo_groups(key):
            # Summed over the shards: one series per stream kind and group.
            series = f"{short(names.stream_kind(key))} / {group['name'].decode()}"
            sample.series["pending"][series] = sample.series["pending"].get(series, 0) + int(group["pending"])
    for shard in range(stack.shards):
        queued = int(await stack.redis.zcard(names.notifier_retry_queue_key(shard)))
        sample.series["pending"]["notifier retry queue"] = (
            sample.series["pending"].get("notifier retry queue", 0) + queued
        )
    return sample


def collect(samples: list[Sample]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """kind -> series name -> [(at_s, value)] over the samples (a series starts when it first appears)."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {kind: {} for kind in KINDS}
    for sample in samples:
        for kind, values in sample.series.items():
            for name, value in values.items():
                out[kind].setdefault(name, []).append((sample.at_s, value))
    return out


@dataclass(frozen=True)
class Verdict:
    """The judge's word on one series."""

    levelled: bool
    growth: float  # median of the last third minus median of the middle third
    new_high: float  # the last third's max minus the max before it
    tolerance: float
    note: str


def judge_series(values: list[float], *, abs_tol: float, rel_tol: float, bound: float | None = None) -> Verdict:
    """Whether a series levels off: it fails when the last third's median rose above the middle third's and its
    maximum above everything before, both by more than the tolerance. A series still below `bound` (a stream that
    has not reached its cap yet: trimming bounds it) passes, noted."""
    n = len(values)
    if n < MIN_SAMPLES:
        return Verdict(False, 0.0, 0.0, 0.0, f"{n} samples: too few to judge (at least {MIN_SAMPLES})")
    third = n // 3
    early, middle, late = values[: n - third], values[third : n - third], values[n - third :]
    growth = statistics.median(late) - statistics.median(middle)
    new_high = max(late) - max(early)
    tolerance = abs_tol + rel_tol * abs(statistics.median(middle))
    rounded = (round(growth, 3), round(new_high, 3), round(tolerance, 3))
    if growth <= tolerance or new_high <= tolerance:
        return Verdict(True, *rounded, "levels off")
    if bound is not None and max(values) <= bound:
        return Verdict(True, *rounded, f"bounded: at most its cap and the trimming's slack ({bound:g})")
    return Verdict(False, *rounded, "keeps growing")


def stream_bound(series_name: str, divisor: int) -> float:
    """How long the stream `series_name` (a short name) may get: its divided cap and the trimming's slack."""
    return maxlen_for(f"{names.PREFIX}:{series_name}", divisor) + NODE_SLACK


def judge_all(samples: list[Sample], divisor: int) -> dict[str, dict[str, Verdict]]:
    """kind -> series name -> verdict, for every series of the samples."""
    verdicts: dict[str, dict[str, Verdict]] = {}
    for kind, series in collect(samples).items():
        abs_tol, rel_tol = TOLERANCE[kind]
        verdicts[kind] = {
            name: judge_series(
                [v for _, v in points],
                abs_tol=abs_tol,
                rel_tol=rel_tol,
                bound=stream_bound(name, divisor) if kind == "streams" else None,
            )
            for name, points in series.items()
        }
    return verdicts


class Sampler:
    """Samples the stack every `every_s` seconds in the background."""

    def __init__(self, stack: ChaosStack, every_s: float) -> None:
        self.stack = stack
        self.every_s = every_s
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.began = time.monotonic()

    async def sample_now(self) -> None:
        """One sample (a failed read is noted, not fatal)."""
        try:
            self.samples.append(await take_sample(self.stack, time.monotonic() - self.began))
        except Exception as exc:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}"[:300])

    async def run(self, stop: asyncio.Event) -> None:
        """Sample at once, then every `every_s` until `stop` is set."""
        taken = 0
        while not stop.is_set():
            await self.sample_now()
            taken += 1
            wake = self.began + taken * self.every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wake - time.monotonic()))
