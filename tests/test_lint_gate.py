"""The lint gate covers every package, fails on what it finds, and runs in CI before the tests."""

# Tests may ignore redis-py's loose typing without comment; shipped code and tools say why.

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text()
# A `type: ignore[code]` is followed by `# why`, on the same line.
IGNORE_WITH_REASON = re.compile(r"type: ignore\[[\w,-]+\]\s+#\s*\S")


def _match(pattern: str) -> str:
    found = re.search(pattern, MAKEFILE, re.M | re.S)
    assert found is not None, pattern
    return found.group(found.lastindex or 0)


def test_mypy_covers_every_package() -> None:
    sources = set(_match(r"^SOURCES :=(.*?)(?<!\\)\n").replace("\\", " ").split())
    packages = {str(p.relative_to(ROOT)) for p in ROOT.glob("*/*/src") if p.parent.parent.name in {"libs", "services"}}
    assert sources == packages


def test_lint_fails_on_what_it_finds() -> None:
    lint = _match(r"^lint:.*?(?=^\S|\Z)")
    assert "ruff check ." in lint
    assert "ruff format --check ." in lint
    assert "mypy $(SOURCES)" in lint
    assert "|| true" not in lint and "-" + "$(UV)" not in lint


def test_ci_lints_before_it_tests() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines.index("make lint") < lines.index("make test")


def test_every_type_ignore_says_why() -> None:
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in [*ROOT.glob("*/*/src"), ROOT / "bench", ROOT / "chaos"]
        for path in folder.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "type: ignore" in line and not IGNORE_WITH_REASON.search(line)
    ]
    assert not bare, f"type: ignore without a reason: {bare}"
