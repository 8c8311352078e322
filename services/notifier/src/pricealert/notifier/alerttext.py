"""The words of an alert mail: what happened for each condition (docs/conditions.md), the firing, the user's message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from pricealert.common import alertmessage
from pricealert.common.events import PERCENT_CONDITIONS, RANGE_CONDITIONS, Condition, Frequency, Trigger
from pricealert.common.prices import format_price

LEVEL_TEXT = {Condition.ABOVE: "rose to", Condition.BELOW: "fell to", Condition.CROSS: "crossed"}
RANGE_TEXT = {Condition.ENTER_RANGE: "entered", Condition.EXIT_RANGE: "left"}
_CENT = Decimal("0.01")
EN_DASH = "\N{EN DASH}"  # between a range's bounds


@dataclass(frozen=True)
class AlertText:
    """One trigger's mail, in words: the subject, a headline, the detail rows, the user's message, closing notes."""

    subject: str
    headline: str
    rows: list[tuple[str, str]]
    message: str | None  # the user's message, rendered (plain text: the HTML template escapes it)
    notice: str | None  # shown first: the alert is paused
    closing: list[str]  # what happens to the alert now, and how to change that


def plain(value: Decimal | None) -> str:
    """A price or percent as people read it everywhere (prices.format_price); empty for none."""
    return "" if value is None else format_price(value)


def move_text(trigger: Trigger) -> str | None:
    """The trigger's own move (change_pct) in the same form (`5.00` reads `5`); as written if it is no decimal."""
    if not trigger.change_pct:
        return None
    try:
        return format_price(Decimal(trigger.change_pct))
    except (InvalidOperation, ValueError):
        return trigger.change_pct


