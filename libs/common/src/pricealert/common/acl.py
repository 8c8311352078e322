"""Each service's Redis ACL user, defined once from names.py: the keys it writes, consumes and reads, and its commands.

A user writes its own keys (its key family, the streams it appends to, its dead letters and heartbeats),
consumes the streams it reads in its group, and only reads a few more. Redis 7 keeps the three apart:
`%R~` patterns are read-only, and a selector allows only the consumer-group commands on consumed
streams. Redis 6.2 has neither, so there a user may also write what it consumes or reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pricealert.common import names

USER_PREFIX = f"{names.PREFIX}-"
# Made by the Redis container at start-up (deploy/compose.yaml); the only user that may change users.
ADMIN_USER = f"{USER_PREFIX}admin"

# What a client sends by itself: redis-py's connection health check, a client name when one is set.
# On a Redis Cluster the client (redisconn.connect_cluster) learns which node serves which slot with CLUSTER SLOTS,
# and the commands' key positions with COMMAND (and COMMAND GETKEYS for XREADGROUP's): metadata, no data.
CONNECTION = ("+ping", "+client|setname", "+cluster|slots", "+command")
RUN_SCRIPTS = ("+eval", "+evalsha")
SCRIPTS = (*RUN_SCRIPTS, "+script|load", "+script|exists")
TRANSACTIONS = ("+multi", "+exec", "+discard")
KEY_LIFETIME = ("+exists", "+del", "+unlink", "+expire", "+pexpire", "+ttl", "+pttl")
APPEND = ("+xadd",)
READ_STREAMS = ("+xrange", "+xrevrange", "+xlen")
# The consumer loop (consumer.py) and the handlers that acknowledge their own entries; never XTRIM,
# XDEL, XSETID or XGROUP DESTROY on another service's stream. XAUTOCLAIM also serves a new shard owner that takes
# every pending entry (redelivery.take_all_pending).
CONSUME = ("+xgroup|create", "+xreadgroup", "+xack", "+xautoclaim", "+xpending", "+xinfo|groups", "+xrevrange")
# Written by the consumer loop; read by `pricealert health <service>`, the worker's compose health check.
HEARTBEAT = ("+set", "+get", "+ttl")
# `pricealert streams`, `shards` (leases and members), `health` and `dead-letters` (list, replay, drop).
INSPECT = (
    "+scan",
    "+get",
    "+ttl",
    "+pttl",
    "+exists",
    "+zrange",
    "+xinfo|stream",
    "+xinfo|groups",
    "+xinfo|consumers",
    "+xdel",
)


@dataclass(frozen=True)
class Role:
    """One Redis user: what its service writes, consumes in its consumer group, and only reads."""

    name: str
    writes: tuple[str, ...] = ()  # key patterns, read and written
    consumes: tuple[str, ...] = ()  # streams read in the service's consumer group
    reads: tuple[str, ...] = ()  # key patterns only read
    # Keys only read, but declared to a script: Redis 7 checks a script's declared keys as read and written,
    # so a read-only `%R~` pattern would refuse the script. They get a plain `~` pattern; what keeps them
    # read-only is that the user has no command that writes their type (e.g. SISMEMBER, no SADD/SREM).
    script_reads: tuple[str, ...] = ()
    # Consumed streams a script declares in KEYS (to XACK there, atomically with its effect). On Redis 7 a selector
    # lets EVAL/EVALSHA name them beside the user's own keys; inside, each call is checked as usual (XACK only).
    script_consumes: tuple[str, ...] = ()
    data_types: tuple[str, ...] = ()  # command categories of the keys it writes: "@string", "@set", ...
    commands: tuple[str, ...] = ()

    @property
    def user(self) -> str:
        """The ACL user name, e.g. pricealert-ingest."""
        return f"{USER_PREFIX}{self.name}"

    @property
    def password_variable(self) -> str:
        """The environment variable that holds this user's password, e.g. REDIS_PASSWORD_INGEST."""
        return f"REDIS_PASSWORD_{self.name.upper()}"

    @property
    def own_keys(self) -> tuple[str, ...]:
        """Every pattern it writes: `writes`, plus the dead letters and heartbeats of a consumer."""
        if not self.consumes:
            return self.writes
        dead = tuple(names.dead_letter_stream(stream) for stream in self.consumes)
        return (*self.writes, *dead, names.health_key(self.name, "*"))

    def may_write(self, key: str) -> bool:
        """Whether `key` matches one of the patterns this user writes on every Redis version."""
        return any(fnmatchcase(key, pattern) for pattern in self.own_keys)

    def reaches(self, key: str) -> bool:
        """Whether `key` matches any pattern of this user: written, consumed or read."""
        return any(
            fnmatchcase(key, pattern) for pattern in (*self.own_keys, *self.consumes, *self.reads, *self.script_reads)
        )


def family(prefix: str) -> str:
    """The pattern of every key that starts with `prefix`."""
    return f"{prefix}*"


# Every shard's copy of a key: `{s*}` stands for the hash tag of any shard (names.shard_prefix).
ANY_SHARD = f"{names.PREFIX}:{{s*}}:"


