"""An alert's own message: a template with {{placeholders}}, checked by the API and rendered by the notifier."""

from __future__ import annotations

import re
from collections.abc import Mapping

# The placeholders a message may use, in the order the API lists them.
PLACEHOLDERS = ("symbol", "price", "target", "condition", "name", "time", "trade_id", "change_pct", "window")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def unknown_placeholders(template: str) -> list[str]:
    """The placeholders of `template` that are not in PLACEHOLDERS, in order of first use."""
    unknown: list[str] = []
    for name in _PLACEHOLDER.findall(template):
        if name not in PLACEHOLDERS and name not in unknown:
            unknown.append(name)
    return unknown


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with each known placeholder replaced by its value (empty when the firing has none)."""
    return _PLACEHOLDER.sub(
        lambda m: values.get(m.group(1), m.group(0)) if m.group(1) in PLACEHOLDERS else m.group(0), template
    )
