"""Helpers of the webhook and Apprise sender tests: channels, settings, resolvers naming local receivers."""

from __future__ import annotations

import base64
import ipaddress
import os
from decimal import Decimal

from pricealert.common.channels import ChannelKind, ChannelSecret, ChannelSpec, ChannelStatus
from pricealert.common.events import Condition, Trigger
from pricealert.common.urlguard import IPAddress
from pricealert.notifier.settings import NotifierSettings


def new_secret() -> str:
    """A fresh `whsec_…` signing secret, as the alerts service makes them."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def channel(
    target: str, *secrets: ChannelSecret, kind: ChannelKind = ChannelKind.WEBHOOK, channel_id: str = "c1"
) -> ChannelSpec:
    """An active channel of user u1 pointing at `target`."""
    return ChannelSpec(
        id=channel_id,
        user_id="u1",
        kind=kind,
        target=target,
        status=ChannelStatus.ACTIVE,
        version=1,
        secrets=secrets,
    )


def settings(**overrides: object) -> NotifierSettings:
    """Settings for a sender test: private targets allowed (the receivers are local), short timeouts."""
    values: dict[str, object] = dict(
        consumer_name="n1",
        channels_allow_private_targets=True,
        webhook_timeout_s=2.0,
        apprise_timeout_s=3.0,
    )
    values.update(overrides)
    return NotifierSettings(**values)  # type: ignore[arg-type]  # settings by field name, checked by pydantic


def firing(n: int = 1) -> Trigger:
    """Firing `t<n>` of alert a1 (a level alert that fired once)."""
    return Trigger(
        trigger_id=f"t{n}",
        alert_id="a1",
        user_id="u1",
        email="ada@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        name="moon",
        price=Decimal("100012.50000000"),
        trade_id=42,
        exchange_time=1_777_807_004_059,
        tick_received_at=1_777_807_004_070,
        fired_at=1_777_807_004_071,
    )


class Resolver:
    """A DNS stand-in: each name answers its list of answers in turn (the last one repeating); it counts calls."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: dict[str, int] = {}

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        if host not in self.answers:
            raise OSError(f"{host}: name not known")
        n = self.calls.get(host, 0)
        self.calls[host] = n + 1
        answers = self.answers[host]
        return [ipaddress.ip_address(a) for a in answers[min(n, len(answers) - 1)]]
