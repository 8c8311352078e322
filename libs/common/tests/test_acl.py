"""The Redis users of acl.py against names.py: every key has one writer, and the rules keep services apart."""

from __future__ import annotations

import hashlib
from fnmatch import fnmatchcase

import pytest
from names_testkit import sample_keys

from pricealert.common import acl, names

REDIS_6 = acl.ServerAcl((6, 2))
REDIS_7 = acl.ServerAcl((7, 4))
# Keyless commands that reach every key, or the server itself: no service's user may have them.
FORBIDDEN = (
    "+@all",
    "+@admin",
    "+@dangerous",
    "+@keyspace",
    "+@scripting",
    "+@stream",
    "+@pubsub",
    "+keys",
    "+flushall",
    "+flushdb",
    "+sort",
    "+config",
    "+acl",
    "+script|flush",
    "+function",
    "+scan",
    "+migrate",
)


def writers(key: str) -> list[str]:
    return [role.name for role in acl.SERVICES if role.may_write(key)]


WORKERS = ["alerts", "ingest", "evaluator", "notifier"]


@pytest.mark.parametrize(("origin", "key"), sorted(sample_keys().items()))
def test_every_key_in_names_is_written_by_exactly_one_service(origin: str, key: str) -> None:
    if key == names.SHARD_COUNT_KEY:
        assert writers(key) == WORKERS  # set NX by whichever worker starts first, read by all
        return
    shared = [writer for pattern, writer in acl.SHARED_KEYS.items() if fnmatchcase(key, pattern)]
    if shared:  # a hand-over between two services, listed with its reason in acl.py
        assert tuple(writers(key)) == shared[0]
        return
    assert len(writers(key)) == 1, (
        f"{origin} ({key}) is written by {writers(key) or 'no service'}: give it to "
        f"exactly one role in acl.py (a new key belongs in its service's key family)"
    )


def test_sample_keys_cover_every_stream_family_and_function() -> None:
    keys = sample_keys()
    assert {
        "SIGNING_KEYS",
        "SHARD_COUNT_KEY",
        "ticks_stream(13)",
        "AUTH_KEYS",
        "eval_prefix(13)",
        "login_failures_key(sample, sample)",
        "notifier_retry_key(13, sample)",
        "ingest_gone_key(13)",
        "shard_owner_key(evaluator, 13)",
        "members_key(ingest)",
    } <= keys.keys()


@pytest.mark.parametrize("shard", [0, 7, 15, 1023])
def test_the_per_shard_patterns_reach_every_shard_and_keep_services_apart(shard: int) -> None:
    assert writers(names.ticks_stream(shard)) == ["ingest"]
    assert writers(names.triggers_stream(shard)) == ["evaluator"]
    assert writers(names.alert_events_stream(shard)) == ["alerts"]
    assert writers(names.notification_results_stream(shard)) == ["notifier"]
    assert writers(names.eval_done_key(shard)) == ["evaluator"]
    assert writers(names.eval_above_key(shard, "BTCUSDT")) == ["evaluator"]
    assert writers(names.ingest_symbols_key(shard)) == ["ingest"]
    assert writers(names.ingest_last_trade_key(shard)) == ["ingest"]
    assert writers(names.notifier_retry_queue_key(shard)) == ["notifier"]
    assert writers(names.notifier_sent_key(shard, "t-1")) == ["notifier"]
    for service in ("evaluator", "ingest"):
        assert writers(names.shard_owner_key(service, shard)) == [service]
        assert writers(names.members_key(service)) == [service]
    assert acl.EVALUATOR.may_write(names.dead_letter_stream(names.ticks_stream(shard)))
    assert not acl.EVALUATOR.may_write(names.ticks_stream(shard))
    assert not acl.INGEST.may_write(names.shard_owner_key("evaluator", shard))


