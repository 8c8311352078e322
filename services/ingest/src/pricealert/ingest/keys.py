"""Redis keys owned by ingest beyond those in pricealert.common.names."""

from __future__ import annotations

from pricealert.common.names import PREFIX


def ingest_gone_key(alert_id: str) -> str:
    """Tombstone of an alert that is no longer active, so a late alert.created can't revive it."""
    return f"{PREFIX}:ingest:gone:{alert_id}"
