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
from pricealert.cli.leases import OWNED_GROUPS, ShardsReport
from pricealert.cli.redisacl import AclReport
from pricealert.cli.streams import KindTotal, StreamsReport
from pricealert.common import acl, names


def console() -> Console:
    """A console on stdout that never wraps a table into illegibility."""
    return Console(soft_wrap=False, highlight=False)


def emit_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _lag(group: Any) -> str:
    return f"{group.lag}" if group.lag_exact else f"{group.lag}+"


def _short(stream: str) -> str:
    return stream.removeprefix(f"{names.PREFIX}:")


def _token(token: str | None) -> str:
    return "-" if token is None else token


def streams_table(report: StreamsReport, *, consumers: bool = False) -> None:
    """One row per stream and consumer group (with the group's shard owner), totals per kind, optionally consumers."""
    table = Table(
        title=f"streams on {report.shard_count} shards (key {names.PREFIX}:{{s<shard>}}:<kind>; dead letters in "
        f"<stream>:dead; owner: the {'/'.join(OWNED_GROUPS)} replica leasing the shard)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("stream", no_wrap=True)
    table.add_column("length", justify="right")
    table.add_column("group", no_wrap=True)
    for column in ("consumers", "pending", "lag", "dead"):
        table.add_column(column, justify="right")
    table.add_column("owner", no_wrap=True)
    for stream in report.streams:
        short, length = _short(stream.name), str(stream.length) if stream.exists else "-"
        if not stream.groups:
            table.add_row(short, length, "-", "-", "-", "-", str(stream.dead_letters), "")
        for index, group in enumerate(stream.groups):
            first = index == 0
            owner = _token(stream.owners.get(group.name)) if group.name in stream.owners else ""
            table.add_row(
                short if first else "",
                length if first else "",
                group.name,
                str(len(group.consumers)),
                str(group.pending),
                _lag(group),
                str(stream.dead_letters) if first else "",
                owner,
            )
    out = console()
    out.print(table)
    out.print(_totals_table(report.totals))
    if consumers:
        detail = Table(title="consumers", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("stream", "group", "consumer", "pending", "idle ms"):
            detail.add_column(
                column, no_wrap=column != "consumer", justify="right" if column in {"pending", "idle ms"} else "left"
            )
        for stream in report.streams:
            for group in stream.groups:
                for consumer in group.consumers:
                    detail.add_row(
                        _short(stream.name), group.name, consumer.name, str(consumer.pending), str(consumer.idle_ms)
                    )
        out.print(detail)


def _totals_table(totals: Sequence[KindTotal]) -> Table:
    table = Table(title="totals per kind (every shard)", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("kind", no_wrap=True)
    for column in ("streams", "length"):
        table.add_column(column, justify="right")
    table.add_column("group", no_wrap=True)
    for column in ("pending", "lag", "dead"):
        table.add_column(column, justify="right")
    for total in totals:
        head = (total.kind, str(total.streams), str(total.length))
        if not total.groups:
            table.add_row(*head, "-", "-", "-", str(total.dead_letters))
        for index, group in enumerate(total.groups):
            first = index == 0
            table.add_row(
                *(head if first else ("", "", "")),
                group.name,
                str(group.pending),
                _lag(group),
                str(total.dead_letters) if first else "",
            )
    return table


def shards_table(report: ShardsReport) -> None:
    """Each shard's lease holders with the time left, then each live replica with the shards it holds."""
    recorded = "recorded in Redis" if report.recorded else "assumed: no worker has recorded it yet"
    table = Table(title=f"{report.shard_count} shards ({recorded})", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("shard", justify="right")
    for service in OWNED_GROUPS:
        table.add_column(f"{service} owner", no_wrap=True)
        table.add_column("ttl ms", justify="right")
    for row in report.shards:
        cells = [str(row.shard)]
        for service in OWNED_GROUPS:
            lease = row.leases[service]
            cells += [_token(lease.owner), "-" if lease.ttl_ms is None else str(lease.ttl_ms)]
        table.add_row(*cells)
    members = Table(title="members (live replicas)", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("service", "member", "last beat (ms ago)", "shards", "owns"):
        members.add_column(column, no_wrap=column != "owns", justify="right" if column == "shards" else "left")
    for member in report.members:
        age = "not a member" if member.age_ms is None else str(member.age_ms)
        members.add_row(member.service, member.token, age, str(len(member.shards)), _spans(member.shards))
    out = console()
    out.print(table)
    out.print(members)
    for service, free in report.unowned.items():
        if free:
            out.print(f"{service}: no owner for shard(s) {_spans(free)}", markup=False)


def _spans(shards: Sequence[int]) -> str:
    """`0-3,7,9-10`: sorted shard numbers in runs."""
    runs: list[list[int]] = []
    for shard in sorted(shards):
        if runs and shard == runs[-1][-1] + 1:
            runs[-1].append(shard)
        else:
            runs.append([shard])
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs) or "-"


def dead_letters_table(stream: str, letters: Sequence[DeadLetter]) -> None:
    """The dead letters of one stream, one block each: where it failed, why, and its original fields."""
    out = console()
    out.print(f"dead letters of {stream}: {len(letters)} shown", style="bold")
    for letter in letters:
        if letter.stream != stream:
            out.print(f"{letter.stream}:", style="bold", markup=False)
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