def test_account_keys_stay_with_auth_and_the_notifiers_account_mail() -> None:
    assert writers(names.ACCOUNT_EVENTS) == ["auth", "alerts"]  # alerts: an email channel's verification mail
    assert writers(names.notifier_account_mail_sent_key("e-1")) == ["notifier"]
    assert writers(names.login_known_addresses_key("ada@example.com")) == ["auth"]
    assert not any(role.reaches(names.AUTH_KEYS + "x") for role in acl.SERVICES if role is not acl.AUTH)


def test_auth_has_no_shard_key_and_no_shard_count() -> None:
    assert not acl.AUTH.reaches(names.SHARD_COUNT_KEY)
    assert not any(acl.AUTH.reaches(names.shard_stream(3, kind)) for kind in names.SHARDED_STREAM_KINDS)


@pytest.mark.parametrize("role", acl.SERVICES, ids=lambda r: r.name)
def test_a_consumer_writes_its_own_dead_letters_and_heartbeats_only(role: acl.Role) -> None:
    for stream in role.consumes:
        assert role.may_write(names.dead_letter_stream(stream))
        assert not role.may_write(stream) or stream in role.writes
    for other in acl.SERVICES:
        assert role.may_write(names.health_key(other.name, "host-1")) == (other is role and bool(role.consumes))


@pytest.mark.parametrize("stream", acl.consumed_streams())
def test_every_consumed_stream_has_one_writer(stream: str) -> None:
    assert len(writers(stream)) == 1 or tuple(writers(stream)) == acl.SHARED_KEYS.get(stream)


def test_the_signing_keys_are_written_by_auth_alone_and_read_by_alerts() -> None:
    assert writers(names.SIGNING_KEYS) == ["auth"]
    assert not acl.CLI.may_write(names.SIGNING_KEYS)
    assert names.SIGNING_KEYS in acl.ALERTS.reads
    reaching = [r.name for r in acl.ROLES if r.reaches(names.SIGNING_KEYS)]
    assert reaching == ["auth", "alerts", "cli"]


def test_redis_7_rules_keep_reads_and_consumed_streams_apart() -> None:
    rules = acl.rules(acl.ALERTS, ["0" * 64], REDIS_7)

    assert f"%R~{names.SIGNING_KEYS}" in rules and f"%R~{names.SYMBOL_CATALOG}" in rules
    assert f"~{acl.TRIGGERS}" not in rules  # only inside the selector, with the consumer's commands
    [selector] = [rule for rule in rules if rule.startswith("(")]
    assert selector == (
        f"(~{acl.TRIGGERS} ~{acl.NOTIFICATION_RESULTS} ~{acl.ALERT_EVENTS} " + " ".join(acl.CONSUME) + ")"
    )
    assert acl.TRIGGERS == "pricealert:{s*}:triggers"
    assert "+xadd" not in selector
    assert "+client|setinfo" in rules


def test_the_notifier_only_reads_the_unverified_accounts_and_only_with_smismember() -> None:
    rules = acl.rules(acl.NOTIFIER, ["0" * 64], REDIS_7)

    assert f"%R~{names.ACCOUNTS_UNVERIFIED}" in rules and f"~{names.ACCOUNTS_UNVERIFIED}" not in rules
    assert "+smismember" in rules and "+@set" not in rules
    assert acl.NOTIFIER.reaches(names.ACCOUNTS_UNVERIFIED) and not acl.NOTIFIER.may_write(names.ACCOUNTS_UNVERIFIED)
    assert writers(names.ACCOUNTS_UNVERIFIED) == ["auth"]


def test_a_key_a_script_only_reads_is_a_plain_pattern_and_no_write_command_reaches_it() -> None:
    """Redis 7 checks a script's declared keys as read and written: `%R~` would refuse a script that declares one."""
    role = acl.Role("reader", writes=("pricealert:reader:*",), script_reads=(names.ACCOUNTS_UNVERIFIED,))
    rules = acl.rules(role, ["0" * 64], REDIS_7)

    assert f"~{names.ACCOUNTS_UNVERIFIED}" in rules and f"%R~{names.ACCOUNTS_UNVERIFIED}" not in rules
    assert role.reaches(names.ACCOUNTS_UNVERIFIED) and not role.may_write(names.ACCOUNTS_UNVERIFIED)


