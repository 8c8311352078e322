"""`pricealert shards` against real shard leases taken by real ShardOwnership replicas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cli_testkit import json_of, replicas, run_cli
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.ownership import ShardOwnership
from pricealert.testsupport.polling import eventually

COUNT = 4


def _split_evenly(owners: Sequence[ShardOwnership]) -> bool:
    return all(len(owner.owned) == COUNT // len(owners) for owner in owners)


def _members(report: dict[str, Any], service: str) -> dict[str, list[int]]:
    return {m["token"]: m["shards"] for m in report["members"] if m["service"] == service}


async def test_shards_json_shows_each_shards_holder_and_what_each_replica_owns(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    await redis.set(names.SHARD_COUNT_KEY, str(COUNT))
    async with replicas(redis, "evaluator", ["evaluator-1", "evaluator-2"]) as evaluators:
        await eventually(lambda: _split_evenly(evaluators), within=10, what="two evaluators holding 2 shards each")

        result = await run_cli("shards", "--json", env=cli_env)

        assert result.exit_code == 0, result.stderr
        report = json_of(result)
        assert report["shard_count"] == COUNT and report["recorded"] is True
        holders = {row["shard"]: row["leases"]["evaluator"]["owner"] for row in report["shards"]}
        assert holders == {shard: o.token for o in evaluators for shard in o.owned}
        assert all(0 < row["leases"]["evaluator"]["ttl_ms"] <= 1500 for row in report["shards"])
        assert all(
            row["leases"]["ingest"] == {"service": "ingest", "shard": row["shard"], "owner": None, "ttl_ms": None}
            for row in report["shards"]
        )
        assert _members(report, "evaluator") == {o.token: sorted(o.owned) for o in evaluators}
        assert all(0 <= m["age_ms"] < 1500 for m in report["members"])
        assert report["unowned"] == {"evaluator": [], "ingest": [0, 1, 2, 3]}

    # A clean stop gives every lease back and leaves the members set.
    after = json_of(await run_cli("shards", "--json", env=cli_env))
    assert after["members"] == [] and after["unowned"]["evaluator"] == [0, 1, 2, 3]


async def test_shards_table_names_owners_members_and_free_shards(redis: Redis, cli_env: dict[str, str]) -> None:
    # A holder that stopped beating (left the members set) but whose lease still runs.
    await redis.set(names.shard_owner_key("ingest", 2), "ingest-9:gone", px=5000)
    async with replicas(redis, "evaluator", ["evaluator-1"]) as [evaluator]:
        await eventually(lambda: _split_evenly([evaluator]), within=10, what="one evaluator holding every shard")

        result = await run_cli("--shards", str(COUNT), "shards", env=cli_env)

    assert result.exit_code == 0, result.stderr
    assert f"{COUNT} shards (assumed: no worker has recorded it yet)" in result.stdout
    rows = {tuple(line.split()[:4]) for line in result.stdout.splitlines()}
    assert ("2", evaluator.token, rows_ttl(result.stdout, "2")[0], "ingest-9:gone") in rows
    assert any(
        line.split()[:2] == ["evaluator", evaluator.token] and line.split()[-1] == "0-3"
        for line in result.stdout.splitlines()
    )
    assert any("ingest-9:gone" in line and "not a member" in line for line in result.stdout.splitlines())
    assert "ingest: no owner for shard(s) 0-1,3" in result.stdout


def rows_ttl(table: str, shard: str) -> list[str]:
    """The ttl cells of `shard`'s row of the shards table."""
    row = next(line.split() for line in table.splitlines() if line.split()[:1] == [shard])
    return [row[2], row[4]]
