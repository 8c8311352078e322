"""The chaos run's webhook workload: the endpoint (signatures, down and up, slow answers), the in-flight count, the
oracle's accounting."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.report import webhook_section
from chaos.scenarios import FaultContext
from chaos.stack import ChaosStack
from chaos.webhook_faults import endpoint_down, endpoint_up
from chaos.webhook_receiver import Received, WebhookReceiver
from chaos.webhooks import expected_deliveries, judge_webhooks, webhooks_in_flight
from chaos.workload import User
from pricealert.common import names
from pricealert.common.shards import shard_of
from pricealert.devstack.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + base64.b64encode(b"chaos-webhook-secret-0123456789ab").decode()
OTHER = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdefg").decode()


def signed(firing_id: str, secrets: list[str]) -> tuple[bytes, dict[str, str]]:
    """A delivery as the notifier sends it: the body and the Standard Webhooks headers (one signature per secret)."""
    body = json.dumps({"type": "alert.fired", "firing_id": firing_id, "alert_id": firing_id.split(":")[0]}).encode()
    now = datetime.now(tz=UTC)
    signatures = " ".join(Webhook(s).sign(firing_id, now, body) for s in secrets)
    return body, {
        "webhook-id": firing_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


async def post(client: httpx.AsyncClient, url: str, firing_id: str, secrets: list[str]) -> int:
    body, headers = signed(firing_id, secrets)
    return (await client.post(url, content=body, headers=headers)).status_code


async def test_the_endpoint_verifies_each_signature_and_logs_every_delivery(tmp_path: Path) -> None:
    receiver = await WebhookReceiver({"/a": [SECRET]}, log_path=tmp_path / "hooks.log").start()
    try:
        async with httpx.AsyncClient() as client:
            assert await post(client, receiver.url("/a"), "f1", [SECRET]) == 204
            assert await post(client, receiver.url("/a"), "f2", [OTHER, SECRET]) == 204  # a rotation: both sign
            assert await post(client, receiver.url("/a"), "f3", [OTHER]) == 204  # answered, yet not verified
            assert await post(client, receiver.url("/b"), "f1", [SECRET]) == 204  # no secret for this path
            assert await post(client, receiver.url("/a"), "f1", [SECRET]) == 204
    finally:
        await receiver.stop()
    assert [(r.path, r.webhook_id, r.verified) for r in receiver.received] == [
        ("/a", "f1", True),
        ("/a", "f2", True),
        ("/a", "f3", False),
        ("/b", "f1", False),
        ("/a", "f1", True),
    ]
    assert receiver.ids()["f1"] == 3
    logged = (tmp_path / "hooks.log").read_text().splitlines()
    assert [line.split(" ")[1:] for line in logged][:2] == [["f1", "1", "/a"], ["f2", "1", "/a"]]


async def test_a_body_naming_another_firing_is_not_verified() -> None:
    receiver = await WebhookReceiver({"/a": [SECRET]}).start()
    body, headers = signed("f1", [SECRET])
    headers["webhook-id"] = "f9"
    headers["webhook-signature"] = Webhook(SECRET).sign("f9", datetime.now(tz=UTC), body)
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.post(receiver.url("/a"), content=body, headers=headers)).status_code == 204
    finally:
        await receiver.stop()
    assert [r.verified for r in receiver.received] == [False]


async def test_the_endpoint_goes_down_and_comes_back_on_the_same_port(tmp_path: Path) -> None:
    stack = ChaosStack(tmp_path, webhooks=await WebhookReceiver({"/a": [SECRET]}).start())
    assert stack.webhooks is not None
    ctx = FaultContext(stack)
    async with httpx.AsyncClient() as client:
        assert await post(client, stack.webhooks.url("/a"), "f1", [SECRET]) == 204  # a kept-alive connection
        await endpoint_down(ctx)
        with pytest.raises(httpx.TransportError):
            await post(client, stack.webhooks.url("/a"), "f2", [SECRET])
        await endpoint_up(ctx)
        assert await post(client, stack.webhooks.url("/a"), "f2", [SECRET]) == 204
    await stack.webhooks.stop()
    assert ctx.started_ms and ctx.ended_ms and ctx.ended_ms > ctx.started_ms
    assert [r.webhook_id for r in stack.webhooks.received] == ["f1", "f2"]


async def test_a_delivery_read_but_not_answered_arrives_twice_when_the_sender_tries_again() -> None:
    receiver = await WebhookReceiver({"/a": [SECRET]}, delay_s=5.0).start()
    try:
        async with httpx.AsyncClient(timeout=0.3) as client:
            with pytest.raises(httpx.TimeoutException):
                await post(client, receiver.url("/a"), "f1", [SECRET])
            assert receiver.in_progress == 1  # read, logged, not answered: the sender cannot know
            receiver.delay_s = 0.0
        async with httpx.AsyncClient() as client:
            assert await post(client, receiver.url("/a"), "f1", [SECRET]) == 204
    finally:
        await receiver.stop()
    assert receiver.ids()["f1"] == 2 and receiver.in_progress == 0


async def test_in_flight_counts_deliveries_leased_or_read_and_not_recorded_as_sent(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    receiver = WebhookReceiver(channels={"/a": "ch1"})
    stack = ChaosStack(tmp_path, shards=16, webhooks=receiver)
    stack.redis = redis
    shard = shard_of("BTCUSDT", 16)
    triggers = [{"trigger_id": f"t{n}", "shard": str(shard)} for n in range(4)]
    receiver.received.extend(Received(0.0, f"t{n}", "/a", True, "alert.fired") for n in (0, 1))
    await redis.set(names.notifier_sent_key(shard, "t0@ch1"), 1)  # read and recorded as sent: settled
    await redis.set(names.notifier_lease_key(shard, "t2@ch1"), "token")  # leased, not sent yet
    await redis.set(names.notifier_lease_key(shard, "t3@ch1"), "token")
    await redis.set(names.notifier_sent_key(shard, "t3@ch1"), 1)
    await redis.set(names.notifier_lease_key(shard, "t3"), "token")  # the email's: not a webhook delivery
    assert await webhooks_in_flight(stack, triggers) == {"t1@ch1", "t2@ch1"}


def users(n: int) -> list[User]:
    return [User(f"u{k}@example.com", {}, ["email", f"ch{k}"], f"/hooks/user-{k}") for k in range(n)]


def run(firings: int, people: list[User]) -> tuple[list[dict[str, str]], list[Received]]:
    """A flawless run: each firing at its user's endpoint once, verified, after the fault (ms 1000..2000)."""
    triggers, received = [], []
    for n in range(firings):
        user = people[n % len(people)]
        triggers.append({"trigger_id": f"a{n}", "email": user.email})
        received.append(Received(2000.0 + n, f"a{n}", user.hook, True, "alert.fired"))
    return triggers, received


