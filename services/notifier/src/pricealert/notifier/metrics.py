"""Prometheus metrics of the notifier (names prefixed pricealert_notifier_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EMAILS = Counter(
    "pricealert_notifier_emails_total",
    "Mail deliveries (the account email and email channels) settled, by outcome: sent, retry, failed, duplicate, "
    "held, unverified (no mail: the address is not verified), refused (a deleted, disabled or foreign channel).",
    ["outcome"],
)
ACCOUNT_EMAILS = Counter(
    "pricealert_notifier_account_emails_total",
    "Account mails (verification links, registration notices) by event type and outcome: "
    "sent, retry, failed, duplicate, held.",
    ["type", "outcome"],
)
SMTP_SECONDS = Histogram(
    "pricealert_notifier_smtp_seconds",
    "One SMTP transaction (connect if needed, MAIL, RCPT, DATA).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TRIGGER_TO_ACCEPT_SECONDS = Histogram(
    "pricealert_notifier_trigger_to_accept_seconds",
    "From the evaluator firing a trigger to the SMTP accept.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0),
)
IN_FLIGHT = Gauge("pricealert_notifier_in_flight", "Triggers leased and not yet settled by this process.")
RECORD_RETRIES = Counter(
    "pricealert_notifier_record_retries_total",
    "Outcome records retried because Redis failed (the mail itself is not sent again).",
)
DELIVERIES = Counter(
    "pricealert_notifier_channel_deliveries_total",
    "Deliveries on webhook and Apprise channels (and on channels the registry does not hold yet: kind unknown), by "
    "kind and outcome: sent, retry, failed, duplicate, held, refused (deleted, disabled or another user's channel).",
    ["kind", "outcome"],
)
CHANNEL_TESTS = Counter(
    "pricealert_notifier_channel_tests_total",
    "Test sends asked for by POST /channels/{id}/test, by outcome: delivered, failed, expired (too old to answer).",
    ["outcome"],
)
