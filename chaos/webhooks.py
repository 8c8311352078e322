"""The webhook workload and its oracle: each user's webhook channel on the local receiver, every alert notifying the
account's email and that webhook, and the count of what arrived.

Every firing must arrive once at its user's endpoint (webhook-id = firing id), signed with that channel's secret;
duplicates count against the notifier's crash window for webhooks (deliveries it had leased or the receiver had
read, not yet recorded as sent, when the fault hit), as the mails' do against theirs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from chaos.accounting import delivery_spans, held
from chaos.stack import ChaosStack
from chaos.webhook_receiver import Received, WebhookReceiver
from chaos.workload import User
from pricealert.common import names
from pricealert.common.channels import ACCOUNT_EMAIL, delivery_id_for

# The stack's settings for webhooks: the receiver is on 127.0.0.1, and retries come seconds apart, so the 60 s
# outage is over and every delivery in within seconds of the endpoint's return.
WEBHOOK_ENV = {
    "CHANNELS_ALLOW_PRIVATE_TARGETS": "true",
    "NOTIFIER_WEBHOOK_BACKOFF_BASE_S": "0.5",
    "NOTIFIER_WEBHOOK_BACKOFF_MAX_S": "5",
}
FIRED = "alert.fired"

Delivery = tuple[str, str]  # (URL path of the user's endpoint, webhook-id = firing id)


def hook_path(user: int) -> str:
    """The receiver path of user number `user`'s webhook channel."""
    return f"/hooks/user-{user}"


async def create_webhook_channels(client: httpx.AsyncClient, users: list[User], receiver: WebhookReceiver) -> None:
    """POST /channels for each user (a webhook to its path on the receiver); every alert of theirs then notifies the
    account's email and this channel. The receiver learns each channel's secret (shown once, at creation)."""
    for n, user in enumerate(users):
        path = hook_path(n)
        body = {"kind": "webhook", "name": f"chaos hook {n}", "url": receiver.url(path)}
        response = await client.post("/channels", json=body, headers=user.headers)
        if response.status_code != 201:
            raise RuntimeError(f"POST /channels for {user.email}: {response.status_code} {response.text[:300]}")
        channel = response.json()
        receiver.add_secret(path, str(channel["secret"]))
        receiver.channels[path] = str(channel["id"])
        user.channels = [ACCOUNT_EMAIL, str(channel["id"])]
        user.hook = path


def expected_deliveries(triggers: Sequence[Mapping[str, str]], users: list[User]) -> set[Delivery]:
    """(path, firing id) of every firing: each at its user's endpoint."""
    path_of = {u.email: u.hook for u in users if u.hook}
    return {(path_of.get(t.get("email", ""), "?"), t["trigger_id"]) for t in triggers}


def arrivals(received: Sequence[Received]) -> Counter[Delivery]:
    """(path, firing id) -> how many times it arrived (alert.fired events only; an unverified one counts, and is
    counted apart too)."""
    return Counter((r.path, r.webhook_id) for r in received if r.event_type in (FIRED, ""))


async def webhooks_in_flight(stack: ChaosStack, triggers: Sequence[Mapping[str, str]]) -> set[str]:
    """Webhook deliveries (`<firing id>@<channel id>`) leased by a notifier or read by the receiver, not yet recorded
    as sent: the duplicates a notifier's crash may cause."""
    receiver = stack.webhooks
    assert receiver is not None
    shard_of = {t["trigger_id"]: int(t["shard"]) for t in triggers}
    where: dict[str, int | None] = {}
    for r in list(receiver.received):
        if r.path in receiver.channels:
            where[delivery_id_for(r.webhook_id, receiver.channels[r.path])] = shard_of.get(r.webhook_id)
    for shard in range(stack.shards):
        prefix = names.notifier_lease_key(shard, "")
        async for key in stack.redis.scan_iter(match=names.notifier_lease_key(shard, "*@*"), count=1000):
            where[key.decode().removeprefix(prefix)] = shard
    unsent = set()
    for delivery_id, known in sorted(where.items()):
        shards = range(stack.shards) if known is None else (known,)
        if not any([await stack.redis.exists(names.notifier_sent_key(k, delivery_id)) for k in shards]):
            unsent.add(delivery_id)
    return unsent


def judge_webhooks(
    triggers: Sequence[Mapping[str, str]],
    users: list[User],
    received: Sequence[Received],
    *,
    window: int,
    fault: tuple[float | None, float | None],
) -> dict[str, Any]:
    """Lost, duplicated, unexpected and unverified webhooks; when they arrived against the fault; the verdict."""
    want = expected_deliveries(triggers, users)
    got = arrivals(received)
    started, ended = fault
    during = [r for r in received if started and ended and started <= r.at_ms < ended]
    after = sorted(r.at_ms for r in received if ended and r.at_ms >= ended)
    result: dict[str, Any] = {
        "webhooks_expected": len(want),
        "webhooks_received": sum(got.values()),
        "webhooks_lost": sorted(f"{p} {i}" for p, i in want - set(got)),
        "webhooks_duplicated": sum(n - 1 for n in got.values() if n > 1),
        "webhooks_unexpected": sorted(f"{p} {i}" for p, i in set(got) - want),
        "webhooks_unverified": sum(1 for r in received if not r.verified),
        "webhook_crash_window": window,
        "webhooks_during_fault": len(during),
        "webhooks_recovered": held(  # the fault held them: pending when it hit, or still when it ended
            delivery_spans(triggers, ((r.at_ms, r.webhook_id) for r in received if (r.path, r.webhook_id) in want)),
            started,
            ended,
        ),
        "webhook_next_s": round((after[0] - ended) / 1000, 2) if after and ended else None,
        "webhook_settled_s": round((after[-1] - ended) / 1000, 2) if after and ended else None,
    }
    result["webhooks_pass"] = (
        not result["webhooks_lost"]
        and not result["webhooks_unexpected"]
        and result["webhooks_unverified"] == 0
        and result["webhooks_duplicated"] <= window
        and result["webhooks_expected"] > 0
    )
    return result
