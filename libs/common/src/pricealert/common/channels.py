"""Channels: where a firing is delivered (the account's email, another verified address, a webhook, an Apprise URL).

The alerts service owns them (its database); each one's sending details live in Redis as a ChannelSpec in
names.CHANNEL_REGISTRY, written by the alerts service on every change (a newer version only) and read by the
notifier at send time. A trigger names its channels (AlertFacts.channels); the reserved id `email` is the
account's own verified address, the default. Each (firing, channel) is one delivery, sent at most once.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from pricealert.common import names
from pricealert.common.events import Event
from pricealert.common.redisconn import RedisClient
from pricealert.common.scripts import lua

ACCOUNT_EMAIL = "email"  # the reserved channel id of the account's own address
MAX_CHANNELS_PER_ALERT = 5

_PUT_CHANNEL = lua("pricealert.common", "put_channel")


class ChannelKind(StrEnum):
    """How a channel is delivered to."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    APPRISE = "apprise"


class ChannelStatus(StrEnum):
    """Whether a channel takes deliveries."""

    ACTIVE = "active"
    UNVERIFIED = "unverified"  # an email channel whose address has not been verified yet: no mail goes to it
    DISABLED = "disabled"  # by its owner, or after a webhook answered 410 Gone (disabled_reason says)
    DELETED = "deleted"


class ChannelSecret(BaseModel):
    """A webhook signing secret (`whsec_…`); a rotated-out one signs too until `valid_until_ms`."""

    model_config = ConfigDict(frozen=True)
    secret: str
    valid_until_ms: int | None = None  # None: the current secret


class ChannelSpec(BaseModel):
    """What the notifier needs to deliver on a channel, as the registry holds it."""

    model_config = ConfigDict(frozen=True)
    id: str
    user_id: str
    kind: ChannelKind
    target: str  # the address, the webhook URL or the Apprise URL (secrets included: never log it whole)
    status: ChannelStatus
    version: int
    secrets: tuple[ChannelSecret, ...] = ()  # webhook: the current secret first

    def signing_secrets(self, now_ms: int) -> list[str]:
        """The secrets a delivery is signed with now: the current one and any rotated out less than 24 h ago."""
        return [s.secret for s in self.secrets if s.valid_until_ms is None or s.valid_until_ms > now_ms]


def parse_channel_ids(value: str | None) -> list[str]:
    """An alert's channel ids from AlertFacts.channels; none given means the account's email."""
    ids = [part for part in (value or "").split(",") if part]
    return ids or [ACCOUNT_EMAIL]


def join_channel_ids(ids: list[str] | None) -> str | None:
    """AlertFacts.channels for `ids`: None for the default (the account's email alone)."""
    if not ids or ids == [ACCOUNT_EMAIL]:
        return None
    return ",".join(ids)


def delivery_id_for(trigger_id: str, channel_id: str) -> str:
    """The id of one firing's delivery on one channel: the account email's keeps the trigger id (as before channels)."""
    return trigger_id if channel_id == ACCOUNT_EMAIL else f"{trigger_id}@{channel_id}"


async def put_channel(redis: RedisClient, spec: ChannelSpec) -> bool:
    """Write `spec` to the registry unless a newer version of the channel is there; True if written."""
    written = await redis.eval(_PUT_CHANNEL, 1, names.CHANNEL_REGISTRY, spec.id, spec.version, spec.model_dump_json())
    return bool(written)


async def get_channels(redis: RedisClient, ids: list[str]) -> dict[str, ChannelSpec]:
    """The registry's specs of `ids` (one round trip); ids it does not hold are absent from the answer."""
    if not ids:
        return {}
    raw = await redis.hmget(names.CHANNEL_REGISTRY, ids)
    return {i: ChannelSpec.model_validate_json(r) for i, r in zip(ids, raw, strict=True) if r}


class ChannelTestRequest(Event):
    """POST /channels/{id}/test: the notifier sends a test delivery on the channel and pushes the outcome back."""

    stream: ClassVar[str] = names.CHANNEL_TESTS

    request_id: str
    channel_id: str
    user_id: str
    email: str  # the account's address (for the `email` channel)
    requested_at: datetime


class ChannelTestOutcome(BaseModel):
    """What a test delivery came to, pushed as JSON onto names.channel_test_reply_key(request_id)."""

    model_config = ConfigDict(frozen=True)
    request_id: str
    channel_id: str
    delivered: bool
    detail: str | None = None  # why not, or the receiver's answer
    http_status: int | None = None
    duration_ms: int

    def to_json(self) -> str:
        """The reply list's element."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))
