"""Every Redis stream, consumer group and key name of the system, defined once."""

PREFIX = "pricealert"

# Data-plane streams and keys are sharded by symbol (shards.py): every key of shard k carries the hash tag
# {s<k>}, so on Redis Cluster all of one shard's keys live in one slot and one script or MULTI may touch them
# together; on one Redis the names are just names. Kinds of the per-shard streams (shard_stream):
TICKS_KIND = "ticks"  # ingest
ALERT_EVENTS_KIND = "alert-events"  # alerts
TRIGGERS_KIND = "triggers"  # evaluator
NOTIFICATION_RESULTS_KIND = "notification-results"  # notifier
SHARDED_STREAM_KINDS = (TICKS_KIND, ALERT_EVENTS_KIND, TRIGGERS_KIND, NOTIFICATION_RESULTS_KIND)

# Control-plane streams: one each, not sharded (their traffic is small).
SYMBOL_CATALOG = f"{PREFIX}:symbol-catalog"  # ingest
SIGNING_KEYS = f"{PREFIX}:signing-keys"  # auth: public keys only
# Ingest's current prices for the API (prices.PriceQuote): hash symbol -> `<price> <epoch ms>`, from the exchange's
# all-symbols ticker every few seconds and the last trade of each subscribed symbol; GET /symbols reads it.
PRICES = f"{PREFIX}:prices"
# Whether ingest reaches the exchange (prices.ExchangeLink): a hash that expires unless a replica re-checks it.
EXCHANGE_LINK = f"{PREFIX}:exchange-link"
# Every account key (auth's limits, the account-events stream, the unverified set, the notifier's account mail
# marks) shares the tag {auth}: scripts and MULTIs combine them. Account traffic is small: one slot holds it all.
AUTH_TAG = "{auth}"
ACCOUNT_EVENTS = f"{PREFIX}:{AUTH_TAG}:account-events"  # auth: registrations, verification mails, verifications

SHARD_COUNT_KEY = f"{PREFIX}:shard-count"  # the shard count every process must agree on (shards.py)


def shard_prefix(shard: int) -> str:
    """The start of every key of `shard`: `pricealert:{s<shard>}:`."""
    return f"{PREFIX}:{{s{shard}}}:"


def shard_stream(shard: int, kind: str) -> str:
    """The stream of `kind` (TICKS_KIND, ...) of `shard`, e.g. `pricealert:{s3}:ticks`."""
    return f"{shard_prefix(shard)}{kind}"


def stream_kind(stream: str) -> str:
    """The kind of a per-shard stream (`ticks` of `pricealert:{s3}:ticks`), or the stream name itself if unsharded."""
    head, _, rest = stream.partition("}:")
    return rest if rest and head.startswith(f"{PREFIX}:{{s") else stream


def stream_shard(stream: str) -> int | None:
    """The shard of a per-shard stream or key, None for an unsharded one."""
    head, sep, _ = stream.partition("}:")
    marker = f"{PREFIX}:{{s"
    if not sep or not head.startswith(marker) or not head[len(marker) :].isdigit():
        return None
    return int(head[len(marker) :])


def ticks_stream(shard: int) -> str:
    """Trades of the shard's symbols, written by the ingest replica that owns the shard."""
    return shard_stream(shard, TICKS_KIND)


def alert_events_stream(shard: int) -> str:
    """alert.created / deleted / expired of alerts on the shard's symbols (alerts' outbox relay)."""
    return shard_stream(shard, ALERT_EVENTS_KIND)


def triggers_stream(shard: int) -> str:
    """Triggers of alerts on the shard's symbols (the evaluator replica that owns the shard)."""
    return shard_stream(shard, TRIGGERS_KIND)


def notification_results_stream(shard: int) -> str:
    """Outcomes of the shard's triggers' mails (notifier)."""
    return shard_stream(shard, NOTIFICATION_RESULTS_KIND)


def shard_owner_key(service: str, shard: int) -> str:
    """Lease on `shard` held by the replica of `service` (evaluator, ingest) that works it; value: its token."""
    return f"{shard_prefix(shard)}owner:{service}"


def members_key(service: str) -> str:
    """Sorted set of the live replicas of `service` sharing the shards, scored by their last beat (epoch ms)."""
    return f"{PREFIX}:members:{service}"


# Consumer groups, one per reading service.
GROUP_EVALUATOR = "evaluator"
GROUP_INGEST = "ingest"
GROUP_NOTIFIER = "notifier"
GROUP_ALERTS = "alerts"
GROUP_FEED = "feed"  # the alerts worker's feed writer: its own group on alert-events, triggers and results


def dead_letter_stream(stream: str) -> str:
    """Name of the dead-letter stream that collects what `stream`'s consumers gave up on."""
    return f"{stream}:dead"


