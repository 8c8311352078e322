"""Decoding hostile entries, and the one dead-letter layout: plain text, readable, restorable, bounded."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from pricealert.common.deadletter import (
    MAX_KEPT_FIELDS,
    MAX_KEPT_VALUE_BYTES,
    dead_letter_fields,
    decode_text,
    describe,
    encode_text,
    restore_fields,
)
from pricealert.common.events import (
    MAX_ENTRY_FIELDS,
    CatalogSnapshot,
    CatalogSymbol,
    MalformedEvent,
    Trigger,
    decode_entry,
    decode_fields,
)

FACTS = dict(stream="s", entry_id="1-0", group="g", consumer="c", deliveries=1)


def letter_of(raw: dict[bytes, bytes], reason: str = "why") -> dict[str, str]:
    return dead_letter_fields(raw, reason=reason, **FACTS)  # type: ignore[arg-type]


def originals(letter: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in letter.items() if not k.startswith("dl_")}


@pytest.mark.parametrize(
    "raw",
    [
        {b"symbol": b"\xff\xfe"},
        {b"\xff": b"BTCUSDT"},
        {b"ok": b"fine", b"price": b"1\x80"},
    ],
)
def test_an_entry_that_is_not_utf8_is_a_malformed_event(raw: dict[bytes, bytes]) -> None:
    with pytest.raises(MalformedEvent, match="not UTF-8"):
        decode_fields(raw)
    with pytest.raises(MalformedEvent, match="not UTF-8"):
        Trigger.from_fields(raw)


def test_the_decoding_error_names_the_field_readably() -> None:
    with pytest.raises(MalformedEvent) as caught:
        decode_fields({b"symbol": b"BTC", b"price": b"\xff" * 5000})
    message = str(caught.value)
    assert "'price'" in message and "\\xff" in message and len(message) < 300


def test_too_many_fields_or_too_long_a_value_is_a_malformed_event() -> None:
    with pytest.raises(MalformedEvent, match="fields"):
        decode_entry({f"f{i}".encode(): b"x" for i in range(MAX_ENTRY_FIELDS + 1)})
    with pytest.raises(MalformedEvent, match="bytes long"):
        Trigger.from_fields({b"name": b"x" * (1 << 20)})
    # The catalog carries the whole exchange in one field: it has no such limit.
    rows = [CatalogSymbol(symbol=f"S{i:05d}USDT", min_price=1, max_price=2, tick_size=1) for i in range(3000)]
    snapshot = CatalogSnapshot.build(rows, datetime.now(UTC))
    assert len(snapshot.symbols) > 65_536
    assert CatalogSnapshot.from_fields({k.encode(): v.encode() for k, v in snapshot.to_fields().items()}) == snapshot


def test_text_stays_text_and_anything_else_is_base64_with_a_prefix() -> None:
    assert encode_text(b"BTCUSDT") == "BTCUSDT"
    assert encode_text("Zürich €") == "Zürich €"
    assert encode_text(b"\xff\x00") == "b64:" + base64.b64encode(b"\xff\x00").decode()
    # Text that would be read as encoded, or as a dead-letter fact, is encoded too: nothing is ambiguous.
    assert encode_text("b64:abc").startswith("b64:") and decode_text(encode_text("b64:abc")) == b"b64:abc"
    assert encode_text("dl_reason") == "dl_reason"
    assert encode_text("dl_reason", name=True).startswith("b64:")
    assert encode_text("\ud800").startswith("b64:")  # a lone surrogate (never from Redis, but never a crash)
    with pytest.raises(ValueError, match="base64"):
        decode_text("b64:!!")


def test_a_dead_letter_keeps_the_entry_readably_and_restorably() -> None:
    raw = {
        b"symbol": b"BTCUSDT",
        b"price": b"\xff\xfe",
        b"\x80name": b"v",
        b"dl_reason": b"forged",
        b"note": b"b64:not really",
        b"": b"",
    }
    letter = letter_of(raw, reason="MalformedEvent: bad")
    assert letter["symbol"] == "BTCUSDT" and letter["price"].startswith("b64:")
    assert letter["dl_reason"] == "MalformedEvent: bad"  # the forged fact did not overwrite the real one
    assert letter["dl_stream"] == "s" and letter["dl_entry_id"] == "1-0" and "dl_truncated" not in letter
    assert restore_fields(originals(letter)) == raw
    json.dumps(letter)  # plain text throughout
    for name, value in letter.items():
        name.encode(), value.encode()  # what redis-py does; it must not raise


def test_a_megabyte_value_and_thousands_of_fields_are_cut_and_the_dead_letter_says_so() -> None:
    big = letter_of({b"symbol": b"BTCUSDT", b"price": b"9" * (1 << 20)})
    assert big["symbol"] == "BTCUSDT" and big["price"] == "9" * MAX_KEPT_VALUE_BYTES
    assert "price: 1048576 bytes" in big["dl_truncated"]
    many = letter_of({f"f{i}".encode(): b"x" for i in range(10_000)})
    assert len(originals(many)) == MAX_KEPT_FIELDS
    assert f"{10_000 - MAX_KEPT_FIELDS} more fields not kept" in many["dl_truncated"]
    # A cut that falls inside a character keeps the text as text.
    accented = letter_of({b"name": "é".encode() * MAX_KEPT_VALUE_BYTES})
    assert accented["name"] == "é" * (MAX_KEPT_VALUE_BYTES // 2)


def test_a_reason_of_any_size_or_content_is_kept_short_and_encodable() -> None:
    letter = letter_of({b"a": b"b"}, reason="\ud800" + "x" * 10_000)
    assert len(letter["dl_reason"]) < 2_100
    letter["dl_reason"].encode()


def test_describe_is_short_and_never_raises() -> None:
    text = describe({b"price": b"\xff" * 10_000, b"symbol": b"BTC", **{f"f{i}".encode(): b"x" for i in range(500)}})
    assert text.startswith("{price=b64:") and "symbol=BTC" in text and len(text) < 400
