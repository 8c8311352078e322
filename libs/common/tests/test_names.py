"""Per-shard names: parsed back to their shard and kind, and every key of one shard in one Redis Cluster slot."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.crc import key_slot

from pricealert.common import names

SYMBOL = "BTCUSDT"
# Every key a shard has, by its name function.
SHARD_KEYS: dict[str, Callable[[int], str]] = {
    "ticks_stream": names.ticks_stream,
    "alert_events_stream": names.alert_events_stream,
    "triggers_stream": names.triggers_stream,
    "notification_results_stream": names.notification_results_stream,
    "ticks dead letters": lambda k: names.dead_letter_stream(names.ticks_stream(k)),
    "triggers dead letters": lambda k: names.dead_letter_stream(names.triggers_stream(k)),
    "alert-events dead letters": lambda k: names.dead_letter_stream(names.alert_events_stream(k)),
    "notification-results dead letters": lambda k: names.dead_letter_stream(names.notification_results_stream(k)),
    "evaluator owner": lambda k: names.shard_owner_key("evaluator", k),
    "ingest owner": lambda k: names.shard_owner_key("ingest", k),
    "eval_above_key": lambda k: names.eval_above_key(k, SYMBOL),
    "eval_below_key": lambda k: names.eval_below_key(k, SYMBOL),
    "eval_cross_key": lambda k: names.eval_cross_key(k, SYMBOL),
    "eval_done_key": names.eval_done_key,
    "ingest_symbol_key": lambda k: names.ingest_symbol_key(k, SYMBOL),
    "ingest_symbols_key": names.ingest_symbols_key,
    "ingest_gone_key": names.ingest_gone_key,
    "ingest_versions_key": names.ingest_versions_key,
    "ingest_last_trade_key": names.ingest_last_trade_key,
    "notifier_sent_key": lambda k: names.notifier_sent_key(k, "t-1"),
    "notifier_lease_key": lambda k: names.notifier_lease_key(k, "t-1"),
    "notifier_retry_key": lambda k: names.notifier_retry_key(k, "t-1"),
    "notifier_retry_queue_key": names.notifier_retry_queue_key,
}
ACCOUNT_KEYS = [
    names.ACCOUNT_EVENTS,
    names.dead_letter_stream(names.ACCOUNT_EVENTS),
    names.ACCOUNTS_UNVERIFIED,
    names.login_failures_key("account", "ada@example.com"),
    names.login_pair_failures_key("ada@example.com", "10.0.0.1"),
    names.login_known_addresses_key("ada@example.com"),
    names.signup_counter_key("address", "10.0.0.1"),
    names.signup_notice_key("ada@example.com"),
    names.notifier_account_mail_sent_key("e-1"),
    names.notifier_account_mail_lease_key("e-1"),
]


@pytest.mark.parametrize("shard", [0, 1, 7, 15, 16, 1023])
@pytest.mark.parametrize("kind", names.SHARDED_STREAM_KINDS)
def test_a_shard_stream_gives_back_its_shard_and_kind(shard: int, kind: str) -> None:
    stream = names.shard_stream(shard, kind)
    assert stream == f"pricealert:{{s{shard}}}:{kind}"
    assert names.stream_shard(stream) == shard and names.stream_kind(stream) == kind
    assert names.stream_shard(names.dead_letter_stream(stream)) == shard


def test_the_kind_functions_are_shard_stream_of_their_kind() -> None:
    assert names.ticks_stream(4) == names.shard_stream(4, names.TICKS_KIND)
    assert names.alert_events_stream(4) == names.shard_stream(4, names.ALERT_EVENTS_KIND)
    assert names.triggers_stream(4) == names.shard_stream(4, names.TRIGGERS_KIND)
    assert names.notification_results_stream(4) == names.shard_stream(4, names.NOTIFICATION_RESULTS_KIND)


@pytest.mark.parametrize("stream", [names.SYMBOL_CATALOG, names.SIGNING_KEYS, names.ACCOUNT_EVENTS, "ticks"])
def test_an_unsharded_name_has_no_shard_and_is_its_own_kind(stream: str) -> None:
    assert names.stream_shard(stream) is None
    assert names.stream_kind(stream) == stream


def test_the_shard_stream_kinds_have_a_maxlen() -> None:
    assert set(names.SHARDED_STREAM_KINDS) <= names.STREAM_MAXLEN.keys()


@pytest.mark.parametrize("shard", [0, 3, 15, 255])
def test_every_key_of_a_shard_hashes_to_one_slot(shard: int) -> None:
    slots = {name: key_slot(key_of(shard).encode()) for name, key_of in SHARD_KEYS.items()}
    assert set(slots.values()) == {key_slot(f"s{shard}".encode())}, slots


def test_the_shards_spread_over_the_slots() -> None:
    slots = {key_slot(names.ticks_stream(k).encode()) for k in range(16)}
    assert len(slots) == 16
    masters = {slot * 3 // 16384 for slot in slots}  # the three equal slot ranges of a 3-master cluster
    assert masters == {0, 1, 2}


def test_every_account_key_hashes_to_the_auth_slot() -> None:
    assert {key_slot(key.encode()) for key in ACCOUNT_KEYS} == {key_slot(b"auth")}
