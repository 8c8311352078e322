"""Places in flight, per kind of delivery: mail, webhooks and Apprise notifications never wait for one another."""

from __future__ import annotations

import asyncio

from pricealert.common.channels import ChannelKind
from pricealert.notifier.jobs import Job
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.settings import NotifierSettings

ROOM_WAIT_S = 0.5  # how long a webhook or Apprise delivery waits for a place in flight before it is retried later


class Rooms:
    """Mail: `max_in_flight` places (the SMTP pool's slots bound the sends); webhooks and Apprise: as many as their
    senders take at once (NOTIFIER_WEBHOOK_CONCURRENCY, NOTIFIER_APPRISE_CONCURRENCY), so none waits inside them
    and at most that many are ever sent and not yet recorded (the duplicates a crash can cause)."""

    def __init__(self, settings: NotifierSettings, max_in_flight: int) -> None:
        self.mail = asyncio.Semaphore(max_in_flight)
        self.limits = {
            ChannelKind.WEBHOOK.value: settings.webhook_concurrency,
            ChannelKind.APPRISE.value: settings.apprise_concurrency,
        }
        self.channels = {kind: asyncio.Semaphore(limit) for kind, limit in self.limits.items()}

    async def take(self, job: Job, saturated: set[str]) -> tuple[asyncio.Semaphore | None, SendFailed | None]:
        """A place for `job`, to release when it is settled, or why it must be retried later instead.

        Mail waits for its place (the stream's backpressure). A webhook or Apprise delivery waits ROOM_WAIT_S at
        most, once per batch (`saturated`) and kind: while its kind stays saturated it is retried later ("busy"),
        so slow receivers never hold the stream, and the mail behind them, up for long.
        """
        if job.by_mail:
            await self.mail.acquire()
            return self.mail, None
        room = self.channels.get(job.kind)
        if room is None:  # no spec yet: nothing is sent, only a retry recorded
            return None, None
        if not room.locked():  # a free place: taken at once, no timer
            await room.acquire()
            return room, None
        if job.kind not in saturated:
            try:
                async with asyncio.timeout(ROOM_WAIT_S):
                    await room.acquire()
                return room, None
            except TimeoutError:
                saturated.add(job.kind)
        busy = f"busy: {self.limits[job.kind]} {job.kind} deliveries already in flight here"
        return None, SendFailed(busy, permanent=False)
