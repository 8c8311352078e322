"""The new floors run end to end with tiny counts (ceilings.py, http_hop.py); the composite sums this run's p99s."""

from __future__ import annotations

import shutil

import pytest
from ceilings import GROUP, composite_floor, notifier_mail, read_ceiling_at, smtp_ceiling, stream
from http_hop import http_hop

from pricealert.common.redisconn import connect
from pricealert.testsupport.nginx import nginx_binary


async def test_the_read_ceiling_reads_and_acks_every_entry_of_its_16_streams_in_each_run(redis_url: str) -> None:
    runs = await read_ceiling_at(redis_url, 3_200, batch=100, runs=2)
    assert len(runs) == 2
    for run in runs:  # 200 entries a stream: 2 batches of 100 on each of the 16
        assert run["entries"] == 3_200 and run["streams"] == 16 and run["batch_ms"]["count"] == 32
        assert run["entries_per_s"] > 0
    redis = connect(redis_url)
    try:
        for n in range(16):
            for group in (f"{GROUP}-0", f"{GROUP}-1"):
                assert (await redis.xpending(stream(n), group))["pending"] == 0
    finally:
        await redis.aclose()


async def test_the_smtp_ceiling_sends_notifier_sized_mails_each_accepted_once() -> None:
    result = await smtp_ceiling(50, connections=4)
    assert result["every_mail_accepted_once"] and result["mail_ms"]["count"] == 50
    assert result["mail_bytes"] == len(notifier_mail().data) > 1_000 and result["mails_per_s"] > 0


def test_the_composite_floor_is_two_hops_a_frame_and_an_accept() -> None:
    floors = {"redis_stream_hop_ms": {"p99": 0.5}, "websocket_frame_ms": {"p99": 0.25}, "smtp_accept_ms": {"p99": 1.5}}
    floor = composite_floor(floors)
    assert floor is not None and floor["p99"] == 2.75
    assert composite_floor({"redis_stream_hop_ms": {"p99": 0.5}}) is None


async def test_the_http_hop_answers_through_nginx_under_both_load_generators() -> None:
    if shutil.which("wrk") is None or nginx_binary() is None:
        pytest.skip("the HTTP hop needs wrk and nginx")
    result = await http_hop(seconds=1, repeats=1, rate=100, connections=2)
    assert result["median"]["errors"] == 0 and result["median"]["requests_per_s"] > 0
    assert result["paced"]["median"]["errors"] == 0 and result["paced"]["median"]["sent"] == 100
