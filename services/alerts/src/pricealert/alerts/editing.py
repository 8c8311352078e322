"""A PATCH of an alert: the edit it makes of the locked row, checked by the same rules as a create."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pricealert.alerts import rules
from pricealert.alerts.models import Alert, AlertStatus
from pricealert.alerts.schemas import AlertPatch
from pricealert.common.channels import join_channel_ids
from pricealert.common.errors import Conflict, InvalidInput
from pricealert.common.events import DEFAULT_COOLDOWN_S, LEVEL_CONDITIONS, CatalogSymbol, Condition, Frequency

EDITABLE = frozenset({AlertStatus.ACTIVE.value, AlertStatus.PAUSED.value})
# The definition's columns, beside the condition (not patchable).
SPEC_COLUMNS = ("frequency", "target_price", "low", "high", "percent", "window", "cooldown_s", "message")


@dataclass
class Edit:
    """The columns a PATCH changes (a new version), and what alert.updated says beside the new definition."""

    values: dict[str, Any] = field(default_factory=dict)
    resumes: bool = False  # paused -> active: counts against the limit of active alerts
    paused: bool = False  # the new version is paused
    previous_target_price: Decimal | None = None


def not_patchable(fields: tuple[str, ...]) -> InvalidInput:
    """The 422 of a PATCH naming the condition or the symbol."""
    return InvalidInput(
        f"{' and '.join(fields)} cannot be changed; create a new alert instead.",
        code="field_not_patchable",
        details={"fields": list(fields)},
    )


def spec_of(alert: Alert) -> rules.Spec:
    """The alert's definition as it is stored."""
    return rules.Spec(
        condition=Condition(alert.condition),
        frequency=Frequency(alert.frequency),
        target_price=alert.target_price,
        low=alert.low,
        high=alert.high,
        percent=alert.percent,
        window=alert.window,
        cooldown_s=alert.cooldown_s,
        message=alert.message,
    )


def _cooldown(old: rules.Spec, patch: AlertPatch, given: set[str], frequency: Frequency) -> int | None:
    """The new cooldown: the one given, else the old one while every_time, else the default (every_time only)."""
    if patch.cooldown_s is not None:
        return patch.cooldown_s
    if frequency is not Frequency.EVERY_TIME:
        return None
    if "cooldown_s" not in given and old.frequency is Frequency.EVERY_TIME:
        return old.cooldown_s
    return DEFAULT_COOLDOWN_S


def new_spec(old: rules.Spec, patch: AlertPatch, given: set[str]) -> rules.Spec:
    """The definition after the PATCH: each field it names replaced, the others kept."""
    values: dict[str, Any] = {
        name: getattr(patch, name) if name in given else getattr(old, name)
        for name in ("target_price", "low", "high", "percent", "window", "message")
    }
    frequency = patch.frequency if patch.frequency is not None else old.frequency
    return rules.Spec(
        condition=old.condition,
        frequency=frequency,
        cooldown_s=_cooldown(old, patch, given, frequency),
        **values,
    )


def plan_edit(alert: Alert, patch: AlertPatch, entry: CatalogSymbol | None, now: datetime) -> Edit | None:
    """The edit `patch` makes of `alert` (None when it changes nothing); raises when a rule refuses it."""
    if alert.status not in EDITABLE:
        raise Conflict(
            f"A {alert.status} alert cannot be changed.",
            code="alert_not_editable",
            details={"id": alert.id, "status": alert.status},
        )
    given = patch.given()
    old = spec_of(alert)
    spec = new_spec(old, patch, given)
    rules.check(spec)
    if entry is not None:
        rules.check_prices(rules.Spec(spec.condition, **{n: getattr(patch, n) for n in rules.PRICE_FIELDS}), entry)
    if "expires_at" in given and patch.expires_at is not None and patch.expires_at <= now:
        raise InvalidInput(
            "expires_at must be in the future.",
            code="expires_at_in_past",
            details={"expires_at": patch.expires_at.isoformat()},
        )
    wanted: dict[str, Any] = {name: getattr(spec, name) for name in SPEC_COLUMNS}
    wanted["frequency"] = spec.frequency.value
    for name in ("name", "expires_at"):
        if name in given:
            wanted[name] = getattr(patch, name)
    if patch.status is not None:
        wanted["status"] = patch.status
    if "channels" in given:  # checked against the user's channels before the transaction (service.update)
        wanted["channel_ids"] = join_channel_ids(patch.channels)
    edit = Edit(values={name: value for name, value in wanted.items() if getattr(alert, name) != value})
    if not edit.values:
        return None
    status = edit.values.get("status", alert.status)
    edit.resumes = alert.status == AlertStatus.PAUSED.value and status == AlertStatus.ACTIVE.value
    edit.paused = status == AlertStatus.PAUSED.value
    if "status" in edit.values:
        edit.values["paused_reason"] = None  # resumed, or paused by its owner
    edit.values.update(version=alert.version + 1, updated_at=now)
    if old.condition in LEVEL_CONDITIONS:
        edit.previous_target_price = old.target_price
    return edit
