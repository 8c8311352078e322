"""Channel routes: create, list, get, change, rotate the secret, test, delete; and the public verification."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from pricealert.alerts.channelviews import (
    EXAMPLE_CHANNEL_ID,
    MAX_TOKEN_CHARS,
    ChannelCreate,
    ChannelList,
    ChannelOut,
    ChannelPatch,
    ChannelTestResult,
    ChannelVerified,
    ChannelVerify,
    ChannelWithSecret,
)
from pricealert.alerts.deps import ChannelsDep, CurrentUser
from pricealert.alerts.views import ErrorBody
from pricealert.common.channels import ACCOUNT_EMAIL
from pricealert.common.errors import NotFound


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_ERRORS: dict[int | str, dict[str, Any]] = {401: _error("Missing, invalid or expired access token.")}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("channel_not_found: no such channel of yours.")}

router = APIRouter(prefix="/channels", tags=["channels"])

ChannelId = Annotated[uuid.UUID, Path(description="The channel's id.", examples=[EXAMPLE_CHANNEL_ID])]


_VERIFY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("invalid_verification_token: unknown or already used."),
    410: _error("verification_token_expired: the link is older than 24 hours."),
}


@router.get("/verify", response_model=ChannelVerified, responses=_VERIFY_ERRORS)
async def verify_channel(
    channels: ChannelsDep,
    token: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_TOKEN_CHARS,
            description="The token from the mailed link.",
            examples=["q0Jx3l5m2VfN8tR4yW7zB1cD6eH9kL0pS3uX5aG2iO4"],
        ),
    ],
) -> ChannelVerified:
    """The link mailed to an email channel's address: the address is verified, the channel active (no login)."""
    return await _verified(channels, token)


@router.post("/verify", response_model=ChannelVerified, responses=_VERIFY_ERRORS)
async def verify_channel_token(channels: ChannelsDep, body: ChannelVerify) -> ChannelVerified:
    """The same as the link, with the token in the body (what the page the mail's link opens sends; no login)."""
    return await _verified(channels, body.token)


async def _verified(channels: ChannelsDep, token: str) -> ChannelVerified:
    channel = await channels.verify(token)
    return ChannelVerified(
        status="verified",
        channel_id=channel.id,
        message="The address is verified: alerts that list this channel will mail it.",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelWithSecret,
    responses={
        **_ERRORS,
        409: _error("channel_limit_reached: you hold the most channels allowed."),
        422: _error(
            "Invalid input: invalid_email, invalid_url, https_required, unresolvable_host, private_target, "
            "invalid_apprise_url, field_not_allowed."
        ),
    },
)
async def create_channel(body: ChannelCreate, user: CurrentUser, channels: ChannelsDep) -> ChannelWithSecret:
    """Add a channel. A webhook's signing secret is in this answer only; an address other than your account's is
    `unverified` until the link mailed to it is followed."""
    created = await channels.create(user, body.kind, name=body.name, address=body.address, url=body.url)
    return ChannelWithSecret.with_secret(created.channel, created.secret)


@router.get("", response_model=ChannelList, responses=_ERRORS)
async def read_channels(user: CurrentUser, channels: ChannelsDep) -> ChannelList:
    """Your channels, oldest first; `email` (your account's address) is always there besides them."""
    return ChannelList(items=[ChannelOut.of(c) for c in await channels.list_channels(user)])


@router.get("/{channel_id}", response_model=ChannelOut, responses={**_ERRORS, **_NOT_FOUND})
async def read_channel(channel_id: ChannelId, user: CurrentUser, channels: ChannelsDep) -> ChannelOut:
    """One of your channels."""
    return ChannelOut.of(await channels.get(user, str(channel_id)))


@router.patch(
    "/{channel_id}",
    response_model=ChannelOut,
    responses={**_ERRORS, **_NOT_FOUND, 409: _error("channel_unverified: follow the mailed link to activate it.")},
)
async def update_channel(
    channel_id: ChannelId, body: ChannelPatch, user: CurrentUser, channels: ChannelsDep
) -> ChannelOut:
    """Rename a channel, disable it, or enable it again (after a webhook answered 410, say)."""
    channel = await channels.update(
        user, str(channel_id), fields=body.model_fields_set, name=body.name, status=body.status
    )
    return ChannelOut.of(channel)


@router.post(
    "/{channel_id}/rotate-secret",
    response_model=ChannelWithSecret,
    responses={**_ERRORS, **_NOT_FOUND, 409: _error("channel_has_no_secret: not a webhook.")},
)
async def rotate_secret(channel_id: ChannelId, user: CurrentUser, channels: ChannelsDep) -> ChannelWithSecret:
    """A new signing secret for a webhook, shown this once; the old one also signs for 24 hours."""
    rotated = await channels.rotate(user, str(channel_id))
    return ChannelWithSecret.with_secret(rotated.channel, rotated.secret)


@router.post(
    "/{channel_id}/test",
    response_model=ChannelTestResult,
    responses={**_ERRORS, **_NOT_FOUND, 504: _error("channel_test_timeout: the notifier did not answer in time.")},
)
async def test_channel(
    channel_id: Annotated[
        str,
        Path(
            description=f"The channel's id, or `{ACCOUNT_EMAIL}` for your account's address.",
            examples=[EXAMPLE_CHANNEL_ID, ACCOUNT_EMAIL],
        ),
    ],
    user: CurrentUser,
    channels: ChannelsDep,
) -> ChannelTestResult:
    """Send a test notification on the channel and answer with what came of it (up to 15 s)."""
    if channel_id != ACCOUNT_EMAIL:
        channel_id = str(_uuid(channel_id))
    outcome = await channels.test(user, channel_id)
    return ChannelTestResult.model_validate(outcome.model_dump())


@router.delete(
    "/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_ERRORS, **_NOT_FOUND, 409: _error("channel_in_use: active or paused alerts list it.")},
)
async def delete_channel(channel_id: ChannelId, user: CurrentUser, channels: ChannelsDep) -> Response:
    """Delete a channel that no active or paused alert lists."""
    await channels.delete(user, str(channel_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound(f"Channel {value} does not exist.", code="channel_not_found", details={"id": value}) from exc
