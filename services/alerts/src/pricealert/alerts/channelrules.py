"""The rules of a channel's target (an address, a webhook URL, an Apprise URL) and its secrets and tokens."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import warnings

import apprise
from email_validator import EmailNotValidError, validate_email

from pricealert.common.channels import ChannelKind
from pricealert.common.errors import InvalidInput
from pricealert.common.urlguard import (
    Resolver,
    TargetPolicy,
    UnsafeTarget,
    check_apprise_url,
    check_webhook_url,
    redact_url,
)

MAX_TARGET_CHARS = 2000
SECRET_PREFIX = "whsec_"
# Apprise logs a URL it cannot parse in full, and a channel URL may hold tokens: this service only asks it
# whether a URL parses (the notifier sends), so its warnings carry nothing worth the leak. Its records stop at its
# own logger (no level change: Apprise's per-call log capture, which the notifier reads reasons from, stays whole).
_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.propagate = False
if not _APPRISE_LOG.handlers:
    _APPRISE_LOG.addHandler(logging.NullHandler())


def new_secret() -> str:
    """A webhook signing secret as Standard Webhooks writes it: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def new_token() -> str:
    """A verification token for a mailed link."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a verification token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def shown_target(kind: str, target: str) -> str:
    """What the API shows of a target: an address whole, a URL redacted."""
    return target if kind == ChannelKind.EMAIL.value else redact_url(target)


def _field_error(kind: ChannelKind, needs: str, refused: str | None) -> InvalidInput:
    if refused is not None:
        return InvalidInput(
            f"A {kind.value} channel takes no {refused}.",
            code="field_not_allowed",
            details={"kind": kind.value, "fields": [refused]},
        )
    return InvalidInput(
        "The request is invalid.",
        code="validation_error",
        details=[{"loc": ["body", needs], "msg": "Field required", "type": "missing"}],
    )


def target_of(kind: ChannelKind, address: str | None, url: str | None) -> str:
    """The one target field a kind takes (`address` for email, `url` otherwise), stripped; 422 for the other."""
    needs, given, other = ("address", address, url) if kind is ChannelKind.EMAIL else ("url", url, address)
    if other is not None:
        raise _field_error(kind, needs, "url" if kind is ChannelKind.EMAIL else "address")
    if given is None or not given.strip():
        raise _field_error(kind, needs, None)
    target = given.strip()
    if len(target) > MAX_TARGET_CHARS:
        raise InvalidInput(
            f"The {needs} may be at most {MAX_TARGET_CHARS} characters.",
            code="target_too_long",
            details={"max_chars": MAX_TARGET_CHARS},
        )
    return target


def normal_address(address: str) -> str:
    """An email address checked for its form (no DNS), its domain lower-cased; 422 invalid_email otherwise."""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"Not an email address: {exc}", code="invalid_email") from exc
    return f"{checked.local_part}@{checked.domain.lower()}"


def apprise_parses(url: str) -> bool:
    """Whether Apprise knows the URL's service and can parse it (nothing is sent)."""
    with warnings.catch_warnings():
        # Its plugins load on first use, and some import modules Python deprecates (imghdr): not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(apprise.Apprise().add(url))


async def check_url(kind: ChannelKind, url: str, policy: TargetPolicy, resolver: Resolver) -> None:
    """The SSRF guard on a webhook or Apprise URL (and Apprise's own parse); 422 with the guard's code."""
    try:
        if kind is ChannelKind.WEBHOOK:
            await check_webhook_url(url, policy, resolver)
            return
        if not apprise_parses(url):
            raise InvalidInput(
                "Apprise does not know this URL (see its list of services and URL forms).",
                code="invalid_apprise_url",
                details={"target": redact_url(url)},
            )
        await check_apprise_url(url, policy, resolver)
    except UnsafeTarget as exc:
        raise InvalidInput(exc.message, code=exc.code, details={"target": redact_url(url)}) from exc