def health_key(service: str, consumer: str) -> str:
    """TTL'd key a worker refreshes while its loop is alive (compose health checks read it)."""
    return f"{PREFIX}:health:{service}:{consumer}"


# Evaluator index, per shard: sorted sets of alert ids scored by target price, per symbol and direction.
def eval_prefix(shard: int) -> str:
    """Start of every evaluator key of `shard` (the evaluator's key family on it)."""
    return f"{shard_prefix(shard)}eval:"


def eval_above_key(shard: int, symbol: str) -> str:
    """Alerts on `symbol` that fire when a price is at or above their target."""
    return f"{eval_prefix(shard)}above:{symbol}"


def eval_below_key(shard: int, symbol: str) -> str:
    """Alerts on `symbol` that fire when a price is at or below their target."""
    return f"{eval_prefix(shard)}below:{symbol}"


def eval_cross_key(shard: int, symbol: str) -> str:
    """Cross alerts on `symbol` still waiting for the first tick that fixes their side."""
    return f"{eval_prefix(shard)}cross:{symbol}"


def eval_pct_key(shard: int, symbol: str, direction: str) -> str:
    """Percent alerts on `symbol` of one direction (up, down, move), scored by window index * 10 000 + percent."""
    return f"{eval_prefix(shard)}pct:{direction}:{symbol}"


def eval_adv_key(shard: int, symbol: str) -> str:
    """Hash of the smallest percent per window and direction of `symbol`'s percent alerts (exists while any do)."""
    return f"{eval_prefix(shard)}adv:{symbol}"


def eval_own_key(shard: int, symbol: str) -> str:
    """Set of `symbol`'s recurring percent alerts that measure their next move from their last firing."""
    return f"{eval_prefix(shard)}own:{symbol}"


def eval_window_key(shard: int, symbol: str) -> str:
    """Hash of `symbol`'s rolling windows: a summary and the low / high of each window's buckets."""
    return f"{eval_prefix(shard)}window:{symbol}"


def eval_defs_key(shard: int) -> str:
    """Hash of the shard's alerts indexed with their whole definition and state (alert id -> JSON): every alert
    but the v1-shaped ones, whose index member carries all they need."""
    return f"{eval_prefix(shard)}defs"


def eval_done_key(shard: int) -> str:
    """Tombstones of the shard's alerts that left the index (fired, deleted, expired), so a late create cannot
    revive one: sorted set of alert ids scored by when the tombstone expires (epoch ms)."""
    return f"{eval_prefix(shard)}done"


def ingest_prefix(shard: int) -> str:
    """Start of every ingest key of `shard`."""
    return f"{shard_prefix(shard)}ingest:"


def ingest_symbol_key(shard: int, symbol: str) -> str:
    """Set of active alert ids on `symbol` that keep ingest subscribed to it."""
    return f"{ingest_prefix(shard)}symbol:{symbol}"


def ingest_symbols_key(shard: int) -> str:
    """Set of the shard's symbols with at least one active alert."""
    return f"{ingest_prefix(shard)}symbols"


def ingest_gone_key(shard: int) -> str:
    """Tombstones of alerts no longer active, so a late alert.created can't revive one: alert id -> expiry (ms)."""
    return f"{ingest_prefix(shard)}gone"


def ingest_versions_key(shard: int) -> str:
    """The order of the latest change applied to each of the shard's alerts past its first definition, so an older
    one read late (another stream, a redelivery) can't undo it: alert id -> 2 x version, + 1 when it paused."""
    return f"{ingest_prefix(shard)}versions"


def ingest_last_trade_key(shard: int) -> str:
    """Hash symbol -> the last trade id written to the shard's ticks stream: a new owner skips what was written."""
    return f"{ingest_prefix(shard)}last-trade"


def notifier_prefix(shard: int) -> str:
    """Start of every notifier key of `shard`: a trigger's marks live in its symbol's shard."""
    return f"{shard_prefix(shard)}notifier:"


def notifier_sent_key(shard: int, trigger_id: str) -> str:
    """Marks a trigger whose email the SMTP server accepted."""
    return f"{notifier_prefix(shard)}sent:{trigger_id}"


def notifier_lease_key(shard: int, trigger_id: str) -> str:
    """Short lease held by the notifier replica that is sending this trigger's email."""
    return f"{notifier_prefix(shard)}lease:{trigger_id}"


def notifier_retry_queue_key(shard: int) -> str:
    """Sorted set of the shard's trigger ids waiting for another delivery attempt, scored by when it is due (epoch
    ms). A replica that takes an id pushes its score forward by the claim time, so a crash only delays it."""
    return f"{notifier_prefix(shard)}retry-queue"


