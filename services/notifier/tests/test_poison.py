"""Hostile entries on the triggers stream: each ends in the dead letters, and the notifier goes on sending."""

from __future__ import annotations

import pytest
from notifier_testkit import TRIGGERS, StartNotifier, message_id, message_ids, results, settings_for, trigger
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.devstack.poison import send_hostile, wait_dead_lettered
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually


@pytest.mark.timeout(90)
async def test_hostile_triggers_are_dead_lettered_and_mail_goes_on(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    replica = notifier(settings_for(smtp_server.port))
    sent = await send_hostile(redis, TRIGGERS, trigger(1).to_fields())
    await wait_dead_lettered(redis, sent, [names.GROUP_NOTIFIER])
    assert not replica.task.done(), replica.task.exception()
    await redis.xadd(TRIGGERS, trigger(2).to_fields())  # type: ignore[arg-type]

    async def mailed() -> bool:
        assert not replica.task.done(), replica.task.exception()
        return len(await results(redis)) == 1

    await eventually(mailed)
    assert message_ids(smtp_server) == {message_id(2): 1}
