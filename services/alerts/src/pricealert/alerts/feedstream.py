"""What GET /events streams: a user's feed read from its stream with blocking XREADs, on a Redis pool of its own.

Each open feed holds one connection for its blocking reads; the feeds get their own client (its own pool), so a
thousand idle browsers never take the connections the API's requests need, and a per-process cap bounds them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import structlog
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from pricealert.alerts.metrics import FEEDS_OPEN
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.errors import InvalidInput, ServiceUnavailable, TooManyRequests
from pricealert.common.events import MalformedEvent
from pricealert.common.feed import FeedEvent
from pricealert.common.messages import entries_of, id_key, text
from pricealert.common.redisconn import MAX_BLOCK_MS, TRANSIENT_REDIS_ERRORS, RedisClient, connect_to

log = structlog.get_logger()

GAP = "feed.gap"  # sent first when Last-Event-ID is older than the history kept: events were missed
READ_COUNT = 100
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def parse_last_event_id(value: str | None) -> str | None:
    """A Last-Event-ID header as a stream entry id; InvalidInput (400) when it is not one."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not _ENTRY_ID.fullmatch(value) or any(int(part) >= 2**64 for part in value.split("-")):
        raise InvalidInput(
            "Last-Event-ID must be the id of an event of this feed, such as 1733490000000-0.",
            code="invalid_last_event_id",
            status_code=400,
        )
    return value


class FeedResponse(EventSourceResponse):
    """An EventSourceResponse that frees its feed's slot however the stream ends (even before it started)."""

    def __init__(self, content: AsyncIterator[ServerSentEvent], *, on_close: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


class Feeds:
    """The open feeds of one API process: their Redis client, their caps, and the event stream of each."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.redis: RedisClient = connect_to(settings.redis_url, settings.redis_cluster_url)
        self.ping_s = settings.feed_ping_s
        # The read blocks at most a ping interval (and MAX_BLOCK_MS, under the socket timeout).
        self.block_ms = max(1, min(MAX_BLOCK_MS, int(settings.feed_ping_s * 1000)))
        self.max_streams = settings.feed_max_streams
        self.max_per_user = settings.feed_max_per_user
        self.per_user: Counter[str] = Counter()

    @property
    def open(self) -> int:
        """How many feeds this process serves now."""
        return self.per_user.total()

    def admit(self, user_id: str) -> None:
        """Take a slot for one more feed of `user_id`: 429 past the user's cap, 503 past the process's."""
        if self.per_user[user_id] >= self.max_per_user:
            raise TooManyRequests.retry_after(
                f"At most {self.max_per_user} live feeds per user are open at once; close one first.",
                code="too_many_feeds",
                seconds=5,
            )
        if self.open >= self.max_streams:
            raise ServiceUnavailable(
                "This server has no room for another live feed; try again shortly.",
                code="feeds_full",
                headers={"Retry-After": "5"},
            )
        self.per_user[user_id] += 1
        FEEDS_OPEN.inc()

    def release(self, user_id: str) -> None:
        """Free the slot of one feed of `user_id`."""
        self.per_user[user_id] -= 1
        FEEDS_OPEN.dec()
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]

    async def start(self, user_id: str, last_event_id: str | None) -> tuple[str, ServerSentEvent | None]:
        """Where the feed starts (it sends what comes after that id), and the gap event to send first, if any."""
        key = names.feed_stream(user_id)
        if last_event_id is None:
            newest = await self.redis.xrevrange(key, count=1)
            return (text(newest[0][0]) if newest else "0-0"), None
        oldest = await self.redis.xrange(key, count=1)
        first = text(oldest[0][0]) if oldest else None
        if first is not None and id_key(last_event_id) >= id_key(first):
            return last_event_id, None
        # The id is older than the history kept (trimmed, or the whole feed expired): say so, then send it all.
        gap = {"type": GAP, "last_event_id": last_event_id, "first_kept_id": first}
        return last_event_id, ServerSentEvent(data=json.dumps(gap), event=GAP)

    async def events(
        self, user_id: str, after: str, first: ServerSentEvent | None = None
    ) -> AsyncIterator[ServerSentEvent]:
        """The user's feed entries after `after`, as they come, until the client goes away."""
        key = names.feed_stream(user_id)
        if first is not None:
            yield first
        log.info("feed.opened", user_id=user_id, after=after)
        try:
            while True:
                try:
                    reply = await self.redis.xread({key: after}, count=READ_COUNT, block=self.block_ms)
                except TRANSIENT_REDIS_ERRORS as exc:
                    # End the stream: the client reconnects with Last-Event-ID and misses nothing.
                    log.warning("feed.read.failed", user_id=user_id, error=str(exc))
                    return
                for entry_id, raw in entries_of(reply):
                    after = entry_id
                    try:
                        event = FeedEvent.from_fields(raw)
                    except MalformedEvent as exc:
                        log.warning("feed.entry.malformed", entry_id=entry_id, error=str(exc))
                        continue
                    yield ServerSentEvent(
                        data=json.dumps(event.model_dump(mode="json")), event=event.type.value, id=entry_id
                    )
        finally:
            log.info("feed.closed", user_id=user_id, last_id=after)

    def response(self, user_id: str, after: str, first: ServerSentEvent | None) -> FeedResponse:
        """The SSE response of one admitted feed; its slot is freed when it ends."""
        return FeedResponse(
            self.events(user_id, after, first),
            on_close=lambda: self.release(user_id),
            ping=self.ping_s,
            headers={"Cache-Control": "no-store"},
        )

    async def close(self) -> None:
        """Close the feeds' Redis client."""
        with anyio.CancelScope(shield=True):
            await self.redis.aclose()
