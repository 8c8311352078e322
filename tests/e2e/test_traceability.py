"""One alert, followed by its id through the logs of every service it passes: alerts, ingest, evaluator, notifier."""

from __future__ import annotations

import pytest
from e2e_stack import Stack, alert_mails, fire_one_alert

from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# The INFO line each service writes about the alert, and that must carry its id.
EXPECTED = {
    "alerts": "alert.created",
    "ingest": "ingest.symbol.subscribed",
    "evaluator": "trigger.fired",
    "notifier": "email.sent",
}


def lines_naming(stack: Stack, service: str, alert_id: str) -> list[str]:
    """Lines of one service's log that contain the alert id."""
    text = (stack.directory / f"{service}.log").read_text(errors="replace")
    return [line for line in text.splitlines() if alert_id in line]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the logs do not depend on the database
async def test_alert_id_is_in_every_services_log(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    alert = await fire_one_alert(
        stack.url, exchange, smtp_server, email="eve@example.com", symbol="ETHUSDT", target="3000", trade_price="3001"
    )
    assert len(alert_mails(smtp_server)) == 1

    missing = {
        service: event
        for service, event in EXPECTED.items()
        if not any(event in line for line in lines_naming(stack, service, alert["id"]))
    }
    assert not missing, f"no line naming alert {alert['id']}: {missing}"
