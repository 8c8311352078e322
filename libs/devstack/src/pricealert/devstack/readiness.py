"""The docs/dev gateway's /readyz: every service's readiness, and the exchange link the alerts API reports."""

from __future__ import annotations

from typing import Any

import httpx


async def upstream_ready(client: httpx.AsyncClient, url: str) -> tuple[bool, Any]:
    """Whether the service at `url` is ready, and the `exchange` of its readiness body (None when it has none)."""
    try:
        response = await client.get(f"{url}/readyz")
    except httpx.TransportError:
        return False, None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code == 200, body.get("exchange") if isinstance(body, dict) else None


def gateway_readiness(replies: dict[str, tuple[bool, Any]]) -> tuple[dict[str, Any], int]:
    """The body and status of the gateway's /readyz: `degraded` (still 200) while the exchange is unreachable."""
    states = {name: ok for name, (ok, _) in replies.items()}
    exchange = replies.get("alerts", (False, None))[1]
    ok = all(states.values())
    unreachable = isinstance(exchange, dict) and exchange.get("state") == "unreachable"
    status = ("degraded" if unreachable else "ready") if ok else "not_ready"
    return {"status": status, "services": states, "exchange": exchange}, 200 if ok else 503
