"""Helpers of the channel tests: a resolver to inject, creating channels, reading the registry and mails."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
from alerts_testkit import Tokens
from fastapi import FastAPI

from pricealert.alerts.channelservice import ChannelService
from pricealert.common import names
from pricealert.common.channels import ChannelSpec, get_channels
from pricealert.common.events import AccountEvent, AccountEventType
from pricealert.common.redisconn import RedisClient
from pricealert.common.urlguard import IPAddress
from pricealert.testsupport.polling import eventually

PUBLIC = ipaddress.ip_address("93.184.216.34")
PRIVATE = ipaddress.ip_address("10.1.2.3")


class Resolver:
    """Answers from a table of names; a name with several answers gives the next one on each call (rebinding)."""

    def __init__(self, answers: dict[str, list[list[IPAddress]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise OSError(f"{host}: no such name")
        return queue.pop(0) if len(queue) > 1 else queue[0]


def channels_of(app: FastAPI) -> ChannelService:
    """The app's channel service (tests inject a resolver, a policy or a limit)."""
    service: ChannelService = app.state.alerts.channels
    return service


def use_resolver(app: FastAPI, answers: dict[str, list[list[IPAddress]]] | None = None) -> Resolver:
    """Resolve names from `answers` (default: hooks.example and ntfy.example to a public address)."""
    resolver = Resolver(answers or {"hooks.example": [[PUBLIC]], "ntfy.example": [[PUBLIC]]})
    channels_of(app).resolver = resolver
    return resolver


async def add_channel(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: Any) -> dict[str, Any]:
    """POST /channels, expecting 201."""
    response = await client.post("/channels", json=body, headers=tokens.headers(user))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def webhook(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: Any) -> dict[str, Any]:
    """A webhook channel to https://hooks.example (a resolver must answer for it)."""
    return await add_channel(
        client, tokens, user, kind="webhook", url="https://hooks.example/in/s3cr3tpath?key=k3y", **body
    )


async def registry(redis: RedisClient, channel_id: str) -> ChannelSpec | None:
    """The registry's entry of a channel."""
    return (await get_channels(redis, [channel_id])).get(channel_id)


async def verification_mail(redis: RedisClient, address: str) -> AccountEvent:
    """The channel verification event for `address`, once the worker's relay has put it on account-events."""

    async def found() -> AccountEvent | None:
        for _, fields in await redis.xrange(names.ACCOUNT_EVENTS):
            event = AccountEvent.from_fields(fields)
            if event.type is AccountEventType.CHANNEL_VERIFICATION and event.email == address:
                return event
        return None

    return await eventually(found, what="the verification mail's event")
