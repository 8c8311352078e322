"""Stream caps: production sizes, and the soak's divided ones (STREAM_MAXLEN_DIVISOR)."""

from __future__ import annotations

import pytest

from pricealert.common import names
from pricealert.common.publisher import MAXLEN_DIVISOR_VARIABLE, maxlen_for


def test_without_the_divisor_every_stream_has_its_production_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAXLEN_DIVISOR_VARIABLE, raising=False)
    assert maxlen_for(names.ticks_stream(3)) == names.STREAM_MAXLEN[names.TICKS_KIND]
    assert maxlen_for(names.dead_letter_stream(names.triggers_stream(0))) == names.DEAD_LETTER_MAXLEN
    assert maxlen_for(names.feed_stream("u1")) == names.FEED_MAXLEN


def test_the_divisor_shrinks_every_cap_but_never_below_a_hundred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAXLEN_DIVISOR_VARIABLE, "1000")
    assert maxlen_for(names.ticks_stream(3)) == 100
    assert maxlen_for(names.alert_events_stream(3)) == names.STREAM_MAXLEN[names.ALERT_EVENTS_KIND] // 1000
    assert maxlen_for(names.feed_stream("u1")) == 100
    assert maxlen_for(names.SIGNING_KEYS) == 100
    assert maxlen_for(names.SYMBOL_CATALOG) == names.STREAM_MAXLEN[names.SYMBOL_CATALOG]
