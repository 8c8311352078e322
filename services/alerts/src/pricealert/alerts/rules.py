"""The rules of an alert's definition (docs/conditions.md), checked alike by a create and a PATCH.

Each broken rule is a 422 with its own stable code: `field_not_allowed`, `percent_out_of_range`, `unknown_window`,
`low_not_below_high`, `cooldown_out_of_range`, `message_too_long`, `unknown_placeholder`, `price_out_of_range`;
a field the condition needs and lacks is the `validation_error` FastAPI gives a missing field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pricealert.common.alertmessage import PLACEHOLDERS, unknown_placeholders
from pricealert.common.errors import InvalidInput
from pricealert.common.events import (
    DEFINITION_FIELDS,
    MAX_COOLDOWN_S,
    MAX_MESSAGE_CHARS,
    MAX_PERCENT,
    MIN_COOLDOWN_S,
    MIN_PERCENT,
    WINDOWS,
    CatalogSymbol,
    Condition,
    Frequency,
    definition_fields,
)
from pricealert.common.prices import format_price

PRICE_FIELDS = ("target_price", "low", "high")
PCT_DOWN_LIMIT = Decimal(100)  # a fall of 100 % or more cannot happen


@dataclass(frozen=True)
class Spec:
    """An alert's definition: its condition with the condition's fields, its frequency and its message."""

    condition: Condition
    frequency: Frequency = Frequency.ONCE
    target_price: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    percent: Decimal | None = None
    window: str | None = None
    cooldown_s: int | None = None
    message: str | None = None

    def present(self) -> set[str]:
        """The definition fields that hold a value."""
        return {name for name in DEFINITION_FIELDS if getattr(self, name) is not None}


def _missing(fields: list[str]) -> InvalidInput:
    # The answer FastAPI gives a missing field: a v1 create without target_price reads as it always did.
    details = [{"loc": ["body", name], "msg": "Field required", "type": "missing"} for name in fields]
    return InvalidInput("The request is invalid.", code="validation_error", details=details)


def check_fields(spec: Spec) -> None:
    """The condition's fields are there and no others; cooldown_s only on an every_time alert."""
    needs = definition_fields(spec.condition)
    present = spec.present()
    if extra := sorted(present - needs):
        raise InvalidInput(
            f"A {spec.condition.value} alert takes no {', '.join(extra)}.",
            code="field_not_allowed",
            details={"condition": spec.condition.value, "fields": extra, "allowed": sorted(needs)},
        )
    if spec.cooldown_s is not None and spec.frequency is not Frequency.EVERY_TIME:
        raise InvalidInput(
            "cooldown_s applies to every_time alerts only.",
            code="field_not_allowed",
            details={"frequency": spec.frequency.value, "fields": ["cooldown_s"]},
        )
    if missing := sorted(needs - present):
        raise _missing(missing)


def check_values(spec: Spec) -> None:
    """Percent, window, range, cooldown and message each within their bounds."""
    if spec.percent is not None:
        falls = spec.condition is Condition.PCT_DOWN
        top = PCT_DOWN_LIMIT if falls else MAX_PERCENT
        if spec.percent < MIN_PERCENT or spec.percent > top or (falls and spec.percent == top):
            bound = f"below {top}" if falls else f"at most {top}"
            raise InvalidInput(
                f"percent must be at least {MIN_PERCENT} and {bound} for {spec.condition.value}.",
                code="percent_out_of_range",
                details={"condition": spec.condition.value, "min": format_price(MIN_PERCENT), "max": format_price(top)},
            )
    if spec.window is not None and spec.window not in WINDOWS:
        raise InvalidInput(
            f"window must be one of {', '.join(WINDOWS)}.", code="unknown_window", details={"windows": list(WINDOWS)}
        )
    if spec.low is not None and spec.high is not None and spec.low >= spec.high:
        raise InvalidInput(
            "low must be below high.",
            code="low_not_below_high",
            details={"low": format_price(spec.low), "high": format_price(spec.high)},
        )
    if spec.cooldown_s is not None and not MIN_COOLDOWN_S <= spec.cooldown_s <= MAX_COOLDOWN_S:
        raise InvalidInput(
            f"cooldown_s must lie between {MIN_COOLDOWN_S} and {MAX_COOLDOWN_S} seconds.",
            code="cooldown_out_of_range",
            details={"min": MIN_COOLDOWN_S, "max": MAX_COOLDOWN_S},
        )
    if spec.message is not None:
        check_message(spec.message)


def check_message(message: str) -> None:
    """At most MAX_MESSAGE_CHARS characters, and only the known placeholders."""
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            f"message may be at most {MAX_MESSAGE_CHARS} characters.",
            code="message_too_long",
            details={"max_chars": MAX_MESSAGE_CHARS, "chars": len(message)},
        )
    if unknown := unknown_placeholders(message):
        known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
        named = ", ".join("{{" + name + "}}" for name in unknown)
        raise InvalidInput(
            f"Unknown placeholder {named} in message; the known ones are {known}.",
            code="unknown_placeholder",
            details={"unknown": unknown, "known": list(PLACEHOLDERS)},
        )


def check_prices(spec: Spec, entry: CatalogSymbol) -> None:
    """Each price of the definition within the symbol's PRICE_FILTER (a bound of 0 is no bound)."""
    low = entry.min_price if entry.min_price > 0 else None
    high = entry.max_price if entry.max_price > 0 else None
    for name in PRICE_FIELDS:
        price: Decimal | None = getattr(spec, name)
        if price is None:
            continue
        if (low is not None and price < low) or (high is not None and price > high):
            raise InvalidInput(
                f"{name} must lie within {entry.symbol}'s price filter.",
                code="price_out_of_range",
                details={
                    "symbol": entry.symbol,
                    "min_price": None if low is None else format_price(low),
                    "max_price": None if high is None else format_price(high),
                },
            )


def check(spec: Spec) -> None:
    """Every rule that needs no catalog: the fields, then their values."""
    check_fields(spec)
    check_values(spec)
