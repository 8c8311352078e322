"""`pricealert`: the operator CLI (streams, dead letters, resync, admin users, worker health)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pricealert.cli import deadletters, health, redisacl, render, streams
from pricealert.cli.context import JsonFlag, Options, fail, options_of
from pricealert.cli.keycmds import keys_app
from pricealert.cli.servicecmds import alerts_app, db_app, users_app
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, connect
from pricealert.common.settings import DEFAULT_REDIS_URL

T = TypeVar("T")
REDIS_TIMEOUT_S = 5.0

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Operate pricealert: inspect streams, repair dead letters, resync alerts, create admins.",
)
dead_letters_app = typer.Typer(no_args_is_help=True, help="List, replay or drop the dead letters of a stream.")
redis_app = typer.Typer(no_args_is_help=True, help="Redis itself.")
acl_app = typer.Typer(no_args_is_help=True, help="One Redis ACL user per service (rules: pricealert.common.acl).")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(alerts_app, name="alerts")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(redis_app, name="redis")
redis_app.add_typer(acl_app, name="acl")

StreamArg = Annotated[str, typer.Argument(help="The stream: `triggers`, `pricealert:triggers` or its `:dead` name.")]
IdsOption = Annotated[list[str] | None, typer.Option("--id", help="A dead letter's id (repeatable); default: all.")]


@app.callback()
def root(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", envvar="REDIS_URL", help="Redis to inspect.", show_default=False)
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Operate pricealert. Reads REDIS_URL (and each service's own variables) from the environment."""
    configure_logging(service="cli", level=os.environ.get("CLI_LOG_LEVEL", "WARNING"))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = Options(redis_url or DEFAULT_REDIS_URL, json_output)


def _with_redis(url: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run `work` with a client of `url`; Redis being away is a clean error, not a traceback."""

    async def run() -> T:
        redis = connect(url)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S * 6):
                return await work(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (*TRANSIENT_REDIS_ERRORS, TimeoutError) as exc:
        raise fail(f"Redis at {_safe(url)} is not reachable: {exc}") from exc


def _safe(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


@app.command("streams")
def streams_command(
    ctx: typer.Context,
    consumers: Annotated[bool, typer.Option("--consumers", help="Also list every consumer.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Every stream: length, groups, consumers, pending, lag and dead letters."""
    options = options_of(ctx, json_output)
    result = _with_redis(options.redis_url, streams.all_streams)
    if options.json:
        render.emit_json({"streams": [s.as_dict() for s in result]})
    else:
        render.streams_table(result, consumers=consumers)


@dead_letters_app.command("list")
def dead_letters_list(
    ctx: typer.Context,
    stream: StreamArg,
    count: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    start: Annotated[str, typer.Option(help="From this dead-letter id on.")] = "-",
    json_output: JsonFlag = False,
) -> None:
    """The dead letters of STREAM, oldest first, with the reason each failed."""
    options = options_of(ctx, json_output)
    name = streams.resolve_stream(stream)
    letters = _with_redis(
        options.redis_url, lambda redis: deadletters.list_dead_letters(redis, name, count=count, start=start)
    )
    if options.json:
        render.emit_json({"stream": name, "dead_letters": [letter.as_dict() for letter in letters]})
    else:
        render.dead_letters_table(name, letters)


@dead_letters_app.command("replay")
def dead_letters_replay(
    ctx: typer.Context, stream: StreamArg, ids: IdsOption = None, json_output: JsonFlag = False
) -> None:
    """Put dead letters back on STREAM (original fields, dl_* removed) and delete them from the dead letters."""
    options = options_of(ctx, json_output)
    name = streams.resolve_stream(stream)
    outcome = _with_redis(options.redis_url, lambda redis: deadletters.replay(redis, name, ids or ()))
    _report(options, name, "replayed", outcome)


@dead_letters_app.command("drop")
def dead_letters_drop(
    ctx: typer.Context,
    stream: StreamArg,
    ids: IdsOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Drop all without asking.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Delete dead letters of STREAM for good: the given ids, or all of them."""
    options = options_of(ctx, json_output)
    name = streams.resolve_stream(stream)
    if not ids and not yes and not typer.confirm(f"Drop every dead letter of {name}?"):
        raise typer.Exit(1)
    outcome = _with_redis(options.redis_url, lambda redis: deadletters.drop(redis, name, ids or ()))
    _report(options, name, "dropped", outcome)


def _report(options: Options, stream: str, verb: str, outcome: deadletters.Outcome) -> None:
    if options.json:
        render.emit_json({"stream": stream, "action": verb, **outcome.as_dict()})
    else:
        for dead_id, new_id in outcome.done.items():
            typer.echo(f"{verb} {dead_id}" + (f" as {new_id}" if new_id else ""))
        typer.echo(f"{len(outcome.done)} dead letter(s) of {stream} {verb}")
        for missing in outcome.missing:
            typer.echo(f"not found: {missing}", err=True)
        for skipped in outcome.skipped:
            typer.echo(f"skipped (no original fields): {skipped}", err=True)
        for refused, why in outcome.refused.items():
            typer.echo(f"refused (the original entry cannot be restored: {why}): {refused}", err=True)
    if outcome.missing or outcome.skipped or outcome.refused:
        raise typer.Exit(1)


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
        beats = _with_redis(options.redis_url, health.live_workers)
        if options.json:
            render.emit_json({"workers": [b.as_dict() for b in beats]})
        else:
            render.workers_table(beats)
        return
    name = consumer or health.default_consumer()
    beat = _with_redis(options.redis_url, lambda redis: health.heartbeat(redis, service, name))
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
        report = _with_redis(url, lambda redis: redisacl.apply(redis, passwords, disable_default=disable_default))
    except redisacl.AclRefused as exc:
        raise fail(f"refused: {exc}") from exc
    except ResponseError as exc:
        raise fail(f"Redis at {_safe(url)} refused: {exc} (REDIS_ADMIN_URL must name an admin user)") from exc
    if options.json:
        render.emit_json(report.as_dict())
    else:
        render.acl_report(report)


def main() -> None:
    """The `pricealert` console script."""
    app(prog_name="pricealert")


if __name__ == "__main__":
    main()
