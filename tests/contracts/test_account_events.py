"""Contract of pricealert:account-events: what auth writes (transaction, notice script) AccountEvent reads."""

from __future__ import annotations

import uuid

from contracts_testkit import assert_written_as, entries
from redis.asyncio import Redis

from pricealert.auth.handlers import AccountEvents, account_event
from pricealert.common import names
from pricealert.common.events import AccountEvent, AccountEventType, utc_now


async def test_auth_writes_account_events_that_account_event_reads(redis: Redis) -> None:
    user_id = uuid.uuid4()
    producer = AccountEvents(redis)
    registered = account_event(
        AccountEventType.REGISTERED, "new@example.com", user_id=user_id, token="t0k", expires_at=utc_now()
    )
    verified = account_event(AccountEventType.VERIFIED, "new@example.com", user_id=user_id)
    refused = account_event(AccountEventType.REGISTRATION_REFUSED, "other@example.com", username="taken")
    await producer.unverified(registered)
    assert await redis.sismember(names.ACCOUNTS_UNVERIFIED, str(user_id))
    await producer.verified(verified)
    assert not await redis.sismember(names.ACCOUNTS_UNVERIFIED, str(user_id))
    assert await producer.notice_once(names.signup_notice_key("other@example.com"), 60, refused)
    assert not await producer.notice_once(names.signup_notice_key("other@example.com"), 60, refused)
    raw = await entries(redis, AccountEvent.stream)
    for entry in raw:
        assert_written_as(AccountEvent, entry)
    assert [AccountEvent.from_fields(entry) for entry in raw] == [registered, verified, refused]
