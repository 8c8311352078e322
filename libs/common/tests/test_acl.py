"""The Redis users of acl.py against names.py: every key has one writer, and the rules keep services apart."""

from __future__ import annotations

import hashlib

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


@pytest.mark.parametrize(("origin", "key"), sorted(sample_keys().items()))
def test_every_key_in_names_is_written_by_exactly_one_service(origin: str, key: str) -> None:
    assert len(writers(key)) == 1, (
        f"{origin} ({key}) is written by {writers(key) or 'no service'}: give it to "
        f"exactly one role in acl.py (a new key belongs in its service's key family)"
    )


def test_sample_keys_cover_every_stream_family_and_function() -> None:
    keys = sample_keys()
    assert {
        "SIGNING_KEYS",
        "TICKS",
        "AUTH_KEYS",
        "EVAL_INDEX_PREFIX",
        "login_failures_key",
        "notifier_retry_key",
        "ingest_gone_key",
    } <= keys.keys()


@pytest.mark.parametrize("role", acl.SERVICES, ids=lambda r: r.name)
def test_a_consumer_writes_its_own_dead_letters_and_heartbeats_only(role: acl.Role) -> None:
    for stream in role.consumes:
        assert role.may_write(names.dead_letter_stream(stream))
        assert not role.may_write(stream) or stream in role.writes
    for other in acl.SERVICES:
        assert role.may_write(names.health_key(other.name, "host-1")) == (other is role and bool(role.consumes))


@pytest.mark.parametrize("stream", acl.consumed_streams())
def test_every_consumed_stream_has_one_writer(stream: str) -> None:
    assert len(writers(stream)) == 1


def test_the_signing_keys_are_written_by_auth_alone_and_read_by_alerts() -> None:
    assert writers(names.SIGNING_KEYS) == ["auth"]
    assert not acl.CLI.may_write(names.SIGNING_KEYS)
    assert names.SIGNING_KEYS in acl.ALERTS.reads
    reaching = [r.name for r in acl.ROLES if r.reaches(names.SIGNING_KEYS)]
    assert reaching == ["auth", "alerts", "cli"]


def test_redis_7_rules_keep_reads_and_consumed_streams_apart() -> None:
    rules = acl.rules(acl.ALERTS, ["0" * 64], REDIS_7)

    assert f"%R~{names.SIGNING_KEYS}" in rules and f"%R~{names.SYMBOL_CATALOG}" in rules
    assert f"~{names.TRIGGERS}" not in rules  # only inside the selector, with the consumer's commands
    [selector] = [rule for rule in rules if rule.startswith("(")]
    assert selector == (f"(~{names.TRIGGERS} ~{names.NOTIFICATION_RESULTS} " + " ".join(acl.CONSUME) + ")")
    assert "+xadd" not in selector
    assert "+client|setinfo" in rules


def test_a_key_a_script_only_reads_is_a_plain_pattern_and_no_write_command_reaches_it() -> None:
    """Redis 7 checks a script's declared keys as read and written: `%R~` would refuse the notifier's lease script."""
    rules = acl.rules(acl.NOTIFIER, ["0" * 64], REDIS_7)

    assert f"~{names.ACCOUNTS_UNVERIFIED}" in rules and f"%R~{names.ACCOUNTS_UNVERIFIED}" not in rules
    assert "+sismember" in rules and "+@set" not in rules
    assert acl.NOTIFIER.reaches(names.ACCOUNTS_UNVERIFIED) and not acl.NOTIFIER.may_write(names.ACCOUNTS_UNVERIFIED)
    assert writers(names.ACCOUNTS_UNVERIFIED) == ["auth"]


def test_redis_6_rules_have_no_selectors_and_give_consumed_streams_as_keys() -> None:
    rules = acl.rules(acl.INGEST, ["0" * 64], REDIS_6)

    assert not any(rule.startswith(("%", "(")) for rule in rules)
    assert f"~{names.ALERT_EVENTS}" in rules and f"~{names.TRIGGERS}" in rules
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