def notifier_retry_key(shard: int, trigger_id: str) -> str:
    """Hash with a retrying trigger's fields plus retry_attempts, retry_first_failed_ms, retry_last_error."""
    return f"{notifier_prefix(shard)}retry:{trigger_id}"


def login_failures_key(scope: str, value: str) -> str:
    """Counter of failed logins per account or per client address."""
    return f"{AUTH_KEYS}login-failures:{scope}:{value}"


# Key families: every key a service keeps for itself starts with its family's prefix (per shard:
# eval_prefix, ingest_prefix, notifier_prefix), so that its Redis ACL user (acl.py) is given the family and
# nothing else; a new key of a service belongs in its family. Every worker's heartbeat is health_key(service, ...).
AUTH_KEYS = f"{PREFIX}:{AUTH_TAG}:auth:"
NOTIFIER_ACCOUNT_KEYS = f"{PREFIX}:{AUTH_TAG}:notifier:"


def login_pair_failures_key(email: str, address: str) -> str:
    """Counter of failed logins for one account from one client address."""
    return login_failures_key("account-address", f"{address}:{email}")


def login_known_addresses_key(email: str) -> str:
    """Sorted set of the client addresses an account logged in from, scored by the last success (epoch ms)."""
    return f"{AUTH_KEYS}login-known-addresses:{email}"


# Set of the user ids whose email address is not verified yet: auth adds a user when it registers
# and removes it when the address is verified; the notifier sends no alert mail to its members.
ACCOUNTS_UNVERIFIED = f"{AUTH_KEYS}unverified-accounts"


def signup_counter_key(scope: str, value: str) -> str:
    """Counter of registrations and verification mails per client address, or of resends per account."""
    return f"{AUTH_KEYS}signup:{scope}:{value}"


def signup_notice_key(value: str) -> str:
    """Set while a registration notice was mailed to this account or address within the window."""
    return f"{AUTH_KEYS}signup-notice:{value}"


def notifier_account_mail_sent_key(event_id: str) -> str:
    """Marks an account event whose mail the SMTP server accepted."""
    return f"{NOTIFIER_ACCOUNT_KEYS}account-mail-sent:{event_id}"


def notifier_account_mail_lease_key(event_id: str) -> str:
    """Short lease held by the notifier replica that is sending this account event's mail."""
    return f"{NOTIFIER_ACCOUNT_KEYS}account-mail-lease:{event_id}"


# Channels (channels.py): the alerts service owns them; it keeps each one's sending details in one registry hash that
# the notifier reads at send time, and asks the notifier for test sends through a stream, the outcome coming back
# on a short-lived list per request. One tag, {channels}: every key of the family in one slot.
CHANNEL_KEYS = f"{PREFIX}:{{channels}}:"
CHANNEL_REGISTRY = f"{CHANNEL_KEYS}registry"  # hash channel id -> ChannelSpec JSON (alerts writes, notifier reads)
CHANNEL_TESTS = f"{CHANNEL_KEYS}channel-tests"  # stream of ChannelTestRequest: alerts appends, the notifier consumes


def channel_test_reply_key(request_id: str) -> str:
    """List the notifier pushes one ChannelTestOutcome JSON onto; the API waits on it (BLPOP), then it expires."""
    return f"{CHANNEL_KEYS}test-reply:{request_id}"


# The live feed (feed.py): one bounded stream per user, written by the alerts worker, read by GET /events; and the
# single-use tickets a browser's EventSource opens it with. Each user's stream is its own hash tag.
FEED_KEYS = f"{PREFIX}:feed:"
FEED_MAXLEN = 1_000  # the history a reconnecting client can resume from (Last-Event-ID)


def feed_stream(user_id: str) -> str:
    """The user's feed of alert events (FeedEvent), newest last."""
    return f"{FEED_KEYS}{{{user_id}}}"


def feed_ticket_key(ticket_hash: str) -> str:
    """A single-use ticket for GET /events?ticket=…: holds the user id, by the SHA-256 of the ticket, briefly."""
    return f"{FEED_KEYS}ticket:{ticket_hash}"


# Approximate MAXLEN per stream, by kind for the per-shard streams (sized for the default 16 shards, so the
# totals stay what one stream had): far above any backlog a healthy consumer builds, so that trimming never
# removes entries still pending (Redis < 8.2 trims pending entries too).
STREAM_MAXLEN: dict[str, int] = {
    TICKS_KIND: 100_000,
    ALERT_EVENTS_KIND: 500_000,
    TRIGGERS_KIND: 100_000,
    NOTIFICATION_RESULTS_KIND: 100_000,
    SYMBOL_CATALOG: 10,
    SIGNING_KEYS: 100,
    ACCOUNT_EVENTS: 100_000,
    CHANNEL_TESTS: 10_000,
}
DEAD_LETTER_MAXLEN = 100_000