def judged(triggers: list[dict[str, str]], people: list[User], received: list[Received], window: int = 0) -> Any:
    return judge_webhooks(triggers, people, received, window=window, fault=(1000.0, 2000.0))


def test_a_flawless_run_passes() -> None:
    people = users(3)
    triggers, received = run(9, people)
    result = judged(triggers, people, received)
    assert result["webhooks_pass"], result
    assert result["webhooks_expected"] == result["webhooks_received"] == 9
    assert result["webhook_next_s"] == 0.0 and result["webhook_settled_s"] == 0.01
    assert expected_deliveries(triggers, people) == {(r.path, r.webhook_id) for r in received}


def test_lost_unexpected_misdirected_and_unverified_webhooks_fail() -> None:
    people = users(3)
    triggers, received = run(6, people)
    received.pop(0)
    received.append(Received(2100.0, "zz", people[0].hook, True, "alert.fired"))
    received[0] = Received(2001.0, received[0].webhook_id, people[2].hook, True, "alert.fired")  # another user's
    received[1] = Received(2002.0, received[1].webhook_id, received[1].path, False, "alert.fired")
    result = judged(triggers, people, received)
    assert result["webhooks_lost"] == ["/hooks/user-0 a0", "/hooks/user-1 a1"]
    assert result["webhooks_unexpected"] == ["/hooks/user-0 zz", "/hooks/user-2 a1"]
    assert result["webhooks_unverified"] == 1 and not result["webhooks_pass"]


def test_duplicates_pass_only_within_the_crash_window() -> None:
    people = users(2)
    triggers, received = run(4, people)
    received += [received[0], received[1]]
    assert judged(triggers, people, received, window=2)["webhooks_pass"]
    result = judged(triggers, people, received, window=1)
    assert result["webhooks_duplicated"] == 2 and not result["webhooks_pass"]


def test_nothing_arrives_during_the_outage_and_nothing_expected_fails() -> None:
    people = users(1)
    triggers, received = run(2, people)
    received.append(Received(1500.0, "a0", people[0].hook, True, "alert.fired"))
    assert judged(triggers, people, received, window=1)["webhooks_during_fault"] == 1
    assert not judged([], people, [])["webhooks_pass"]  # a run where nothing fired proves nothing


async def test_the_receiver_in_its_own_process_counts_what_it_logged(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "hooks.log"
    args = ["-m", "chaos.webhook_receiver", "--port", str(port), "--secret", SECRET, "--log", str(log)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE, env=env)
    try:
        await asyncio.to_thread(wait_for_port, port)
        async with httpx.AsyncClient() as client:
            for firing in ("f1", "f2", "f1"):
                assert await post(client, f"http://127.0.0.1:{port}/any", firing, [SECRET]) == 204
    finally:
        process.terminate()
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert json.loads(out) == {"received": 3, "distinct_ids": 2, "unverified": 0}
    assert len(log.read_text().splitlines()) == 3


def test_the_report_has_a_webhook_table_for_the_webhook_scenarios() -> None:
    people = users(2)
    triggers, received = run(4, people)
    judged_result = judged(triggers, people, [*received, received[0]], window=1)
    result = {"scenario": "kill-notifier-webhook", "what": "w", "pass": True, **judged_result}
    lines = webhook_section([result, {"scenario": "baseline", "what": "b", "error": "x"}])
    assert "| kill-notifier-webhook | 4 | 5 | 0 | 1 (1) | 0 | 0 | 0 | 0.0 | 0.0 | pass |" in lines
    assert not any(line.startswith("| baseline") for line in lines)
    assert webhook_section([{"scenario": "baseline"}]) == []
