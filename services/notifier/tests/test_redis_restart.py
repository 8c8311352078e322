"""Redis going away between the SMTP accept and the record: the record is retried, the mail is not sent again."""

from __future__ import annotations

import asyncio
import threading

from aiosmtpd.smtp import SMTP, Envelope, Session
from notifier_testkit import (
    Replica,
    SelectiveHandler,
    message_id,
    message_ids,
    publish_triggers,
    results,
    selective_server,
    settings_for,
)

from pricealert.common.redisconn import connect
from pricealert.devstack.servers import RedisServer, temp_dir
from pricealert.testsupport.polling import eventually


class NoticingHandler(SelectiveHandler):
    """Tells the test when the first mail's DATA arrived (then holds it for `data_delay_s`)."""

    def __init__(self, data_delay_s: float) -> None:
        super().__init__(data_delay_s=data_delay_s)
        self.in_data = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Note the arrival, then accept after the delay."""
        self.in_data.set()
        return await super().handle_DATA(server, session, envelope)


async def test_mails_accepted_while_redis_restarts_are_recorded_once_and_never_resent() -> None:
    redis_server = RedisServer(temp_dir("notifier-restart-"), appendonly=True).start()
    redis = connect(redis_server.url)
    handler = NoticingHandler(data_delay_s=1.5)
    smtp = selective_server(handler).start()
    settings = settings_for(smtp.port, concurrency=4)
    replica = None
    try:
        replica = Replica(redis, settings)
        await publish_triggers(redis, range(4))
        assert await asyncio.to_thread(handler.in_data.wait, 10)
        redis_server.stop()  # a clean stop writes the AOF: triggers and leases survive the restart
        await asyncio.sleep(2.0)  # the four mails are accepted while Redis is away
        assert len(smtp.mails) == 4
        redis_server.start()
        checker = connect(redis_server.url)  # the test's own view, on a connection opened after the restart

        async def all_sent() -> bool:
            return len([r for r in await results(checker) if r.status == "sent"]) == 4

        await eventually(all_sent, within=15)
        # Past the leases (NOTIFIER_SEND_TIMEOUT_S + 2 s) and the reclaim time: a lost record would be resent now.
        await asyncio.sleep(settings.lease_ms / 1000 + 1.5)
        assert message_ids(smtp) == {message_id(n): 1 for n in range(4)}
        assert len(await results(checker)) == 4
        await checker.aclose()
    finally:
        if replica is not None:
            await replica.stop()
        smtp.stop()
        await redis.aclose()
        redis_server.stop()
