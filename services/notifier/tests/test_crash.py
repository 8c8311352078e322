"""A notifier replica process killed with SIGKILL in the middle of sending: nothing is lost, duplicates are counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from notifier_testkit import (
    DEAD,
    RESULTS,
    SHARDS,
    TRIGGERS,
    SelectiveHandler,
    message_id,
    message_ids,
    publish_triggers,
    results,
    selective_server,
)
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.devstack.processes import ServiceProcess
from pricealert.testsupport.polling import eventually

MAILS = 400
CONCURRENCY = 8


def replica(name: str, redis_url: str, smtp_port: int, log_dir: Path) -> ServiceProcess:
    return ServiceProcess(
        "notifier",
        {
            "REDIS_URL": redis_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "CONSUMER_NAME": name,
            "NOTIFIER_CONCURRENCY": str(CONCURRENCY),
            "NOTIFIER_RECLAIM_IDLE_MS": "300",
            "NOTIFIER_SEND_TIMEOUT_S": "1",
            "SMTP_TIMEOUT_S": "1",
            "NOTIFIER_BACKOFF_BASE_S": "0.05",
            "NOTIFIER_BACKOFF_MAX_S": "0.5",
            "LOG_LEVEL": "WARNING",
            "ENV": "test",
            "SHARDS": str(SHARDS),
        },
        log_path=log_dir / f"{name}.log",
    )


async def test_replica_killed_mid_send_loses_nothing_and_duplicates_stay_within_its_concurrency(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    # A slow DATA answer keeps every connection of the victim busy when it dies.
    handler = SelectiveHandler(data_delay_s=0.01)
    server = selective_server(handler).start()
    victim = replica("victim", redis_url, server.port, tmp_path)
    survivor = replica("survivor", redis_url, server.port, tmp_path)
    try:
        await redis.xgroup_create(TRIGGERS, names.GROUP_NOTIFIER, id="0", mkstream=True)
        await publish_triggers(redis, range(MAILS))
        victim.start()
        survivor.start()

        async def victim_is_sending() -> bool:
            held = await redis.xpending_range(
                TRIGGERS, names.GROUP_NOTIFIER, min="-", max="+", count=MAILS, consumername="victim"
            )
            return len(server.mails) >= MAILS // 8 and len(held) > 0

        await eventually(victim_is_sending, within=15)
        victim.kill()
        at_kill = len(server.mails)
        assert at_kill < MAILS, "the victim died after the work was done"

        async def every_trigger_reported() -> bool:  # cheap to poll: the SMTP server shares this process
            pending = (await redis.xpending(TRIGGERS, names.GROUP_NOTIFIER))["pending"]
            return await redis.xlen(RESULTS) >= MAILS and pending == 0

        await eventually(every_trigger_reported, within=15, every=0.1)
        assert survivor.running
        seen = message_ids(server)
        duplicates = sum(count - 1 for count in seen.values())
        print(  # noqa: T201  # the report
            f"\nSIGKILL after {at_kill}/{MAILS} mails: {duplicates} duplicate(s) "
            f"(bound: {CONCURRENCY} mails in flight), {len(server.mails)} mails accepted"
        )
        assert set(seen) == {message_id(n) for n in range(MAILS)}  # nothing lost
        assert duplicates <= CONCURRENCY
        outcomes = await results(redis)
        # A result is recorded with its acknowledgement in one transaction: one per trigger, even here.
        assert Counter(r.trigger_id for r in outcomes) == {f"t{n}": 1 for n in range(MAILS)}
        assert {r.status for r in outcomes} == {"sent"}
        assert await redis.xlen(DEAD) == 0
    finally:
        victim.kill()
        survivor.stop()
        server.stop()
