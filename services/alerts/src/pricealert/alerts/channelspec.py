"""A channel row as the notifier's registry holds it (channels.ChannelSpec), and its write to Redis."""

from __future__ import annotations

from pricealert.alerts.models import Channel
from pricealert.common.channels import ChannelKind, ChannelSecret, ChannelSpec, ChannelStatus, put_channel
from pricealert.common.redisconn import RedisClient


def channel_spec(channel: Channel) -> ChannelSpec:
    """The registry entry of `channel`: its target, status and version, and a webhook's signing secrets."""
    secrets: list[ChannelSecret] = []
    if channel.secret:
        secrets.append(ChannelSecret(secret=channel.secret))
    if channel.previous_secret and channel.previous_secret_until is not None:
        until_ms = int(channel.previous_secret_until.timestamp() * 1000)
        secrets.append(ChannelSecret(secret=channel.previous_secret, valid_until_ms=until_ms))
    return ChannelSpec(
        id=channel.id,
        user_id=channel.user_id,
        kind=ChannelKind(channel.kind),
        target=channel.target,
        status=ChannelStatus(channel.status),
        version=channel.version,
        secrets=tuple(secrets),
    )


async def publish_channel(redis: RedisClient, channel: Channel) -> bool:
    """Write `channel`'s spec to the registry (unless a newer version is there); True if written."""
    return await put_channel(redis, channel_spec(channel))
