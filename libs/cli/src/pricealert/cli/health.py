"""Worker liveness from the heartbeat keys in Redis, and API readiness over HTTP (for compose health checks)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from pricealert.cli.streams import text
from pricealert.common import names
from pricealert.common.events import now_ms
from pricealert.common.redisconn import RedisClient

HEALTH_PREFIX = names.health_key("", "")[:-1]  # "pricealert:health:"


@dataclass
class Heartbeat:
    """One live worker replica: when it last beat and how long its key still lives."""

    service: str
    consumer: str
    last_beat_ms: int | None
    age_ms: int | None
    ttl_s: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def default_consumer() -> str:
    """The consumer name a replica uses when CONSUMER_NAME is unset: its host name (unique per container)."""
    return socket.gethostname()


async def heartbeat(redis: RedisClient, service: str, consumer: str) -> Heartbeat | None:
    """The heartbeat of one replica, or None when its key has expired (the replica is stuck or gone)."""
    key = names.health_key(service, consumer)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        value, ttl = await pipe.execute()
    if value is None:
        return None
    return _beat(service, consumer, value, int(ttl))


async def live_workers(redis: RedisClient) -> list[Heartbeat]:
    """Every replica whose heartbeat key exists, by service and consumer."""
    beats: list[Heartbeat] = []
    async for raw_key in redis.scan_iter(match=f"{HEALTH_PREFIX}*", count=1000):
        service, _, consumer = text(raw_key)[len(HEALTH_PREFIX) :].partition(":")
        beat = await heartbeat(redis, service, consumer)
        if beat is not None:
            beats.append(beat)
    return sorted(beats, key=lambda b: (b.service, b.consumer))


def _beat(service: str, consumer: str, value: Any, ttl: int) -> Heartbeat:
    try:
        last = int(text(value))
    except ValueError:
        last = None
    return Heartbeat(service, consumer, last, None if last is None else max(0, now_ms() - last), ttl)


def http_ready(url: str, *, timeout_s: float = 3.0) -> tuple[bool, str]:
    """Whether GET `url` answers 200, and what it said."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200, f"{response.status} {response.read(200).decode(errors='replace')}"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {exc.read(200).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))