def test_redis_6_rules_have_no_selectors_and_give_consumed_streams_as_keys() -> None:
    rules = acl.rules(acl.INGEST, ["0" * 64], REDIS_6)

    assert not any(rule.startswith(("%", "(")) for rule in rules)
    assert f"~{acl.ALERT_EVENTS}" in rules and f"~{acl.TRIGGERS}" in rules
    assert all(command in rules for command in acl.CONSUME)


@pytest.mark.parametrize("server", [REDIS_6, REDIS_7], ids=["redis6", "redis7"])
@pytest.mark.parametrize("role", acl.ROLES, ids=lambda r: r.name)
def test_rules_start_from_nothing_and_grant_no_keyless_power(role: acl.Role, server: acl.ServerAcl) -> None:
    rules = acl.rules(role, ["ab" * 32], server)

    assert rules[:3] == ["reset", "resetchannels", "on"] and f"#{'ab' * 32}" in rules
    assert not any(rule in ("~*", "allkeys", "allcommands", "nopass", "allchannels") for rule in rules)
    forbidden = set(FORBIDDEN) - ({"+scan"} if role is acl.CLI else set())
    granted = [rule for rule in rules if rule.startswith("+")]
    assert not forbidden & set(granted), role.name
    categories = [index for index, rule in enumerate(rules) if rule.startswith("+@")]
    assert all(index < rules.index("-@dangerous") for index in categories)  # SORT is taken back


def test_no_pattern_reaches_past_the_pricealert_prefix() -> None:
    for role in acl.ROLES:
        for pattern in (*role.own_keys, *role.consumes, *role.reads):
            assert pattern.startswith(f"{names.PREFIX}:"), (role.name, pattern)


def test_the_password_travels_as_its_sha256() -> None:
    assert acl.password_hash("s3cret") == hashlib.sha256(b"s3cret").hexdigest()


def test_roles_by_name_users_and_password_variables() -> None:
    assert acl.role("ingest") is acl.INGEST
    assert [r.user for r in acl.ROLES] == [
        f"pricealert-{n}" for n in ("auth", "alerts", "ingest", "evaluator", "notifier", "cli")
    ]
    assert acl.EVALUATOR.password_variable == "REDIS_PASSWORD_EVALUATOR"
    assert acl.ADMIN_USER not in [r.user for r in acl.ROLES]
    with pytest.raises(KeyError, match="docs"):
        acl.role("docs")


def test_server_versions() -> None:
    assert acl.ServerAcl.parse("6.2.14") == REDIS_6
    assert acl.ServerAcl.parse("7.0.15").selectors and acl.ServerAcl.parse("7.0.15").handshake() == ()
    assert acl.ServerAcl.parse("7.4.1").handshake() == ("+client|setinfo",)
    assert "+client|maint_notifications" in REDIS_6.handshake()


def test_a_script_may_declare_a_consumed_stream_only_through_its_own_selector() -> None:
    """The evaluator's fenced script has its shard's ticks stream in KEYS (it XACKs there), beside its own keys."""
    rules = acl.rules(acl.EVALUATOR, ["0" * 64], REDIS_7)

    selectors = [rule for rule in rules if rule.startswith("(")]
    [script] = [rule for rule in selectors if "+evalsha" in rule]
    assert f"~{acl.TICKS}" in script and f"~{acl.TRIGGERS}" in script
    assert script.endswith("+eval +evalsha)") and "+xadd" not in script
    assert f"~{acl.TICKS}" not in rules  # never a root pattern: no XADD to ticks
    for role in acl.SERVICES:
        assert set(role.script_consumes) <= set(role.consumes), role.name
    assert not any("+evalsha" in rule for rule in acl.rules(acl.EVALUATOR, ["0" * 64], REDIS_6) if "(" in rule)
