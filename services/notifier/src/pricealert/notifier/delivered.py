"""What every channel's sender returns or raises: the receiver took the delivery (Delivered) or not (SendFailed)."""

from __future__ import annotations

from dataclasses import dataclass

from pricealert.notifier.sender import SendFailed as SendFailed


@dataclass(frozen=True)
class Delivered:
    """The receiver took the delivery; `reply` is its answer, short ("HTTP 204", "250 2.0.0 Ok: queued as …")."""

    reply: str | None = None
    http_status: int | None = None
