"""Redis scripts live in the packages' lua/ folders, each with a header; those that append to a stream are checked."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*ROOT.glob("libs/*/src"), *ROOT.glob("services/*/src")]
# The scripts that XADD, each with the test that checks the fields it writes against its event class.
APPENDING = {
    "fire.lua": "test_triggers.py (Trigger.FIELDS)",
    "append_ticks.lua": "test_ticks.py (Tick.FIELDS, passed in)",
    "notice_once.lua": "test_account_events.py (AccountEvent.to_fields, passed in)",
}


def lua_files() -> list[Path]:
    return sorted(path for src in SOURCES for path in src.rglob("lua/*.lua"))


def test_no_python_source_carries_an_inline_script() -> None:
    inline = [str(p.relative_to(ROOT)) for src in SOURCES for p in src.rglob("*.py") if "redis.call(" in p.read_text()]
    assert inline == []


def test_every_script_opens_with_a_header_comment() -> None:
    assert lua_files()
    assert [p.name for p in lua_files() if not p.read_text().startswith("-- ")] == []


def test_only_the_checked_scripts_append_to_streams() -> None:
    assert sorted(p.name for p in lua_files() if "'XADD'" in p.read_text()) == sorted(APPENDING)
