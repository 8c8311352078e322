"""`pricealert dead-letters list|replay|drop`: per shard stream, or every shard's stream of a kind at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from pricealert.cli import deadletters, render, streams
from pricealert.cli.context import JsonFlag, Options, fail, options_of, redis_of
from pricealert.cli.leases import shard_count
from pricealert.common.redisconn import RedisClient

T = TypeVar("T")

dead_letters_app = typer.Typer(no_args_is_help=True, help="List, replay or drop the dead letters of a stream.")

StreamArg = Annotated[
    str,
    typer.Argument(
        help="The stream: a kind (`triggers`: every shard's, or one with --shard), `{s3}:triggers`, "
        "`pricealert:{s3}:triggers` or its `:dead` name, or an unsharded stream (`{auth}:account-events`)."
    ),
]
ShardOption = Annotated[int | None, typer.Option("--shard", min=0, help="Only this shard's stream of the kind.")]
IdsOption = Annotated[list[str] | None, typer.Option("--id", help="A dead letter's id (repeatable); default: all.")]


def _on_streams(
    options: Options, stream: str, shard: int | None, work: Callable[[RedisClient, list[str]], Awaitable[T]]
) -> tuple[str, T]:
    """Resolve STREAM (a kind needs the shard count, recorded in Redis) and run `work` on its streams."""

    async def run(redis: RedisClient) -> tuple[list[str], T]:
        names = streams.resolve_streams(stream, shard, await shard_count(redis, options.shards))
        return names, await work(redis, names)

    try:
        resolved, result = redis_of(options, run)
    except streams.UnknownStream as exc:
        raise fail(str(exc), 2) from exc
    return (resolved[0] if len(resolved) == 1 else streams.full_name(stream)), result


@dead_letters_app.command("list")
def dead_letters_list(
    ctx: typer.Context,
    stream: StreamArg,
    shard: ShardOption = None,
    count: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    start: Annotated[str, typer.Option(help="From this dead-letter id on.")] = "-",
    json_output: JsonFlag = False,
) -> None:
    """The dead letters of STREAM, oldest first (shard after shard), with the reason each failed."""
    options = options_of(ctx, json_output)
    label, letters = _on_streams(
        options,
        stream,
        shard,
        lambda redis, names: deadletters.list_dead_letters(redis, names, count=count, start=start),
    )
    if options.json:
        render.emit_json({"stream": label, "dead_letters": [letter.as_dict() for letter in letters]})
    else:
        render.dead_letters_table(label, letters)


@dead_letters_app.command("replay")
def dead_letters_replay(
    ctx: typer.Context,
    stream: StreamArg,
    shard: ShardOption = None,
    ids: IdsOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Put dead letters back on their stream (original fields, dl_* removed) and delete them from the dead letters."""
    options = options_of(ctx, json_output)
    label, outcome = _on_streams(
        options, stream, shard, lambda redis, names: deadletters.replay(redis, names, ids or ())
    )
    _report(options, label, "replayed", outcome)


@dead_letters_app.command("drop")
def dead_letters_drop(
    ctx: typer.Context,
    stream: StreamArg,
    shard: ShardOption = None,
    ids: IdsOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Drop all without asking.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Delete dead letters of STREAM for good: the given ids, or all of them."""
    options = options_of(ctx, json_output)
    if not ids and not yes and not typer.confirm(f"Drop every dead letter of {streams.full_name(stream)}?"):
        raise typer.Exit(1)
    label, outcome = _on_streams(options, stream, shard, lambda redis, names: deadletters.drop(redis, names, ids or ()))
    _report(options, label, "dropped", outcome)


def _report(options: Options, stream: str, verb: str, outcome: deadletters.Outcome) -> None:
    if options.json:
        render.emit_json({"stream": stream, "action": verb, **outcome.as_dict()})
    else:
        for done in outcome.done:
            typer.echo(f"{verb} {done.id}" + (f" as {done.new_id}" if done.new_id else "") + f" ({done.stream})")
        typer.echo(f"{len(outcome.done)} dead letter(s) of {stream} {verb}")
        for missing in outcome.missing:
            typer.echo(f"not found: {missing}", err=True)
        for skipped in outcome.skipped:
            typer.echo(f"skipped (no original fields): {skipped.id} ({skipped.stream})", err=True)
        for refused in outcome.refused:
            why = f"the original entry cannot be restored: {refused.why}"
            typer.echo(f"refused ({why}): {refused.id} ({refused.stream})", err=True)
    if outcome.missing or outcome.skipped or outcome.refused:
        raise typer.Exit(1)
