"""Rendering a trigger or an account event into a MIME email (plain text and HTML alternatives), ready for SMTP."""

from __future__ import annotations

import quopri
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from pricealert.common.events import AccountEvent, AccountEventType, Trigger
from pricealert.notifier.alerttext import describe, one_line
from pricealert.notifier.settings import NotifierSettings

_templates = Environment(
    loader=PackageLoader("pricealert.notifier", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    keep_trailing_newline=True,
)
_TEXT = _templates.get_template("alert.txt.j2")
_HTML = _templates.get_template("alert.html.j2")
# Each account event that calls for a mail: its subject and its template pair.
_ACCOUNT_MAILS = {
    AccountEventType.REGISTERED: ("Verify your email address for pricealert", "verify"),
    AccountEventType.VERIFICATION_RESENT: ("Verify your email address for pricealert", "verify"),
    AccountEventType.REGISTRATION_REPEATED: ("Someone tried to register your address at pricealert", "repeated"),
    AccountEventType.REGISTRATION_REFUSED: ("Your pricealert registration: the username is taken", "refused"),
    AccountEventType.CHANNEL_VERIFICATION: ("Verify this address for your pricealert alerts", "channel_verify"),
}
# Where each mail's verification link points: the page's route (a URL fragment, which never reaches a server or
# proxy log), which posts the token to auth (an account's address) or to alerts (an email channel's).
_VERIFY_ROUTES = {AccountEventType.CHANNEL_VERIFICATION: "/#/channels/verify"}
VERIFY_TOKEN_HEADER = "X-Pricealert-Verify-Token"


class UnsafeHeader(ValueError):
    """A header value that would break out of its header line."""


@dataclass(frozen=True)
class RenderedMail:
    """An email as bytes plus its envelope."""

    sender: str
    recipient: str
    message_id: str
    data: bytes


def _header(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise UnsafeHeader(f"line break in header value {value!r}")
    return value if value.isascii() else Header(value, "utf-8").encode()


def _quoted_printable(text: str) -> str:
    body = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8")).decode("ascii")
    return body.replace("\n", "\r\n")


@lru_cache(maxsize=8)
def _sender(mail_from: str) -> tuple[str, str, str]:
    """The From header, the envelope sender and the Message-ID domain of MAIL_FROM (parsed once)."""
    display, sender = parseaddr(mail_from)
    domain = sender.rpartition("@")[2] or "pricealert.localhost"
    return _header(formataddr((display, sender)) if display.isascii() else sender), sender, domain


def message_id(delivery_id: str, mail_from: str) -> str:
    """A Message-ID derived from the delivery (the trigger id for the account's address), so a duplicate send is
    recognisable as one (a recurring alert's `<alert id>:<n>` becomes `<alert id>.<n>`, a channel's
    `<trigger id>@<channel id>` `<trigger id>.<channel id>`: neither a colon nor a second @ has a place there)."""
    local = delivery_id.replace(":", ".").replace("@", ".")
    return f"<trigger.{local}@{_sender(mail_from)[2]}>"


def render(
    trigger: Trigger, settings: NotifierSettings, recipient: str | None = None, delivery_id: str | None = None
) -> RenderedMail:
    """The complete email for one trigger, to the account's address or to `recipient` (an email channel's, whose
    delivery is `delivery_id`); raises UnsafeHeader for addresses that could inject headers.

    The subject says what happened (alerttext.py); the alert's name and message go to the body only (escaped in the
    HTML part), never into a header.
    """
    to = trigger.email if recipient is None else recipient
    mail_from, app_url = settings.mail_from, settings.app_url
    text = describe(trigger)
    context = {
        "text": text,
        "name": one_line(trigger.name) if trigger.name else None,
        "symbol": trigger.symbol,
        "alert_id": trigger.alert_id,
        "app_url": app_url.rstrip("/"),
    }
    from_header, sender, _ = _sender(mail_from)
    msg_id = message_id(delivery_id or trigger.trigger_id, mail_from)
    boundary = f"=_pricealert_{trigger.trigger_id}"
    headers = [
        f"From: {from_header}",
        f"To: {_header(to)}",
        f"Subject: {_header(text.subject)}",
        f"Date: {formatdate(trigger.fired_at / 1000, usegmt=True)}",
        f"Message-ID: {_header(msg_id)}",
        f"X-Pricealert-Alert-Id: {_header(trigger.alert_id)}",
    ]
    data = _multipart(headers, boundary, _TEXT.render(context), _HTML.render(context))
    return RenderedMail(sender=sender, recipient=to, message_id=msg_id, data=data)


def needs_mail(event: AccountEvent) -> bool:
    """Whether an account event calls for a mail (a verification link or a notice)."""
    return event.type in _ACCOUNT_MAILS


def render_account(event: AccountEvent, *, mail_from: str, app_url: str) -> RenderedMail:
    """The mail an account event calls for; the verification link opens the page at `/#/verify` (an email channel's
    at `/#/channels/verify`), which sends the token to the API."""
    subject_text, template = _ACCOUNT_MAILS[event.type]
    base = app_url.rstrip("/")
    verify_path = _VERIFY_ROUTES.get(event.type, "/#/verify")
    context = {
        "email": event.email,
        "username": event.username,
        "token": event.token,
        "app_url": base,
        "verify_url": f"{base}{verify_path}?{urlencode({'token': event.token})}" if event.token else None,
        "expires_at": event.expires_at.strftime("%Y-%m-%d %H:%M UTC") if event.expires_at else None,
    }
    from_header, sender, domain = _sender(mail_from)
    msg_id = f"<account.{event.event_id}@{domain}>"
    headers = [
        f"From: {from_header}",
        f"To: {_header(event.email)}",
        f"Subject: {subject_text}",
        f"Date: {formatdate(event.occurred_at.timestamp(), usegmt=True)}",
        f"Message-ID: {_header(msg_id)}",
    ]
    if event.token:  # for scripts and the README's curl session: the token without decoding the body
        headers.append(f"{VERIFY_TOKEN_HEADER}: {_header(event.token)}")
    text = _templates.get_template(f"{template}.txt.j2").render(context)
    html = _templates.get_template(f"{template}.html.j2").render(context)
    data = _multipart(headers, f"=_pricealert_{event.event_id}", text, html)
    return RenderedMail(sender=sender, recipient=event.email, message_id=msg_id, data=data)


def _multipart(headers: list[str], boundary: str, text: str, html: str) -> bytes:
    """A multipart/alternative mail of `headers`, the plain text and the HTML, quoted-printable."""
    head = [*headers, "MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
    parts = [
        f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{_quoted_printable(body)}\r\n"
        for subtype, body in (("plain", text), ("html", html))
    ]
    data = "\r\n".join(head) + "\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n"
    return data.encode("ascii")


def render_test(recipient: str, request_id: str, mail_from: str, app_url: str) -> RenderedMail:
    """The short mail of a channel test (POST /channels/{id}/test) to `recipient`."""
    from_header, sender, domain = _sender(mail_from)
    msg_id = f"<channel-test.{request_id}@{domain}>"
    headers = [
        f"From: {from_header}",
        f"To: {_header(recipient)}",
        "Subject: pricealert: a test notification",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {_header(msg_id)}",
    ]
    context = {"email": recipient, "app_url": app_url.rstrip("/"), "request_id": request_id}
    text = _templates.get_template("channel_test.txt.j2").render(context)
    html = _templates.get_template("channel_test.html.j2").render(context)
    data = _multipart(headers, f"=_pricealert_test_{request_id}", text, html)
    return RenderedMail(sender=sender, recipient=recipient, message_id=msg_id, data=data)
