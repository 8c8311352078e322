"""On Redis Cluster a script or MULTI may touch keys of one slot only: each one's keys, for a sample call, checked.

No server: the keys come from `names` as the code builds them, the slots from redis-py's `key_slot` (CRC16).
Today most span several slots (issue 17); each such case is an xfail naming why, strict, so that the sharding
work that puts a hash tag in these names turns it green and must drop its mark.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.crc import key_slot

from pricealert.common import names

ROOT = Path(__file__).resolve().parents[2]

SYMBOL, ALERT, TRIGGER, EVENT = "BTCUSDT", "9f1c2d3e", "1733450000000-0", "42"
EMAIL, ADDRESS = "ann@example.com", "203.0.113.7"
EVAL_KEYS = [names.eval_above_key(SYMBOL), names.eval_below_key(SYMBOL), names.eval_cross_key(SYMBOL)]
INGEST_KEYS = [names.ingest_symbol_key(SYMBOL), names.INGEST_SYMBOLS, names.ingest_gone_key(ALERT)]
LOGIN_KEYS = [
    names.login_pair_failures_key(EMAIL, ADDRESS),
    names.login_failures_key("address", ADDRESS),
    names.login_failures_key("account", EMAIL),
    names.login_known_addresses_key(EMAIL),
]
TRIGGER_KEYS = [names.notifier_sent_key(TRIGGER), names.notifier_lease_key(TRIGGER), names.notifier_retry_key(TRIGGER)]

# Every script under a lua/ folder (member.lua is a library the evaluator's scripts include; it names no key):
# the keys one call touches. The evaluator's scripts build theirs inside Lua from a prefix (no KEYS).
SCRIPTS: dict[str, list[str]] = {
    "count_login_attempt.lua": LOGIN_KEYS,
    "record_login_success.lua": LOGIN_KEYS,
    "count_signup_requests.lua": [
        names.signup_counter_key("address", ADDRESS),
        names.signup_counter_key("resend", EMAIL),
    ],
    "notice_once.lua": [names.signup_notice_key(EMAIL), names.ACCOUNT_EVENTS],
    # One tick of one symbol firing one alert (a batch holds ticks of many symbols, making it worse).
    "evaluate_ticks.lua": [*EVAL_KEYS, names.eval_done_key(ALERT), names.TRIGGERS, names.TICKS],
    "index_alert.lua": [*EVAL_KEYS, names.eval_done_key(ALERT)],
    "unindex_alert.lua": [*EVAL_KEYS, names.eval_done_key(ALERT)],
    "add_active_alert.lua": INGEST_KEYS,
    "remove_active_alert.lua": INGEST_KEYS,
    "append_ticks.lua": [names.TICKS],
    "claim_due_retries.lua": [names.NOTIFIER_RETRY_QUEUE],
    # Two triggers in one batch.
    "lease_batch.lua": [
        names.ACCOUNTS_UNVERIFIED,
        *TRIGGER_KEYS,
        names.notifier_sent_key("1733450000001-0"),
        names.notifier_lease_key("1733450000001-0"),
        names.notifier_retry_key("1733450000001-0"),
    ],
    "release_lease.lua": [names.notifier_lease_key(TRIGGER)],
    "renew_lease.lua": [names.notifier_lease_key(TRIGGER), names.notifier_sent_key(TRIGGER)],
    "take_lease.lua": [names.notifier_sent_key(TRIGGER), names.notifier_lease_key(TRIGGER)],
}
LIBRARIES = {"member.lua"}

# Every MULTI (pipeline(transaction=True)): the keys one execution touches.
TRANSACTIONS: dict[str, list[str]] = {
    "common redelivery.py dead_letter": [names.dead_letter_stream(names.TRIGGERS), names.TRIGGERS],
    "cli deadletters.py replay": [names.TRIGGERS, names.dead_letter_stream(names.TRIGGERS)],
    "auth handlers.py _transaction": [names.ACCOUNT_EVENTS, names.ACCOUNTS_UNVERIFIED],
    "notifier accounts.py sent mark": [
        names.notifier_account_mail_sent_key(EVENT),
        names.notifier_account_mail_lease_key(EVENT),
    ],
    # A trigger from the retry queue that failed for good: result, dead letter, queue entry gone, ack.
    "notifier commit.py group commit": [
        names.NOTIFICATION_RESULTS,
        names.dead_letter_stream(names.TRIGGERS),
        names.notifier_lease_key(TRIGGER),
        names.NOTIFIER_RETRY_QUEUE,
        names.notifier_retry_key(TRIGGER),
        names.TRIGGERS,
        names.notifier_sent_key(TRIGGER),
    ],
}

# Why each one spans slots today: what the sharding work has to change (issue 17, "Shards by hash tag").
OFFENDERS = {
    "count_login_attempt.lua": "the pair's, address's and account's failure counters and known addresses",
    "record_login_success.lua": "the same four login keys as count_login_attempt.lua",
    "count_signup_requests.lua": "the per-address and per-account sign-up counters",
    "notice_once.lua": "the notice mark and the account-events stream",
    "evaluate_ticks.lua": "the symbols' index keys, tombstones, triggers, ticks (XACK), built in Lua, no KEYS",
    "index_alert.lua": "the symbol's above/below/cross keys and the alert's tombstone, built in Lua, no KEYS",
    "unindex_alert.lua": "the symbol's above/below/cross keys and the alert's tombstone, built in Lua, no KEYS",
    "add_active_alert.lua": "the symbol's alert set, the symbols set and the alert's tombstone",
    "remove_active_alert.lua": "the symbol's alert set, the symbols set and the alert's tombstone",
    "lease_batch.lua": "the unverified-accounts set and each trigger's sent, lease and retry keys",
    "renew_lease.lua": "the trigger's lease and sent keys",
    "take_lease.lua": "the trigger's (or account mail's) sent and lease keys",
    "common redelivery.py dead_letter": "XADD to the dead-letter stream with XACK on the stream",
    "cli deadletters.py replay": "XADD to the stream with XDEL on its dead-letter stream",
    "auth handlers.py _transaction": "the account-events stream and the unverified-accounts set",
    "notifier accounts.py sent mark": "the account mail's sent mark and its lease",
    "notifier commit.py group commit": "results stream, dead letters, lease, retry queue and hash, XACK on triggers",
}


def _case(name: str) -> object:
    if name in OFFENDERS:
        reason = f"spans several slots: {OFFENDERS[name]} (issue 17, shards by hash tag)"
        return pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=True))
    return name


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


@pytest.mark.parametrize("script", [_case(name) for name in sorted(SCRIPTS)])
def test_a_script_touches_one_slot(script: str) -> None:
    touched = slots(SCRIPTS[script])
    assert len(touched) == 1, f"{script} touches {len(touched)} slots: {touched}"


@pytest.mark.parametrize("transaction", [_case(name) for name in sorted(TRANSACTIONS)])
def test_a_transaction_touches_one_slot(transaction: str) -> None:
    touched = slots(TRANSACTIONS[transaction])
    assert len(touched) == 1, f"{transaction} touches {len(touched)} slots: {touched}"
