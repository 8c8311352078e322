"""Helpers of the channel delivery tests: registry entries, triggers naming channels, settings, a webhook receiver."""

from __future__ import annotations

from notifier_testkit import SHARD, settings_for, trigger
from webhook_testkit import new_secret

from pricealert.common import names
from pricealert.common.channels import ChannelKind, ChannelSecret, ChannelSpec, ChannelStatus, put_channel
from pricealert.common.events import NotificationResult, Trigger
from pricealert.common.redisconn import RedisClient
from pricealert.notifier.settings import NotifierSettings

SECRET = new_secret()


async def put(
    redis: RedisClient,
    channel_id: str,
    target: str,
    *,
    kind: ChannelKind = ChannelKind.WEBHOOK,
    status: ChannelStatus = ChannelStatus.ACTIVE,
    user_id: str = "u1",
    version: int = 1,
) -> ChannelSpec:
    """Write a channel's spec to the registry (as the alerts service does)."""
    secrets = (ChannelSecret(secret=SECRET),) if kind is ChannelKind.WEBHOOK else ()
    spec = ChannelSpec(
        id=channel_id, user_id=user_id, kind=kind, target=target, status=status, version=version, secrets=secrets
    )
    assert await put_channel(redis, spec)
    return spec


def firing(n: int, channels: str | None) -> Trigger:
    """Trigger `t<n>` of user u1 on the testkit's symbol, delivered on `channels` (comma-separated ids)."""
    return trigger(n).model_copy(update={"channels": channels})


async def publish(redis: RedisClient, *triggers: Trigger) -> list[str]:
    """XADD the triggers to the testkit's shard stream; returns their entry ids."""
    stream = Trigger.stream_of(SHARD)
    return [str(await redis.xadd(stream, t.to_fields())) for t in triggers]  # type: ignore[arg-type]


def channel_settings(smtp_port: int, **overrides: object) -> NotifierSettings:
    """The testkit's settings, with local receivers allowed and a webhook retry schedule in tens of milliseconds."""
    values: dict[str, object] = dict(
        channels_allow_private_targets=True,
        webhook_timeout_s=1.0,
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.2,
    )
    values.update(overrides)
    return settings_for(smtp_port, **values)


def by_channel(results: list[NotificationResult], channel_id: str) -> list[NotificationResult]:
    """The results of one channel, in order."""
    return [r for r in results if r.channel_id == channel_id]


def delivery_sent_key(delivery_id: str) -> str:
    """The sent mark of a delivery of the testkit's shard."""
    return names.notifier_sent_key(SHARD, delivery_id)
