"""One delivery to make (a trigger on one of its channels), and the stream entries it shares with its trigger's other
deliveries: acknowledged once every one of them is settled."""

from __future__ import annotations

from dataclasses import dataclass, field

from pricealert.common.channels import (
    ACCOUNT_EMAIL,
    ChannelKind,
    ChannelSpec,
    ChannelStatus,
    delivery_id_for,
    parse_channel_ids,
)
from pricealert.common.events import Fields, Trigger

UNKNOWN_KIND = "unknown"  # a channel the registry does not hold (yet): its kind is not known here


@dataclass
class Entry:
    """The triggers-stream entries of one trigger in a batch, and how many of its deliveries are not recorded yet.

    An entry is acknowledged in the commit that records its last delivery (the one-channel case: with the outcome, in
    one MULTI), or just after. A delivery that is held by another sender, or whose record fails, is never counted as
    recorded: the entry stays pending and comes back, and the sent marks make the settled deliveries duplicates then.
    """

    ack_ids: list[str] = field(default_factory=list)
    unrecorded: int = 0
    acked: bool = False  # an acknowledgement is on its way (or done): no one else sends one

    def ack_for(self, count: int) -> list[str]:
        """The ids to acknowledge in a commit that records `count` of the deliveries: all, if those are the last."""
        if count >= self.unrecorded and not self.acked:
            self.acked = True
            return self.ack_ids
        return []

    def recorded(self, count: int) -> list[str]:
        """Count `count` deliveries as recorded; returns the ids still to acknowledge if that was the last of them."""
        self.unrecorded -= count
        if self.unrecorded <= 0 and not self.acked:
            self.acked = True
            return self.ack_ids
        return []


@dataclass
class Job:
    """One delivery to make, from a shard's triggers stream or from its retry queue."""

    shard: int  # every key of the delivery lives in this shard (the shard of the stream its trigger came on)
    trigger: Trigger
    fields: Fields
    attempt: int  # the number of the attempt about to be made
    entry_id: str  # the triggers-stream entry it came from (for the dead letter)
    entry: Entry = field(default_factory=Entry)  # shared by the deliveries of the trigger's entries in the batch
    channel_id: str = ACCOUNT_EMAIL
    first_failed_ms: int | None = None
    from_queue: bool = False
    lease_token: str = ""
    leased_at: float = 0.0
    spec: ChannelSpec | None = None  # the registry's spec, for a channel other than the account email
    delivery_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.delivery_id = delivery_id_for(self.trigger.trigger_id, self.channel_id)

    @property
    def account(self) -> bool:
        """Whether this is the account email's delivery (the trigger's own address, the v1 path)."""
        return self.channel_id == ACCOUNT_EMAIL

    @property
    def kind(self) -> str:
        """The channel's kind (ChannelKind), or UNKNOWN_KIND while the registry has no spec for it."""
        if self.account:
            return ChannelKind.EMAIL.value
        return self.spec.kind.value if self.spec is not None else UNKNOWN_KIND

    @property
    def by_mail(self) -> bool:
        """Whether it goes out by SMTP (and takes a slot of the pool)."""
        return self.kind == ChannelKind.EMAIL.value


def fan_out(shard: int, trigger: Trigger, fields: Fields, attempt: int, entry_id: str, entry: Entry) -> list[Job]:
    """One job per channel of `trigger` (each channel once, in the alert's order), all sharing `entry`."""
    channel_ids = list(dict.fromkeys(parse_channel_ids(trigger.channels)))
    entry.unrecorded += len(channel_ids)
    return [Job(shard, trigger, fields, attempt, entry_id, entry, channel_id) for channel_id in channel_ids]


NOT_VERIFIED = (
    "email_not_verified: the account's address is not verified; verify it (the link in the "
    "verification mail, or POST /auth/verify/resend for a new one) to receive alert mail"
)
# Why a leased delivery is refused before any attempt (a failed result with attempts 0, no retry, no dead letter):
# the channel is gone or off, or not the alert owner's, or an address nobody verified.
CHANNEL_DELETED = "channel deleted"
CHANNEL_DISABLED = "channel disabled"
CHANNEL_FOREIGN = "channel of another user"
ADDRESS_NOT_VERIFIED = "address not verified: the channel's address gets no mail until the link mailed to it is opened"
CHANNEL_UNKNOWN = "channel not in the registry (yet): retried until the alerts service publishes it"


def refusal(job: Job) -> str | None:
    """Why the registry's spec of a channel delivery forbids it (None: it may go, or there is no spec to judge)."""
    spec = job.spec
    if spec is None:
        return None
    if spec.user_id != job.trigger.user_id:
        return CHANNEL_FOREIGN
    if spec.status is ChannelStatus.DELETED:
        return CHANNEL_DELETED
    if spec.status is ChannelStatus.DISABLED:
        return CHANNEL_DISABLED
    if spec.status is ChannelStatus.UNVERIFIED:
        return ADDRESS_NOT_VERIFIED
    return None