def utc(ms: int) -> str:
    """Epoch ms as `2026-05-03 11:16:44.059` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def iso_utc(ms: int) -> str:
    """Epoch ms as ISO-8601 in UTC, `2026-05-03T11:16:44.059Z`."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(seconds: int) -> str:
    """A cooldown in its largest whole unit: `5 min`, `2 h`, `1 day`, `90 s`."""
    for unit, size in (("day", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds} s"


def one_line(text: str) -> str:
    """`text` with every line break made a space (a name is shown on one line)."""
    return " ".join(text.splitlines())


def change_pct(trigger: Trigger) -> Decimal | None:
    """The move of a percent alert's firing, in percent (signed): the trigger's, else from its reference price."""
    if trigger.change_pct:
        return Decimal(trigger.change_pct)
    if trigger.reference_price:
        return ((trigger.price - trigger.reference_price) * 100 / trigger.reference_price).quantize(
            _CENT, ROUND_HALF_EVEN
        )
    return None


def target(trigger: Trigger) -> str:
    """What the alert waited for: a price, `low<en dash>high`, or `percent % in window`."""
    if trigger.condition in RANGE_CONDITIONS:
        return f"{plain(trigger.low)}{EN_DASH}{plain(trigger.high)}"
    if trigger.condition in PERCENT_CONDITIONS:
        return f"{plain(trigger.percent)} % in {trigger.window}"
    return plain(trigger.target_price)


def placeholder_values(trigger: Trigger) -> dict[str, str]:
    """The values of the message placeholders (alertmessage.PLACEHOLDERS) for this firing; empty when it has none."""
    return {
        "symbol": trigger.symbol,
        "price": plain(trigger.price),
        "target": target(trigger),
        "condition": trigger.condition.value,
        "name": trigger.name or "",
        "time": iso_utc(trigger.exchange_time),
        "trade_id": str(trigger.trade_id),
        "change_pct": move_text(trigger) or "",
        "window": trigger.window or "",
    }


def _percent_words(trigger: Trigger) -> tuple[str, list[tuple[str, str]]]:
    """A percent alert's headline and rows: how far the price moved, from where, within which window."""
    move = change_pct(trigger)
    up = move >= 0 if move is not None else trigger.condition is not Condition.PCT_DOWN
    verb, extreme = ("rose", "lowest") if up else ("fell", "highest")
    if move is None and trigger.condition is Condition.PCT_MOVE:
        verb = "moved"  # a firing without its move: the direction is unknown
    size = plain(abs(move)) if move is not None else f"at least {plain(trigger.percent)}"
    headline = f"{trigger.symbol} {verb} {size} % within {trigger.window}"
    if trigger.reference_price is not None:
        headline += f": {plain(trigger.reference_price)} -> {plain(trigger.price)}"
    rows = [
        (
            "Condition",
            f"{trigger.condition.value}: a move of at least {plain(trigger.percent)} % within {trigger.window}",
        )
    ]
    if move is not None:
        rows.append(("Move", f"{'+' if up else '-'}{plain(abs(move))} %"))
    if trigger.reference_price is not None:
        rows.append(("From", f"{plain(trigger.reference_price)} (the {extreme} price within {trigger.window})"))
    return headline, rows


def describe(trigger: Trigger) -> AlertText:
    """The words of `trigger`'s mail."""
    price = plain(trigger.price)
    if trigger.condition in PERCENT_CONDITIONS:
        headline, rows = _percent_words(trigger)
        subject = f"{headline} ({trigger.condition.value} alert)"
    elif trigger.condition in RANGE_CONDITIONS:
        headline = f"{trigger.symbol} {RANGE_TEXT[trigger.condition]} {target(trigger)}"
        rows = [("Range", f"{target(trigger)} ({trigger.condition.value})")]
        subject = f"{headline} ({trigger.condition.value} alert) - traded at {price}"
    else:
        headline = f"{trigger.symbol} {LEVEL_TEXT[trigger.condition]} {target(trigger)}"
        rows = [("Target", f"{target(trigger)} ({trigger.condition.value})")]
        subject = f"{headline} ({trigger.condition.value} alert) - traded at {price}"
    rows += [
        ("Trade price", price),
        ("Trade id", str(trigger.trade_id)),
        ("Trade time", f"{utc(trigger.exchange_time)} (exchange time, UTC)"),
        ("Fired at", f"{utc(trigger.fired_at)} UTC"),
    ]
    recurring = trigger.frequency is Frequency.EVERY_TIME
    if recurring:
        rows.append(("Firing", f"#{trigger.firing}"))
        if trigger.cooldown_s is not None:
            rows.append(("Cooldown", duration(trigger.cooldown_s)))
        subject += f" - firing #{trigger.firing}" + (", alert paused" if trigger.paused else "")
    rows.append(("Alert id", trigger.alert_id))
    message = alertmessage.render(trigger.message, placeholder_values(trigger)) if trigger.message else None
    notice = (
        f"This alert fired {trigger.hour_firings} times within an hour, its limit, and is now paused: it will not fire "
        "again until you resume it."
        if trigger.paused
        else None
    )
    return AlertText(subject, headline, rows, message, notice, _closing(trigger))


def _closing(trigger: Trigger) -> list[str]:
    """What happens to the alert now, and how to change that."""
    alert = f"/alerts/{trigger.alert_id}"
    if trigger.paused:
        return [
            f'To resume it: PATCH {alert} with {{"status": "active"}} (its next firing will be '
            f"#{trigger.firing + 1}). To stop it for good: DELETE {alert}."
        ]
    if trigger.frequency is Frequency.EVERY_TIME:
        again = "move" if trigger.condition in PERCENT_CONDITIONS else "crossing"
        cooldown = f", no sooner than {duration(trigger.cooldown_s)} after this one" if trigger.cooldown_s else ""
        return [
            f"This alert stays active: it fires again at the next {again}{cooldown}. "
            f'Pause it with PATCH {alert} {{"status": "paused"}}, or delete it with DELETE {alert}.'
        ]
    return [f"This alert has fired and will not fire again; create a new one to keep watching {trigger.symbol}."]
