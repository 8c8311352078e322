"""`pricealert alerts|users|db ...`: the commands that run a service's own code (pricealert.cli.ops)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer

from pricealert.cli import ops, render
from pricealert.cli.context import JsonFlag, fail, options_of

T = TypeVar("T")

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts service maintenance.")
users_app = typer.Typer(no_args_is_help=True, help="Auth service accounts.")
db_app = typer.Typer(no_args_is_help=True, help="Service databases.")


def _run_op(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(work())
    except ops.MissingService as exc:
        raise fail(str(exc)) from exc


@alerts_app.command("resync")
def alerts_resync(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Re-publish alert.created for every active alert, so every evaluator and ingest index is rebuilt."""
    options = options_of(ctx, json_output)
    count = _run_op(lambda: ops.resync_alerts(options.redis_url, options.redis_cluster_url, options.shards))
    if options.json:
        render.emit_json({"republished": count})
    else:
        typer.echo(f"re-published {count} active alert(s)")


@users_app.command("create-admin")
def users_create_admin(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="The admin's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ADMIN_PASSWORD",
            help="Asked for when not given.",
        ),
    ],
    reset_password: Annotated[
        bool, typer.Option(help="Also set this password on the admin create-admin (or ADMIN_EMAIL) created before.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Create an admin in the auth database; never promotes an existing account; idempotent."""
    options = options_of(ctx, json_output)
    try:
        result = _run_op(lambda: ops.create_admin(email, password, reset_password=reset_password))
    except ValueError as exc:  # the settings' rules on the admin email and password
        raise fail(f"refused: {exc}") from exc
    if options.json:
        render.emit_json({"user_id": result.user_id, "email": result.email, "action": result.action})
    else:
        typer.echo(f"{result.email}: {result.action.replace('_', ' ')} (id {result.user_id})")


@db_app.command("migrate")
def db_migrate(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(help="auth and/or alerts; default both.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Bring the databases of auth and alerts to the newest schema (idempotent; run before the APIs start)."""
    options = options_of(ctx, json_output)
    done: dict[str, str] = {}
    for service in services or list(ops.MIGRATED_SERVICES):
        if service not in ops.MIGRATED_SERVICES:
            raise fail(f"{service} has no database; choose from {', '.join(ops.MIGRATED_SERVICES)}", 2)
        done[service] = _run_op(functools.partial(ops.migrate, service))
        if not options.json:
            typer.echo(f"{service}: migrated {done[service]}")
    if options.json:
        render.emit_json({"migrated": done})
