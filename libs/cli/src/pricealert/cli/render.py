"""Human tables (rich) and machine output (JSON) of the CLI's results."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from pricealert.cli.deadletters import DeadLetter
from pricealert.cli.health import Heartbeat
from pricealert.cli.redisacl import AclReport
from pricealert.cli.streams import StreamInfo
from pricealert.common import acl, names


def console() -> Console:
    """A console on stdout that never wraps a table into illegibility."""
    return Console(soft_wrap=False, highlight=False)


def emit_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _lag(group: Any) -> str:
    return f"{group.lag}" if group.lag_exact else f"{group.lag}+"


def streams_table(streams: Sequence[StreamInfo], *, consumers: bool = False) -> None:
    """One row per stream and consumer group; optionally one row per consumer after it."""
    table = Table(
        title=f"streams (key {names.PREFIX}:<stream>; dead letters in {names.PREFIX}:<stream>:dead)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("stream", no_wrap=True)
    table.add_column("length", justify="right")
    table.add_column("group", no_wrap=True)
    for column in ("consumers", "pending", "lag", "dead"):
        table.add_column(column, justify="right")
    for stream in streams:
        short = stream.name.removeprefix(f"{names.PREFIX}:")
        length = str(stream.length) if stream.exists else "-"
        if not stream.groups:
            table.add_row(short, length, "-", "-", "-", "-", str(stream.dead_letters))
        for index, group in enumerate(stream.groups):
            first = index == 0
            table.add_row(
                short if first else "",
                length if first else "",
                group.name,
                str(len(group.consumers)),
                str(group.pending),
                _lag(group),
                str(stream.dead_letters) if first else "",
            )
    out = console()
    out.print(table)
    if consumers:
        detail = Table(title="consumers", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("stream", "group", "consumer", "pending", "idle ms"):
            detail.add_column(
                column, no_wrap=column != "consumer", justify="right" if column in {"pending", "idle ms"} else "left"
            )
        for stream in streams:
            for group in stream.groups:
                for consumer in group.consumers:
                    detail.add_row(
                        stream.name.removeprefix(f"{names.PREFIX}:"),
                        group.name,
                        consumer.name,
                        str(consumer.pending),
                        str(consumer.idle_ms),
                    )
        out.print(detail)


def dead_letters_table(stream: str, letters: Sequence[DeadLetter]) -> None:
    """The dead letters of one stream, one block each: where it failed, why, and its original fields."""
    out = console()
    out.print(f"dead letters of {stream}: {len(letters)} shown", style="bold")
    for letter in letters:
        failure = letter.failure
        failed_at = _iso(failure.get("failed_at", ""))
        out.print(
            f"{letter.id}  entry {failure.get('entry_id', '?')} · group {failure.get('group', '?')} · "
            f"consumer {failure.get('consumer', '?')} · {failure.get('deliveries', '?')} deliveries · "
            f"failed {failed_at}",
            style="bold",
            markup=False,
        )
        out.print(f"  reason: {_shown(failure.get('reason', ''))}", markup=False)
        for fact in ("truncated", "unreadable"):
            if fact in failure:
                out.print(f"  {fact}: {_shown(failure[fact])}", markup=False)
        out.print("  " + " ".join(f"{_shown(k)}={_shown(v)}" for k, v in letter.fields.items()), markup=False)


def _shown(text: str, limit: int = 200) -> str:
    """`text` safe for a terminal: control characters escaped (no escape sequence reaches it), long text cut."""
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in cut)
    return cut + (f"...({len(text)} characters)" if len(text) > limit else "")


def _iso(epoch_ms: str) -> str:
    try:
        return datetime.fromtimestamp(int(epoch_ms) / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except ValueError:
        return epoch_ms


def workers_table(beats: Sequence[Heartbeat]) -> None:
    """Every live worker replica."""
    table = Table(title="live workers", title_justify="left")
    for column in ("service", "consumer", "last beat (ms ago)", "key ttl (s)"):
        table.add_column(column)
    for beat in beats:
        table.add_row(beat.service, beat.consumer, "-" if beat.age_ms is None else str(beat.age_ms), str(beat.ttl_s))
    console().print(table)


def acl_report(report: AclReport) -> None:
    """What `redis acl apply` set, user by user."""
    keys = "read-only and consume-only key patterns" if report.selectors else "no key selectors before Redis 7"
    lines = [f"Redis {report.redis_version}: set {len(report.users)} users ({keys})"]
    lines += [f"  {role.user}: writes {', '.join(role.own_keys)}" for role in acl.ROLES]
    lines += [f"  deleted {user} (no longer a role)" for user in report.deleted]
    if report.default_disabled:
        lines.append("  default: switched off")
    lines.append(
        "saved to the ACL file"
        if report.saved
        else "NOT saved (this Redis has no ACL file): run this again after every Redis restart"
    )
    sys.stdout.write("\n".join(lines) + "\n")
