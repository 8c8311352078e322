"""Prometheus metrics of the auth service (names prefixed pricealert_auth_); request latency is common's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter

from pricealert.common.errors import AppError

LOGINS = Counter(
    "pricealert_auth_logins_total",
    'Login attempts by outcome: "ok" or the error code answered (invalid_credentials, '
    "too_many_login_attempts, account_disabled, ...).",
    ["outcome"],
)
REGISTRATIONS = Counter(
    "pricealert_auth_registrations_total",
    'Self-service registrations by outcome: "ok" (an account created), email_taken or '
    "username_taken (the address got a notice instead; the client saw the same answer), "
    "too_many_registrations.",
    ["outcome"],
)
VERIFICATIONS = Counter(
    "pricealert_auth_email_verifications_total",
    "Email verification attempts by outcome: verified, already_verified, "
    "invalid_verification_token, verification_token_expired.",
    ["outcome"],
)
REFRESHES = Counter(
    "pricealert_auth_refreshes_total",
    'Token refreshes by outcome: "ok" or the error code; token_revoked is a detected reuse '
    "of a refresh token, which ends its whole login session.",
    ["outcome"],
)

# Known outcomes start at 0, so a rate over them is 0 from the first scrape rather than absent.
for _counter, _outcomes in (
    (LOGINS, ("ok", "invalid_credentials", "too_many_login_attempts", "account_disabled")),
    (REGISTRATIONS, ("ok", "email_taken", "username_taken", "too_many_registrations")),
    (VERIFICATIONS, ("verified", "already_verified", "invalid_verification_token", "verification_token_expired")),
    (REFRESHES, ("ok", "token_revoked")),
):
    for _outcome in _outcomes:
        _counter.labels(_outcome)


@contextmanager
def outcome_of(counter: Counter, ok: str | None = "ok") -> Iterator[None]:
    """Count the block's outcome: `ok` (None: the block counts its own), or the code of the AppError it raised."""
    try:
        yield
    except AppError as exc:
        counter.labels(exc.code).inc()
        raise
    if ok is not None:
        counter.labels(ok).inc()
