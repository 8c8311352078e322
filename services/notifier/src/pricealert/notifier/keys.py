"""Redis key names owned by the notifier (beyond the sent/lease keys in pricealert.common.names)."""

from __future__ import annotations

from pricealert.common.names import PREFIX

# Sorted set of trigger ids waiting for another delivery attempt, scored by when it is due (epoch ms).
# A replica that takes an id pushes its score forward by the claim time, so a crash only delays it.
RETRY_QUEUE = f"{PREFIX}:notifier:retry-queue"


def retry_key(trigger_id: str) -> str:
    """Hash with a retrying trigger's fields plus retry_attempts, retry_first_failed_ms, retry_last_error."""
    return f"{PREFIX}:notifier:retry:{trigger_id}"
