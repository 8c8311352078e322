"""Channel tests (POST /channels/{id}/test): one test send per request, its outcome pushed back to the waiting API.

Stream in: pricealert:{channels}:channel-tests (ChannelTestRequest, group notifier). Out: one ChannelTestOutcome JSON
LPUSHed onto pricealert:{channels}:test-reply:<request id>, which expires after REPLY_TTL_S. A test is never retried
nor recorded as a delivery; a request older than MAX_AGE_S is acknowledged without a send (the API gave up on it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from pricealert.common import names
from pricealert.common.channels import (
    ACCOUNT_EMAIL,
    ChannelKind,
    ChannelStatus,
    ChannelTestOutcome,
    ChannelTestRequest,
    get_channels,
)
from pricealert.common.consumer import ConsumerOptions, Received, StreamConsumer
from pricealert.common.redisconn import RedisClient
from pricealert.notifier.channelsend import ChannelSenders
from pricealert.notifier.jobs import ADDRESS_NOT_VERIFIED, CHANNEL_DELETED, CHANNEL_FOREIGN, NOT_VERIFIED
from pricealert.notifier.mail import render_test
from pricealert.notifier.metrics import CHANNEL_TESTS
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
MAX_AGE_S = 30.0  # the API waits less than this for the answer
REPLY_TTL_S = 60
CHANNEL_NOT_FOUND = "channel not found"


class ChannelTester:
    """Answers test requests: resolves the channel (the user's own), sends a test on it, pushes the outcome."""

    def __init__(
        self, redis: RedisClient, settings: NotifierSettings, pool: SmtpPool, senders: ChannelSenders, service: str
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.pool = pool
        self.senders = senders
        self.service = service

    async def handle_batch(self, messages: Sequence[Received[ChannelTestRequest]]) -> None:
        """Answer every request of the batch at once."""
        await asyncio.gather(*(self.answer(m.event) for m in messages))

    async def answer(self, request: ChannelTestRequest) -> None:
        """Send the test and push its outcome; a request the API gave up on is dropped."""
        requested_at = request.requested_at
        if requested_at.tzinfo is None:
            requested_at = requested_at.replace(tzinfo=UTC)
        if (datetime.now(UTC) - requested_at).total_seconds() > MAX_AGE_S:
            CHANNEL_TESTS.labels("expired").inc()
            log.info("channel_test.expired", request_id=request.request_id, channel_id=request.channel_id)
            return
        started = time.perf_counter()
        try:
            delivered, detail, http_status = await self._test(request)
        except Exception as exc:  # the API is waiting: it gets an answer whatever happened
            log.exception("channel_test.error", request_id=request.request_id)
            delivered, detail, http_status = False, f"internal error: {type(exc).__name__}", None
        outcome = ChannelTestOutcome(
            request_id=request.request_id,
            channel_id=request.channel_id,
            delivered=delivered,
            detail=detail,
            http_status=http_status,
            duration_ms=round((time.perf_counter() - started) * 1000),
        )
        reply_key = names.channel_test_reply_key(request.request_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(reply_key, outcome.to_json())
            pipe.expire(reply_key, REPLY_TTL_S)
            await pipe.execute()
        CHANNEL_TESTS.labels("delivered" if delivered else "failed").inc()
        log.info(
            "channel_test.answered",
            request_id=request.request_id,
            channel_id=request.channel_id,
            delivered=delivered,
            detail=detail,
        )

    async def _test(self, request: ChannelTestRequest) -> tuple[bool, str | None, int | None]:
        """(delivered, the receiver's answer or why not, the HTTP status)."""
        try:
            if request.channel_id == ACCOUNT_EMAIL:
                [unverified] = await self.redis.smismember(names.ACCOUNTS_UNVERIFIED, [request.user_id])
                if int(unverified):
                    return False, NOT_VERIFIED, None
                return True, await self._mail(request.email, request), None
            spec = (await get_channels(self.redis, [request.channel_id])).get(request.channel_id)
            if spec is None:
                return False, CHANNEL_NOT_FOUND, None
            if spec.user_id != request.user_id:
                return False, CHANNEL_FOREIGN, None
            if spec.status is ChannelStatus.DELETED:
                return False, CHANNEL_DELETED, None
            if spec.status is ChannelStatus.UNVERIFIED:
                return False, ADDRESS_NOT_VERIFIED, None
            # A disabled channel may be tested: that is how its owner checks the endpoint before enabling it again.
            if spec.kind is ChannelKind.EMAIL:
                return True, await self._mail(spec.target, request), None
            delivered = await self.senders.test(spec, request)
            return True, delivered.reply, delivered.http_status
        except SendFailed as exc:
            return False, exc.reason, exc.http_status

    async def _mail(self, recipient: str, request: ChannelTestRequest) -> str:
        """Send the test mail; returns the SMTP server's reply."""
        s = self.settings
        mail = render_test(recipient, request.request_id, s.mail_from, s.app_url)
        return await self.pool.send(mail)

    def consumer(self) -> StreamConsumer:
        """The consumer of the channel-tests stream in the notifier's group (acks after each answer)."""
        options = ConsumerOptions(
            stream=names.CHANNEL_TESTS,
            group=names.GROUP_NOTIFIER,
            consumer=self.settings.consumer_name,
            service=self.service,
            batch_size=self.settings.concurrency,
            reclaim_idle_ms=self.settings.reclaim_idle_ms,
            max_deliveries=self.settings.max_deliveries,
        )
        return StreamConsumer(self.redis, options, self.handle_batch, event=ChannelTestRequest)
