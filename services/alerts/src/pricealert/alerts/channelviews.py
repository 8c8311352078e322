"""Request and response models of /channels (every field carries an example); a URL is never shown whole."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pricealert.alerts.channelrules import shown_target
from pricealert.alerts.models import Channel
from pricealert.common.channels import ChannelKind, ChannelStatus

EXAMPLE_CHANNEL_ID = "9b1d7c3e-2f4a-4e8b-a6d5-0c1e2f3a4b5c"
MAX_TOKEN_CHARS = 200


def _blank_is_none(value: str | None) -> str | None:
    return None if value is None else (value.strip() or None)


class ChannelCreate(BaseModel):
    """A new channel: `address` for email, `url` for webhook and apprise."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "webhook", "name": "my bot", "url": "https://example.com/hooks/pricealert"},
                {"kind": "apprise", "name": "Telegram", "url": "tgram://123456789:AAHk…/987654321"},
                {"kind": "email", "address": "desk@example.com"},
            ]
        },
    )

    kind: ChannelKind = Field(description="email, webhook or apprise.", examples=["webhook"])
    name: str | None = Field(default=None, max_length=200, description="Optional label.", examples=["my bot"])
    address: str | None = Field(
        default=None,
        description="email: the address (verified by a mailed link unless it is your account's).",
        examples=["desk@example.com"],
    )
    url: str | None = Field(
        default=None,
        description="webhook: the https URL to POST to; apprise: an Apprise URL (tgram://, discord://, ntfy://, …).",
        examples=["https://example.com/hooks/pricealert"],
    )

    @field_validator("name")
    @classmethod
    def _blank_name_is_none(cls, value: str | None) -> str | None:
        return _blank_is_none(value)


class ChannelPatch(BaseModel):
    """A change to a channel: its name, or enabling and disabling it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "active"}, {"name": "ops"}]})

    name: str | None = Field(default=None, max_length=200, description="New label (null clears it).", examples=["ops"])
    status: Literal["active", "disabled"] | None = Field(
        default=None,
        description="disabled: no deliveries; active: deliveries again (after a 410, say).",
        examples=["active"],
    )

    @field_validator("name")
    @classmethod
    def _blank_name_is_none(cls, value: str | None) -> str | None:
        return _blank_is_none(value)


class ChannelOut(BaseModel):
    """A channel as the API shows it: an address whole, a URL redacted, never a secret."""

    id: str = Field(description="Channel id (UUID): what an alert's `channels` lists.", examples=[EXAMPLE_CHANNEL_ID])
    kind: ChannelKind = Field(examples=["webhook"])
    name: str | None = Field(examples=["my bot"])
    target: str = Field(
        description="The address, or the URL with its path, query and credentials masked.",
        examples=["https://example.com/…"],
    )
    status: ChannelStatus = Field(
        description="active; unverified (an address waiting for its link); disabled (by you, or after a 410).",
        examples=["active"],
    )
    disabled_reason: str | None = Field(
        description="Why it was disabled, when it was not by you.", examples=["the webhook answered 410 Gone"]
    )
    version: int = Field(description="1, then one more per change.", examples=[1])
    previous_secret_until: datetime | None = Field(
        description="webhook: until when the secret rotated out still signs deliveries.",
        examples=["2025-01-02T08:30:00Z"],
    )
    created_at: datetime = Field(examples=["2025-01-01T12:00:00Z"])
    updated_at: datetime = Field(examples=["2025-01-01T12:00:00Z"])

    @classmethod
    def of(cls, channel: Channel) -> ChannelOut:
        """The API view of a channel row."""
        return cls(**_fields(channel))


class ChannelWithSecret(ChannelOut):
    """A channel just created or whose secret was just rotated: the signing secret is shown this once."""

    secret: str | None = Field(
        description="webhook: the signing secret (Standard Webhooks), shown only now; null for other kinds.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )

    @classmethod
    def with_secret(cls, channel: Channel, secret: str | None) -> ChannelWithSecret:
        """The view of `channel` with `secret`."""
        return cls(**_fields(channel), secret=secret)


def _fields(channel: Channel) -> dict[str, object]:
    return {
        "id": channel.id,
        "kind": ChannelKind(channel.kind),
        "name": channel.name,
        "target": shown_target(channel.kind, channel.target),
        "status": ChannelStatus(channel.status),
        "disabled_reason": channel.disabled_reason,
        "version": channel.version,
        "previous_secret_until": channel.previous_secret_until,
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }


class ChannelList(BaseModel):
    """Your channels, oldest first (the account's own address, `email`, is not among them: it always exists)."""

    items: list[ChannelOut]


class ChannelTestResult(BaseModel):
    """What a test delivery came to."""

    request_id: str = Field(examples=["5b0c2f8e-8d1e-4c7b-9b6a-2f1e0d4c5b7a"])
    channel_id: str = Field(examples=[EXAMPLE_CHANNEL_ID])
    delivered: bool = Field(examples=[True])
    detail: str | None = Field(description="Why not, or the receiver's answer.", examples=["HTTP 204"])
    http_status: int | None = Field(examples=[204])
    duration_ms: int = Field(examples=[87])


class ChannelVerify(BaseModel):
    """The token of an email channel's verification mail, as the page sends it."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1,
        max_length=MAX_TOKEN_CHARS,
        description="The token from the mailed link.",
        examples=["q0Jx3l5m2VfN8tR4yW7zB1cD6eH9kL0pS3uX5aG2iO4"],
    )


class ChannelVerified(BaseModel):
    """The answer to a channel's verification link."""

    status: Literal["verified"] = Field(examples=["verified"])
    channel_id: str = Field(examples=[EXAMPLE_CHANNEL_ID])
    message: str = Field(examples=["The address is verified: alerts that list this channel will mail it."])
