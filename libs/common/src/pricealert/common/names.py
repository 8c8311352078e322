"""Every Redis stream, consumer group and key name of the system, defined once."""

PREFIX = "pricealert"

# Streams (see README "Streams"): who writes them is noted beside each.
TICKS = f"{PREFIX}:ticks"  # ingest
ALERT_EVENTS = f"{PREFIX}:alert-events"  # alerts
TRIGGERS = f"{PREFIX}:triggers"  # evaluator
NOTIFICATION_RESULTS = f"{PREFIX}:notification-results"  # notifier
SYMBOL_CATALOG = f"{PREFIX}:symbol-catalog"  # ingest
SIGNING_KEYS = f"{PREFIX}:signing-keys"  # auth: public keys only
ACCOUNT_EVENTS = f"{PREFIX}:account-events"  # auth: registrations, verification mails, verifications

# Consumer groups, one per reading service.
GROUP_EVALUATOR = "evaluator"
GROUP_INGEST = "ingest"
GROUP_NOTIFIER = "notifier"
GROUP_ALERTS = "alerts"


def dead_letter_stream(stream: str) -> str:
    """Name of the dead-letter stream that collects what `stream`'s consumers gave up on."""
    return f"{stream}:dead"


def health_key(service: str, consumer: str) -> str:
    """TTL'd key a worker refreshes while its loop is alive (compose health checks read it)."""
    return f"{PREFIX}:health:{service}:{consumer}"


# Evaluator index: sorted sets of alert ids scored by target price, per symbol and direction
# (the evaluation script derives these names from EVAL_INDEX_PREFIX itself).
EVAL_INDEX_PREFIX = f"{PREFIX}:eval:"


def eval_above_key(symbol: str) -> str:
    """Alerts on `symbol` that fire when a price is at or above their target."""
    return f"{EVAL_INDEX_PREFIX}above:{symbol}"


def eval_below_key(symbol: str) -> str:
    """Alerts on `symbol` that fire when a price is at or below their target."""
    return f"{EVAL_INDEX_PREFIX}below:{symbol}"


def eval_cross_key(symbol: str) -> str:
    """Cross alerts on `symbol` still waiting for the first tick that fixes their side."""
    return f"{EVAL_INDEX_PREFIX}cross:{symbol}"


def eval_done_key(alert_id: str) -> str:
    """Tombstone of an alert that left the index (fired, deleted, expired): a late create cannot revive it."""
    return f"{EVAL_INDEX_PREFIX}done:{alert_id}"


def ingest_symbol_key(symbol: str) -> str:
    """Set of active alert ids on `symbol` that keep ingest subscribed to it."""
    return f"{PREFIX}:ingest:symbol:{symbol}"


INGEST_SYMBOLS = f"{PREFIX}:ingest:symbols"  # set of symbols with at least one active alert


def ingest_gone_key(alert_id: str) -> str:
    """Tombstone of an alert that is no longer active, so a late alert.created can't revive it."""
    return f"{PREFIX}:ingest:gone:{alert_id}"


def notifier_sent_key(trigger_id: str) -> str:
    """Marks a trigger whose email the SMTP server accepted."""
    return f"{PREFIX}:notifier:sent:{trigger_id}"


def notifier_lease_key(trigger_id: str) -> str:
    """Short lease held by the notifier replica that is sending this trigger's email."""
    return f"{PREFIX}:notifier:lease:{trigger_id}"


# Sorted set of trigger ids waiting for another delivery attempt, scored by when it is due (epoch ms).
# A replica that takes an id pushes its score forward by the claim time, so a crash only delays it.
NOTIFIER_RETRY_QUEUE = f"{PREFIX}:notifier:retry-queue"


def notifier_retry_key(trigger_id: str) -> str:
    """Hash with a retrying trigger's fields plus retry_attempts, retry_first_failed_ms, retry_last_error."""
    return f"{PREFIX}:notifier:retry:{trigger_id}"


def login_failures_key(scope: str, value: str) -> str:
    """Counter of failed logins per account or per client address."""
    return f"{PREFIX}:auth:login-failures:{scope}:{value}"


# Key families: every key a service keeps for itself starts with its family's prefix, so that its Redis
# ACL user (acl.py) is given the family and nothing else; a new key of a service belongs in its family.
# The evaluator's family is EVAL_INDEX_PREFIX; every worker's heartbeat is health_key(service, ...).
AUTH_KEYS = f"{PREFIX}:auth:"
INGEST_KEYS = f"{PREFIX}:ingest:"
NOTIFIER_KEYS = f"{PREFIX}:notifier:"


def login_pair_failures_key(email: str, address: str) -> str:
    """Counter of failed logins for one account from one client address."""
    return login_failures_key("account-address", f"{address}:{email}")


def login_known_addresses_key(email: str) -> str:
    """Sorted set of the client addresses an account logged in from, scored by the last success (epoch ms)."""
    return f"{PREFIX}:auth:login-known-addresses:{email}"


# Set of the user ids whose email address is not verified yet: auth adds a user when it registers
# and removes it when the address is verified; the notifier sends no alert mail to its members.
ACCOUNTS_UNVERIFIED = f"{AUTH_KEYS}unverified-accounts"


def signup_counter_key(scope: str, value: str) -> str:
    """Counter of registrations and verification mails per client address, or of resends per account."""
    return f"{PREFIX}:auth:signup:{scope}:{value}"


def signup_notice_key(value: str) -> str:
    """Set while a registration notice was mailed to this account or address within the window."""
    return f"{PREFIX}:auth:signup-notice:{value}"


def notifier_account_mail_sent_key(event_id: str) -> str:
    """Marks an account event whose mail the SMTP server accepted."""
    return f"{PREFIX}:notifier:account-mail-sent:{event_id}"


def notifier_account_mail_lease_key(event_id: str) -> str:
    """Short lease held by the notifier replica that is sending this account event's mail."""
    return f"{PREFIX}:notifier:account-mail-lease:{event_id}"


# Approximate MAXLEN per stream: far above any backlog a healthy consumer builds, so that trimming
# never removes entries still pending (Redis < 8.2 trims pending entries too).
STREAM_MAXLEN: dict[str, int] = {
    TICKS: 1_000_000,
    ALERT_EVENTS: 5_000_000,
    TRIGGERS: 1_000_000,
    NOTIFICATION_RESULTS: 1_000_000,
    SYMBOL_CATALOG: 10,
    SIGNING_KEYS: 100,
    ACCOUNT_EVENTS: 100_000,
}
DEAD_LETTER_MAXLEN = 100_000
