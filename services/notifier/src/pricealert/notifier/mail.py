"""Rendering a trigger into an email with plain-text and HTML alternatives."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from jinja2 import Environment, PackageLoader, select_autoescape

from pricealert.common.events import Condition, Trigger

_templates = Environment(
    loader=PackageLoader("pricealert.notifier", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    keep_trailing_newline=True,
)

CONDITION_TEXT = {Condition.ABOVE: "rose to", Condition.BELOW: "fell to", Condition.CROSS: "crossed"}


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _plain(value: object) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def message_id(trigger_id: str, mail_from: str) -> str:
    """A Message-ID derived from the trigger, so a duplicate send is recognisable as one."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "pricealert.localhost"
    return f"<trigger.{trigger_id}@{domain}>"


def subject(trigger: Trigger) -> str:
    """The subject: symbol, condition and target."""
    return f"{trigger.symbol} {CONDITION_TEXT[trigger.condition]} {_plain(trigger.target_price)} " \
           f"({trigger.condition.value} alert) - traded at {_plain(trigger.price)}"


def render(trigger: Trigger, *, mail_from: str, app_url: str) -> EmailMessage:
    """The complete email for one trigger."""
    context = {
        "symbol": trigger.symbol, "condition": trigger.condition.value,
        "condition_text": CONDITION_TEXT[trigger.condition], "target_price": _plain(trigger.target_price),
        "price": _plain(trigger.price), "exchange_time": _utc(trigger.exchange_time),
        "fired_at": _utc(trigger.fired_at), "name": trigger.name, "alert_id": trigger.alert_id,
        "app_url": app_url.rstrip("/"),
    }
    message = EmailMessage()
    display, address = parseaddr(mail_from)
    message["From"] = str(Address(display, addr_spec=address)) if display else address
    message["To"] = trigger.email
    message["Subject"] = subject(trigger)
    message["Date"] = formatdate(trigger.fired_at / 1000, usegmt=True)
    message["Message-ID"] = message_id(trigger.trigger_id, mail_from)
    message["X-Pricealert-Alert-Id"] = trigger.alert_id
    message.set_content(_templates.get_template("alert.txt.j2").render(context))
    message.add_alternative(_templates.get_template("alert.html.j2").render(context), subtype="html")
    return message