def on_every_shard(key_of: Callable[[int], str], *, whole_family: bool = False) -> str:
    """The pattern of `key_of(shard)` on every shard, e.g. `pricealert:{s*}:ticks` (`pricealert:{s*}:eval:*` for
    a family: `key_of` then gives the family's prefix)."""
    tail = key_of(0).removeprefix(names.shard_prefix(0))
    return f"{ANY_SHARD}{tail}" + ("*" if whole_family else "")


def shard_leases(service: str) -> tuple[str, ...]:
    """The lease keys of every shard and the members set of a service whose replicas share the shards."""
    return (on_every_shard(lambda shard: names.shard_owner_key(service, shard)), names.members_key(service))


TICKS = on_every_shard(names.ticks_stream)
ALERT_EVENTS = on_every_shard(names.alert_events_stream)
TRIGGERS = on_every_shard(names.triggers_stream)
NOTIFICATION_RESULTS = on_every_shard(names.notification_results_stream)
# Read by every worker, set (NX) by whichever starts first (shards.agree_on_shard_count): the one key that
# several services write. It holds a count that never changes without a migration.
SHARD_COUNT = names.SHARD_COUNT_KEY

# Auth's family holds its login and registration counters, the known addresses of each account and the
# set of unverified accounts (which the notifier reads); login scripts read the server's clock.
AUTH = Role(
    "auth",
    writes=(family(names.AUTH_KEYS), names.SIGNING_KEYS, names.ACCOUNT_EVENTS),
    data_types=("@string", "@set", "@sortedset"),
    commands=(*KEY_LIFETIME, *SCRIPTS, *TRANSACTIONS, *APPEND, *READ_STREAMS, "+time"),
)
CHANNEL_TEST_REPLIES = names.channel_test_reply_key("*")
# The keys two services write, on purpose: each is a hand-over between them (every other key has one writer).
# The shard count (SET NX by the first worker), account-events (auth's mails, and alerts' channel address checks:
# one event class, AccountEvent), and the test reply lists (the notifier pushes an outcome, the API pops it).
SHARED_KEYS: dict[str, tuple[str, ...]] = {
    SHARD_COUNT: ("alerts", "ingest", "evaluator", "notifier"),
    names.ACCOUNT_EVENTS: ("auth", "alerts"),
    CHANNEL_TEST_REPLIES: ("alerts", "notifier"),
}
# Alerts also keeps the channel registry (a hash, by script), asks the notifier for test sends and waits for the
# answer (BLPOP on a reply list), writes the users' feeds (read back with XREAD) and their tickets (SET, GETDEL),
# and stages channel verification mails on account-events; its feed writer consumes alert-events in group feed.
# It asks auth's set of unverified accounts (SISMEMBER, read-only) whether an email channel on the account's own
# address may be active at once.
ALERTS = Role(
    "alerts",
    writes=(
        ALERT_EVENTS,
        SHARD_COUNT,
        family(names.CHANNEL_KEYS),  # the registry, the channel-tests stream, the reply lists it pops
        family(names.FEED_KEYS),
        names.ACCOUNT_EVENTS,
    ),
    consumes=(TRIGGERS, NOTIFICATION_RESULTS, ALERT_EVENTS),
    reads=(
        names.SIGNING_KEYS,
        names.SYMBOL_CATALOG,
        names.ACCOUNTS_UNVERIFIED,
        names.PRICES,
        names.EXCHANGE_LINK,
    ),
    data_types=("@hash", "@list", "@string"),
    commands=(*KEY_LIFETIME, *SCRIPTS, *APPEND, *READ_STREAMS, "+xread", "+sismember"),
)
# Ingest and the evaluator share their shards by leases (ownership.py): SET NX and fenced scripts on the owner
# keys, a sorted set of live replicas.
INGEST = Role(
    "ingest",
    writes=(
        TICKS,
        names.SYMBOL_CATALOG,
        names.PRICES,  # current prices for GET /symbols, and whether the exchange answers (prices.py)
        names.EXCHANGE_LINK,
        on_every_shard(names.ingest_prefix, whole_family=True),
        *shard_leases("ingest"),
        SHARD_COUNT,
    ),
    consumes=(ALERT_EVENTS, TRIGGERS),
    data_types=("@set", "@string", "@sortedset", "@hash"),
    commands=(*KEY_LIFETIME, *SCRIPTS, *APPEND),
)
EVALUATOR = Role(
    "evaluator",
    writes=(on_every_shard(names.eval_prefix, whole_family=True), TRIGGERS, *shard_leases("evaluator"), SHARD_COUNT),
    consumes=(ALERT_EVENTS, TICKS),
    # The fenced evaluation script acknowledges the ticks it judged (evaluate_ticks.lua).
    script_consumes=(TICKS,),
    # Hashes: definitions and rolling windows; sets: recurring percent alerts measuring from their firing.
    data_types=("@sortedset", "@string", "@hash", "@set"),
    commands=(*KEY_LIFETIME, *SCRIPTS, *APPEND, "+time"),
)
# Beside its shard's lease script, the notifier asks auth's set of unverified accounts (tag {auth}, another slot:
# not in the script) which of a batch's users may get mail: SMISMEMBER, read-only; and the channel registry
# (HMGET, read-only); it answers test sends on their reply lists.
NOTIFIER = Role(
    "notifier",
    writes=(
        on_every_shard(names.notifier_prefix, whole_family=True),
        family(names.NOTIFIER_ACCOUNT_KEYS),
        NOTIFICATION_RESULTS,
        SHARD_COUNT,
        CHANNEL_TEST_REPLIES,
    ),
    consumes=(TRIGGERS, names.ACCOUNT_EVENTS, names.CHANNEL_TESTS),
    reads=(names.ACCOUNTS_UNVERIFIED, names.CHANNEL_REGISTRY),
    data_types=("@string", "@hash", "@sortedset", "@list"),
    commands=(*KEY_LIFETIME, *SCRIPTS, *APPEND, "+smismember", "+hmget"),
)
SERVICES: tuple[Role, ...] = (AUTH, ALERTS, INGEST, EVALUATOR, NOTIFIER)


