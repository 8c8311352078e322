"""Redis at maxmemory (noeviction) between the SMTP accept and the record, for longer than a lease: the lease is
kept, the record lands once memory is freed, and the mail is not sent again."""

from __future__ import annotations

import asyncio
import threading

import pytest
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


class DataNoticed(SelectiveHandler):
    """Tells the test when the first mail's DATA arrived (then holds it for `data_delay_s`)."""

    def __init__(self, data_delay_s: float) -> None:
        super().__init__(data_delay_s=data_delay_s)
        self.in_data = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Note the arrival, then accept after the delay."""
        self.in_data.set()
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.usefixtures("plain_tracebacks")
async def test_mails_accepted_while_redis_refuses_writes_are_recorded_once_and_never_resent() -> None:
    redis_server = RedisServer(temp_dir("notifier-oom-")).start()  # its own: maxmemory must not reach the session's
    redis, admin = connect(redis_server.url), connect(redis_server.url)
    handler = DataNoticed(data_delay_s=0.3)
    smtp = selective_server(handler).start()
    settings = settings_for(smtp.port, concurrency=4, send_timeout_s=1.0)
    replica = None
    try:
        replica = Replica(redis, settings)
        await publish_triggers(redis, range(4))
        assert await asyncio.to_thread(handler.in_data.wait, 10)
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")  # below what is in use: every write is refused
        # Three leases long: a record given up when its lease ran out would let the reclaim send the mail again.
        await asyncio.sleep(3 * settings.lease_ms / 1000)
        assert len(smtp.mails) == 4
        await admin.config_set("maxmemory", "0")

        async def all_sent() -> bool:
            return len([r for r in await results(admin) if r.status == "sent"]) == 4

        await eventually(all_sent, within=10)
        await asyncio.sleep(settings.lease_ms / 1000 + 1.0)  # past a lease and the reclaim time
        assert message_ids(smtp) == {message_id(n): 1 for n in range(4)}
        assert len(await results(admin)) == 4
    finally:
        if replica is not None:
            await replica.stop()
        smtp.stop()
        await redis.aclose()
        await admin.aclose()
        redis_server.stop()
