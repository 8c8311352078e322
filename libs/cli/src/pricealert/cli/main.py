"""`pricealert`: the operator CLI (streams, dead letters, resync, admin users, worker health)."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

import typer
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pricealert.cli import health, leases, redisacl, render, streams
from pricealert.cli.context import JsonFlag, Options, fail, options_of, redis_of, safe_url, with_redis
from pricealert.cli.deadlettercmds import dead_letters_app
from pricealert.cli.keycmds import keys_app
from pricealert.cli.servicecmds import alerts_app, db_app, users_app
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import RedisClient
from pricealert.common.settings import DEFAULT_REDIS_URL
from pricealert.common.shards import DEFAULT_SHARDS, MAX_SHARDS

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Operate pricealert: inspect streams and shards, repair dead letters, resync alerts, create admins.",
)
redis_app = typer.Typer(no_args_is_help=True, help="Redis itself.")
acl_app = typer.Typer(no_args_is_help=True, help="One Redis ACL user per service (rules: pricealert.common.acl).")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(alerts_app, name="alerts")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(redis_app, name="redis")
redis_app.add_typer(acl_app, name="acl")


@app.callback()
def root(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", envvar="REDIS_URL", help="Redis to inspect.", show_default=False)
    ] = None,
    redis_cluster_url: Annotated[
        str,
        typer.Option(
            "--redis-cluster-url",
            envvar="REDIS_CLUSTER_URL",
            help="Seed URLs (comma-separated) of a Redis Cluster to inspect instead of --redis-url.",
            show_default=False,
        ),
    ] = "",
    shards: Annotated[
        int,
        typer.Option(
            "--shards",
            envvar="SHARDS",
            min=1,
            max=MAX_SHARDS,
            help="The shard count, until a worker has recorded it in Redis (the recorded one wins).",
        ),
    ] = DEFAULT_SHARDS,
    json_output: JsonFlag = False,
) -> None:
    """Operate pricealert. Reads REDIS_URL or REDIS_CLUSTER_URL (and each service's own variables) from the
    environment."""
    configure_logging(service="cli", level=os.environ.get("CLI_LOG_LEVEL", "WARNING"))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = Options(redis_url or DEFAULT_REDIS_URL, json_output, redis_cluster_url, shards)


@app.command("streams")
def streams_command(
    ctx: typer.Context,
    consumers: Annotated[bool, typer.Option("--consumers", help="Also list every consumer.")] = False,
    kind: Annotated[str | None, typer.Option("--kind", help="Only the streams of this kind (e.g. ticks).")] = None,
    shard: Annotated[int | None, typer.Option("--shard", min=0, help="Only this shard's streams.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Every stream, shard by shard: length, groups, consumers, pending, lag, dead letters, the shard's owners;
    then totals per kind."""
    options = options_of(ctx, json_output)
    result = redis_of(options, lambda redis: streams.all_streams(redis, options.shards, kind=kind, shard=shard))
    if options.json:
        render.emit_json(result.as_dict())
    else:
        render.streams_table(result, consumers=consumers)


@app.command("shards")
def shards_command(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Who owns which shard (the evaluator and ingest lease holders, the lease's time left) and the live replicas."""
    options = options_of(ctx, json_output)
    report = redis_of(options, lambda redis: leases.shards_report(redis, options.shards))
    if options.json:
        render.emit_json(report.as_dict())
    else:
        render.shards_table(report)


@app.command("health")
def health_command(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="A worker (ingest, evaluator, notifier, alerts).")] = None,
    consumer: Annotated[
        str | None,
        typer.Option(envvar="CONSUMER_NAME", show_default="the host name", help="The replica's consumer name."),
    ] = None,
    http: Annotated[str | None, typer.Option(help="Check this readiness URL instead (an API).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Exit 0 when this replica of SERVICE is alive (its heartbeat key exists); without SERVICE, list live workers."""
    options = options_of(ctx, json_output)
    if http is not None:
        ok, detail = health.http_ready(http)
        _health_result(options, {"service": service, "url": http, "healthy": ok, "detail": detail}, ok)
        return
    if service is None:
        beats = redis_of(options, health.live_workers)
        if options.json:
            render.emit_json({"workers": [b.as_dict() for b in beats]})
        else:
            render.workers_table(beats)
        return
    name = consumer or health.default_consumer()
    beat = redis_of(options, lambda redis: health.heartbeat(redis, service, name))
    data: dict[str, Any] = {"service": service, "consumer": name, "healthy": beat is not None}
    if beat is not None:
        data.update(last_beat_ms=beat.last_beat_ms, age_ms=beat.age_ms, ttl_s=beat.ttl_s)
    _health_result(options, data, beat is not None)


def _health_result(options: Options, data: dict[str, Any], ok: bool) -> None:
    if options.json:
        render.emit_json(data)
    else:
        subject = data.get("url") or f"{data['service']} ({data['consumer']})"
        typer.echo(
            f"{subject}: {'healthy' if ok else 'UNHEALTHY'}"
            + (f" — {data['detail']}" if data.get("detail") and not ok else "")
        )
    if not ok:
        raise typer.Exit(1)


@acl_app.command("apply")
def redis_acl_apply(
    ctx: typer.Context,
    disable_default: Annotated[
        bool,
        typer.Option(
            "--disable-default", help="Also switch the `default` user off (refused when connected as `default`)."
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Set each service's Redis user (password from REDIS_PASSWORD_<SERVICE>) as an admin (REDIS_ADMIN_URL)."""
    options = options_of(ctx, json_output)
    try:
        settings = redisacl.RedisAclSettings()
        passwords = settings.passwords()
    except (ValueError, redisacl.AclRefused) as exc:  # pydantic's ValidationError is a ValueError
        raise fail(f"refused: {exc}") from exc
    url = settings.redis_admin_url or options.redis_url
    try:
        report = with_redis(url, lambda redis: redisacl.apply(_one(redis), passwords, disable_default=disable_default))
    except redisacl.AclRefused as exc:
        raise fail(f"refused: {exc}") from exc
    except ResponseError as exc:
        raise fail(f"Redis at {safe_url(url)} refused: {exc} (REDIS_ADMIN_URL must name an admin user)") from exc
    if options.json:
        render.emit_json(report.as_dict())
    else:
        render.acl_report(report)


def _one(redis: RedisClient) -> Redis:
    """The client of one Redis (with_redis without a cluster URL): users are applied node by node."""
    assert isinstance(redis, Redis)
    return redis


def main() -> None:
    """The `pricealert` console script."""
    app(prog_name="pricealert")


if __name__ == "__main__":
    main()
