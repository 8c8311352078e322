"""On Redis Cluster a script or MULTI may touch keys of one slot only: each one's keys, for a sample call, checked.

No server: the keys come from `names` as the code builds them, the slots from redis-py's `key_slot` (CRC16). Every
data-plane key of shard k carries the tag {s<k>}; account keys share {auth}. The cluster tests run the same
scripts with "#!lua" on Redis 7 (scripts.py), which refuses at run time any key outside the declared keys' slot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.crc import key_slot

from pricealert.common import names
from pricealert.common.events import NotificationResult, Tick, Trigger
from pricealert.common.shards import shard_of

ROOT = Path(__file__).resolve().parents[2]

SYMBOL, EVENT = "BTCUSDT", "42"
TRIGGER, NEXT_TRIGGER = "9f1c2d3e", "7a6b5c4d:2"  # a once alert's, a recurring alert's second
SHARDS = 16
SHARD = shard_of(SYMBOL, SHARDS)
# A symbol of the same shard: a batch of one shard holds several symbols.
SAME_SHARD_SYMBOL = next(s for s in (f"X{i}USDT" for i in range(1000)) if shard_of(s, SHARDS) == SHARD)
EMAIL, ADDRESS = "ann@example.com", "203.0.113.7"


def eval_keys(symbol: str) -> list[str]:
    return [
        names.eval_cross_key(SHARD, symbol),
        names.eval_above_key(SHARD, symbol),
        names.eval_below_key(SHARD, symbol),
        names.eval_adv_key(SHARD, symbol),
        *(names.eval_pct_key(SHARD, symbol, direction) for direction in ("up", "down", "move")),
        names.eval_own_key(SHARD, symbol),
    ]


INDEX_KEYS = [
    *eval_keys(SYMBOL),
    names.eval_defs_key(SHARD),
    names.eval_done_key(SHARD),
    names.eval_window_key(SHARD, SYMBOL),
]


INGEST_KEYS = [
    names.ingest_symbol_key(SHARD, SYMBOL),
    names.ingest_symbols_key(SHARD),
    names.ingest_gone_key(SHARD),
    names.ingest_versions_key(SHARD),
]
LOGIN_KEYS = [
    names.login_pair_failures_key(EMAIL, ADDRESS),
    names.login_failures_key("address", ADDRESS),
    names.login_failures_key("account", EMAIL),
    names.login_known_addresses_key(EMAIL),
]


def trigger_keys(trigger: str) -> list[str]:
    return [
        names.notifier_sent_key(SHARD, trigger),
        names.notifier_lease_key(SHARD, trigger),
        names.notifier_retry_key(SHARD, trigger),
    ]


# Every script under a lua/ folder (LIBRARIES are pieces the evaluator's scripts include; they name no key):
# the keys one call touches, as its caller passes them in KEYS.
SCRIPTS: dict[str, list[str]] = {
    "put_channel.lua": [names.CHANNEL_REGISTRY],
    "count_login_attempt.lua": LOGIN_KEYS,
    "record_login_success.lua": LOGIN_KEYS,
    "count_signup_requests.lua": [
        names.signup_counter_key("address", ADDRESS),
        names.signup_counter_key("resend", EMAIL),
    ],
    "notice_once.lua": [names.signup_notice_key(EMAIL), names.ACCOUNT_EVENTS],
    # One batch of one shard's ticks, two symbols in it.
    "evaluate_ticks.lua": [
        names.shard_owner_key("evaluator", SHARD),
        Tick.stream_of(SHARD),
        Trigger.stream_of(SHARD),
        names.eval_done_key(SHARD),
        names.eval_defs_key(SHARD),
        *eval_keys(SYMBOL),
        names.eval_window_key(SHARD, SYMBOL),
        *eval_keys(SAME_SHARD_SYMBOL),
        names.eval_window_key(SHARD, SAME_SHARD_SYMBOL),
    ],
    "index_alert.lua": INDEX_KEYS,
    "index_def.lua": INDEX_KEYS,
    "unindex_alert.lua": INDEX_KEYS,
    "add_active_alert.lua": INGEST_KEYS,
    "remove_active_alert.lua": INGEST_KEYS,
    "pause_active_alert.lua": INGEST_KEYS,
    "append_ticks.lua": [
        names.shard_owner_key("ingest", SHARD),
        Tick.stream_of(SHARD),
        names.ingest_last_trade_key(SHARD),
    ],
    "claim_due_retries.lua": [names.notifier_retry_queue_key(SHARD)],
    # Two triggers of one shard in one batch.
    "lease_batch.lua": [*trigger_keys(TRIGGER), *trigger_keys(NEXT_TRIGGER)],
    "release_lease.lua": [names.notifier_lease_key(SHARD, TRIGGER)],
    "renew_lease.lua": [names.notifier_lease_key(SHARD, TRIGGER), names.notifier_sent_key(SHARD, TRIGGER)],
    "take_lease.lua": [names.notifier_sent_key(SHARD, TRIGGER), names.notifier_lease_key(SHARD, TRIGGER)],
    "renew_shard.lua": [names.shard_owner_key("evaluator", SHARD)],
    "release_shard.lua": [names.shard_owner_key("ingest", SHARD)],
}
LIBRARIES = {"member.lua", "defs.lua", "fire.lua", "levels.lua", "percent.lua"}

# Every MULTI (pipeline(transaction=True)): the keys one execution touches.
TRANSACTIONS: dict[str, list[str]] = {
    "common redelivery.py dead_letter": [names.dead_letter_stream(Trigger.stream_of(SHARD)), Trigger.stream_of(SHARD)],
    "cli deadletters.py replay": [Tick.stream_of(SHARD), names.dead_letter_stream(Tick.stream_of(SHARD))],
    "auth handlers.py _transaction": [names.ACCOUNT_EVENTS, names.ACCOUNTS_UNVERIFIED],
    "notifier accounts.py sent mark": [
        names.notifier_account_mail_sent_key(EVENT),
        names.notifier_account_mail_lease_key(EVENT),
    ],
    # A trigger from the retry queue that failed for good: result, dead letter, queue entry gone, ack.
    "notifier commit.py group commit": [
        NotificationResult.stream_of(SHARD),
        names.dead_letter_stream(Trigger.stream_of(SHARD)),
        names.notifier_lease_key(SHARD, TRIGGER),
        names.notifier_retry_queue_key(SHARD),
        names.notifier_retry_key(SHARD, TRIGGER),
        Trigger.stream_of(SHARD),
        names.notifier_sent_key(SHARD, TRIGGER),
        # A webhook's delivery of the same trigger: its keys are the delivery id's, in the trigger's shard.
        names.notifier_lease_key(SHARD, f"{TRIGGER}@c1"),
        names.notifier_retry_key(SHARD, f"{TRIGGER}@c1"),
        names.notifier_sent_key(SHARD, f"{TRIGGER}@c1"),
    ],
    # A channel test's outcome: pushed onto its reply list with the list's expiry.
    "notifier channeltests.py reply": [names.channel_test_reply_key("r1")],
}


def slots(keys: list[str]) -> dict[int, list[str]]:
    """The keys by the cluster slot each hashes to."""
    found: dict[int, list[str]] = {}
    for key in keys:
        found.setdefault(key_slot(key.encode()), []).append(key)
    return found


def test_every_script_is_listed() -> None:
    on_disk = {
        p.name for src in [*ROOT.glob("libs/*/src"), *ROOT.glob("services/*/src")] for p in src.rglob("lua/*.lua")
    }
    assert on_disk - LIBRARIES == set(SCRIPTS)


def test_every_transaction_is_listed() -> None:
    sources = [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    count = sum(path.read_text().count("pipeline(transaction=True)") for path in sources)
    assert count == len(TRANSACTIONS), "a MULTI was added or removed: list its keys in TRANSACTIONS"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_script_touches_one_slot(script: str) -> None:
    touched = slots(SCRIPTS[script])
    assert len(touched) == 1, f"{script} touches {len(touched)} slots: {touched}"


@pytest.mark.parametrize("transaction", sorted(TRANSACTIONS))
def test_a_transaction_touches_one_slot(transaction: str) -> None:
    touched = slots(TRANSACTIONS[transaction])
    assert len(touched) == 1, f"{transaction} touches {len(touched)} slots: {touched}"


def test_shards_do_not_share_a_slot() -> None:
    """The default shards hash to distinct slots: a cluster can spread them over every master."""
    tags = {key_slot(names.ticks_stream(k).encode()) for k in range(SHARDS)}
    assert len(tags) == SHARDS
