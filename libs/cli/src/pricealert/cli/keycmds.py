"""`pricealert keys ...`: the auth service's signing keys and root key in AUTH_KEY_DIR."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from pricealert.cli import ops, render
from pricealert.cli.context import JsonFlag, fail

keys_app = typer.Typer(
    no_args_is_help=True, help="The auth service's signing keys and the root key that vouches for them."
)


def _json(ctx: typer.Context, flag: bool) -> bool:
    return bool(flag or getattr(ctx.obj, "json", False))


@keys_app.command("ensure")
def keys_ensure(
    ctx: typer.Context,
    export_root: Annotated[
        Path | None,
        typer.Option(
            "--export-root",
            help="Also write the root's public key to this file (for TOKEN_ROOT_PUBLIC_KEY_FILE).",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Generate a signing key and the root key in AUTH_KEY_DIR unless they exist (never rotates; see `rotate`)."""
    try:
        ensured = ops.ensure_signing_keys(export_root)
    except (ops.MissingService, OSError) as exc:
        raise fail(str(exc)) from exc
    if _json(ctx, json_output):
        render.emit_json(dataclasses.asdict(ensured))
        return
    typer.echo(f"{'generated' if ensured.generated else 'kept'} signing key {ensured.kid}")
    typer.echo(
        f"{'generated' if ensured.root_generated else 'kept'} root key; "
        f"its public half for verifiers: {ensured.root_public_key}"
    )


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Add a new signing key; auth signs with it from its next re-read (AUTH_KEY_PUBLISH_INTERVAL_S)."""
    try:
        kid = ops.rotate_signing_key()
    except (ops.MissingService, OSError) as exc:
        raise fail(str(exc)) from exc
    if _json(ctx, json_output):
        render.emit_json({"kid": kid})
    else:
        typer.echo(f"generated signing key {kid}; older keys keep verifying the tokens they signed until retired")


@keys_app.command("retire")
def keys_retire(
    ctx: typer.Context,
    kid: Annotated[str, typer.Argument(help="The kid, as `keys list` shows it.")],
    json_output: JsonFlag = False,
) -> None:
    """Stop trusting a key: auth stops publishing it, every verifier refuses it within AUTH_KEY_VALIDITY_S."""
    try:
        path = ops.retire_signing_key(kid)
    except (ops.MissingService, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    if _json(ctx, json_output):
        render.emit_json({"kid": kid, "moved_to": path})
    else:
        typer.echo(f"retired signing key {kid} (moved to {path})")


@keys_app.command("list")
def keys_list(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """The signing keys on disk: which signs, which are published, which are retired."""
    try:
        keys = ops.list_signing_keys()
    except (ops.MissingService, OSError) as exc:
        raise fail(str(exc)) from exc
    if _json(ctx, json_output):
        render.emit_json([dataclasses.asdict(key) for key in keys])
        return
    for key in keys:
        typer.echo(f"{key.kid}  {key.algorithm:6}  {key.created_at}  {key.state}")
