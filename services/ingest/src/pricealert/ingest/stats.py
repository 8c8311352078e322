"""Counters of what ingest saw and did, logged periodically and read by tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pricealert.ingest.frames import REJECT_REASONS


@dataclass
class Stats:
    """Running totals since start."""

    frames: int = 0
    trades: int = 0
    duplicates: int = 0
    malformed: int = 0
    dropped: int = 0
    published: int = 0
    unowned: int = 0  # trades of shards this replica does not own (any more), not published
    refused: int = 0  # trades whose append was refused: the shard's lease had gone to another replica
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    watchdog_reconnects: int = 0
    rotations: int = 0
    control_messages: int = 0
    control_errors: int = 0
    # Trades refused for their price, by reason (every reason from 0: a rate over it is 0, not absent).
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    rejected_log_due: dict[str, float] = field(default_factory=dict, repr=False)
    # Set (epoch s) while the exchange's REST API is known unreachable (exchangelink.py): per-attempt failures of
    # the catalog and the connections log at debug then, the one error line having said why. Not a counter.
    exchange_unreachable_since: float | None = None

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict (rejected trades summed; `rejected` has them by reason)."""
        counts = {k: v for k, v in asdict(self).items() if isinstance(v, int)}
        counts["rejected"] = sum(self.rejected.values())
        return counts