def consumed_streams() -> tuple[str, ...]:
    """Every stream some service reads in a consumer group: the ones that collect dead letters."""
    return tuple(sorted({stream for role in SERVICES for stream in role.consumes}))


# The operator CLI reads everything of pricealert; it writes only where dead letters are replayed
# (and `alerts resync` re-publishes alert events), and deletes dead letters.
CLI = Role(
    "cli",
    # `alerts resync` may be the first to run on an empty Redis: it records the shard count then.
    writes=(*consumed_streams(), *map(names.dead_letter_stream, consumed_streams()), SHARD_COUNT),
    reads=(family(f"{names.PREFIX}:"),),
    commands=(*INSPECT, *APPEND, *READ_STREAMS, *TRANSACTIONS),
)
ROLES: tuple[Role, ...] = (*SERVICES, CLI)


def role(name: str) -> Role:
    """The role called `name` (a service or cli)."""
    for candidate in ROLES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no Redis user for {name!r}; choose from {', '.join(r.name for r in ROLES)}")


@dataclass(frozen=True)
class ServerAcl:
    """What the ACL of a Redis version understands."""

    version: tuple[int, int]

    @classmethod
    def parse(cls, version: str) -> ServerAcl:
        """From INFO's redis_version, e.g. "7.4.1"."""
        major, minor = (int(part) for part in version.split(".")[:2])
        return cls((major, minor))

    @property
    def selectors(self) -> bool:
        """`%R~` read-only patterns and (selectors): Redis 7.0 on."""
        return self.version >= (7, 0)

    def handshake(self) -> tuple[str, ...]:
        """The CLIENT subcommands redis-py sends on connect that this server would refuse into its ACL LOG.

        Redis 6 checks a rule's subcommand before the command itself, and accepts any name in a rule: allow
        both, the server then answers "unknown subcommand". Redis 7 answers that before any ACL check, and
        refuses rules with unknown names: allow CLIENT SETINFO from 7.2 on, which has it.
        """
        if self.version < (7, 0):
            return ("+client|setinfo", "+client|maint_notifications")
        return ("+client|setinfo",) if self.version >= (7, 2) else ()


def password_hash(password: str) -> str:
    """The SHA-256 form Redis stores (rule `#<hash>`): the password itself never travels to Redis."""
    return hashlib.sha256(password.encode()).hexdigest()


def rules(role: Role, password_hashes: Sequence[str], server: ServerAcl) -> list[str]:
    """The ACL SETUSER rules of `role`, from scratch (`reset`): nothing it had before survives."""
    out = ["reset", "resetchannels", "on", *(f"#{h}" for h in password_hashes)]
    out += [f"~{pattern}" for pattern in role.own_keys]
    out += [("%R~" if server.selectors else "~") + pattern for pattern in role.reads]
    out += [f"~{pattern}" for pattern in role.script_reads]
    commands = [*CONNECTION, *role.commands]
    if role.consumes:
        commands += [*HEARTBEAT, *APPEND, *TRANSACTIONS]  # the dead letter and its XACK are one MULTI
        if not server.selectors:
            out += [f"~{stream}" for stream in role.consumes]
            commands += CONSUME
    commands += server.handshake()
    # SORT, the only data-type command that is @dangerous, reaches keys by pattern past the key patterns.
    out += [f"+{category}" for category in role.data_types] + ["-@dangerous"] + _unique(commands)
    if role.consumes and server.selectors:
        out.append("(" + " ".join([*(f"~{stream}" for stream in role.consumes), *CONSUME]) + ")")
    if role.script_consumes and server.selectors:
        declared = (*role.own_keys, *role.script_reads, *role.script_consumes)
        out.append("(" + " ".join([*(f"~{pattern}" for pattern in declared), *RUN_SCRIPTS]) + ")")
    return out


def disabled_default_rules() -> list[str]:
    """The `default` user switched off: no password, no key, no command (unauthenticated clients get nothing)."""
    return ["reset", "resetchannels", "off"]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
