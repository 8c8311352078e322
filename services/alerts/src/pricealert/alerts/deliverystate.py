"""A firing's delivery over its channels, from the log of attempts (pure: deliverysql.py reads and writes it).

Per channel: `sent` once any attempt was (a success is never undone), else `failed` once a final attempt failed,
else `pending` (a `retrying` attempt included). The firing is `sent` when every channel is, `failed` when one
failed and none is pending (its error names each failed channel and why), `pending` otherwise; its attempts are
the sum of each channel's highest attempt number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from pricealert.common.channels import ACCOUNT_EMAIL, ChannelKind
from pricealert.common.events import DeliveryStatus

MAX_ERROR = 2000
SENT, FAILED, PENDING = DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value, DeliveryStatus.PENDING.value


class AttemptRow(Protocol):
    """What the tally reads of one attempt (a `deliveries` row)."""

    @property
    def channel_id(self) -> str: ...
    @property
    def channel_kind(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def reply(self) -> str | None: ...


@dataclass(frozen=True)
class ChannelTally:
    """How far one firing's delivery on one channel went."""

    channel_id: str
    channel_kind: str | None
    attempts: int = 0  # its highest attempt number (0: refused before any, or none recorded yet)
    sent: bool = False
    failed: bool = False  # a final attempt failed
    error: str | None = None  # the last failed attempt's
    recorded: bool = False  # any attempt is in the log

    @property
    def status(self) -> str:
        """sent, failed or pending."""
        return SENT if self.sent else FAILED if self.failed else PENDING


@dataclass(frozen=True)
class Aggregate:
    """A firing's delivery: what its row (and its alert's, when it is the latest) shows."""

    status: str
    error: str | None
    attempts: int | None


def tally(rows: Iterable[AttemptRow]) -> dict[str, ChannelTally]:
    """Each channel's tally of these attempts (given oldest first), by channel id in the order first seen."""
    found: dict[str, ChannelTally] = {}
    for row in rows:
        before = found.get(row.channel_id) or ChannelTally(row.channel_id, row.channel_kind)
        failed = row.status == FAILED
        found[row.channel_id] = replace(
            before,
            attempts=max(before.attempts, row.attempt),
            sent=before.sent or row.status == SENT,
            failed=before.failed or failed,
            error=(row.error or row.reply or "unknown error") if failed else before.error,
            recorded=True,
        )
    return found


def channel_tallies(declared: Sequence[str], found: dict[str, ChannelTally]) -> list[ChannelTally]:
    """The tally of every declared channel (pending while none of its attempts is in), then any other in the log."""
    own = [found.get(c) or ChannelTally(c, ChannelKind.EMAIL.value if c == ACCOUNT_EMAIL else None) for c in declared]
    return own + [t for c, t in found.items() if c not in declared]


def from_row(
    tallies: list[ChannelTally], status: str | None, error: str | None, attempts: int | None
) -> list[ChannelTally]:
    """The tallies to show of a firing: the account email's from the firing's row when its outcome predates the log."""
    only_email = [t.channel_id for t in tallies] == [ACCOUNT_EMAIL]
    if any(t.recorded for t in tallies) or not only_email or status not in (SENT, FAILED):
        return tallies
    kind = ChannelKind.EMAIL.value
    return [ChannelTally(ACCOUNT_EMAIL, kind, attempts or 0, sent=status == SENT, failed=status == FAILED, error=error)]


def aggregate(tallies: Sequence[ChannelTally]) -> Aggregate:
    """The firing's delivery over its channels' tallies."""
    attempts = sum(t.attempts for t in tallies) if any(t.recorded for t in tallies) else None
    if all(t.sent for t in tallies):
        return Aggregate(SENT, None, attempts)
    if any(t.status == PENDING for t in tallies):
        return Aggregate(PENDING, None, attempts)
    failed = [t for t in tallies if t.failed and not t.sent]
    if [t.channel_id for t in tallies] == [ACCOUNT_EMAIL]:  # the account's email alone: its error as before channels
        return Aggregate(FAILED, (failed[0].error or "")[:MAX_ERROR], attempts)
    return Aggregate(FAILED, "; ".join(_reason(t) for t in failed)[:MAX_ERROR], attempts)


def _reason(failed: ChannelTally) -> str:
    label = failed.channel_id if failed.channel_id == ACCOUNT_EMAIL else f"{failed.channel_kind} {_short(failed)}"
    tries = "" if failed.attempts < 1 else f" after {failed.attempts} attempt{'s' if failed.attempts > 1 else ''}"
    return f"{label}: {failed.error}{tries}"


def _short(channel: ChannelTally) -> str:
    return channel.channel_id if len(channel.channel_id) <= 8 else f"{channel.channel_id[:8]}…"


def disabled_reason(channel_id: str, at: datetime) -> str:
    """Why a channel was disabled after its webhook answered 410, and how to take it back."""
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f'the endpoint answered 410 Gone on {when}; re-enable with PATCH /channels/{channel_id} {{"status": "active"}}'
    )
