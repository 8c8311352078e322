"""Counters of what ingest saw and did, logged periodically and read by tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Stats:
    """Running totals since start."""

    frames: int = 0
    trades: int = 0
    duplicates: int = 0
    malformed: int = 0
    dropped: int = 0
    published: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    watchdog_reconnects: int = 0
    rotations: int = 0
    control_messages: int = 0
    control_errors: int = 0

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)
