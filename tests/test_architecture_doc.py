"""docs/architecture.md matches the tree: every stream's row, every file it names, every service's shape."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pricealert.common import channels, events, names

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()
SERVICES = ("auth", "alerts", "ingest", "evaluator", "notifier")
SHAPE = ("__main__.py", "settings.py", "metrics.py", "handlers.py")
# The stream contracts: events.py's, and channels.py's test requests.
STREAM_CLASSES = list(
    {
        cls
        for module in (events, channels)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, events.Event) and (cls.stream or cls.kind)
    }
)
# A stream name as the docs write it: `pricealert:{s<k>}:ticks` for a per-shard stream (any shard k),
# `pricealert:{auth}:account-events` for one in a named slot, `pricealert:symbol-catalog` for the others.
STREAM_NAME = r"pricealert:(?:\{[a-z0-9<>]+\}:)?[a-z-]+"


def documented_name(cls: type[events.Event]) -> str:
    """The name the docs give the stream(s) of `cls`: one stream, or every shard's written with `<k>`."""
    return cls.stream or f"{names.PREFIX}:{{s<k>}}:{cls.kind}"


def untagged(stream: str) -> str:
    """The stream name without its hash tag (`pricealert:ticks` for `pricealert:{s3}:ticks`): code and docstrings
    may name one shard's stream, or write the tag another way, and still mean the row of that stream."""
    return re.sub(r"\{[^}]*\}:", "", stream)


def _rows(text: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in text.splitlines():
        if found := re.match(rf"\| `({STREAM_NAME})` \|", line):
            rows.setdefault(found[1], line)  # the Streams table comes first; the redis-cli one names no fields
    return rows


def _stream_rows() -> dict[str, str]:
    return _rows(DOC)


def _package_dir(area: str) -> Path:
    return ROOT / ("libs" if area == "common" else "services") / area / "src" / "pricealert" / area


def test_every_stream_has_its_row_with_its_class() -> None:
    rows = _stream_rows()
    assert {documented_name(cls) for cls in STREAM_CLASSES} == set(rows)
    for cls in STREAM_CLASSES:
        assert f"`{cls.__name__}`" in rows[documented_name(cls)]


def test_every_file_the_doc_names_exists() -> None:
    named = set(re.findall(r"`(common|auth|alerts|ingest|evaluator|notifier)/([\w/]+\.(?:py|lua|sql))", DOC))
    assert named, "the doc names no files"
    missing = [f"{area}/{path}" for area, path in named if not (_package_dir(area) / path).is_file()]
    assert not missing


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_shape_and_lists_its_streams(service: str) -> None:
    folder = _package_dir(service)
    assert [name for name in SHAPE if not (folder / name).is_file()] == []
    docstring = ast.get_docstring(ast.parse((folder / "handlers.py").read_text())) or ""
    assert "Consumes" in docstring and "Produces" in docstring
    rows = {untagged(name): row for name, row in _stream_rows().items()}
    for stream in re.findall(rf"{STREAM_NAME}(?![a-z-]|:dead)", docstring):
        assert service in rows[untagged(stream)], f"{service} names {stream}, whose row does not name {service}"


def test_the_readme_stream_table_names_every_field_of_each_class() -> None:
    readme = _rows((ROOT / "README.md").read_text())
    for cls in STREAM_CLASSES:
        row = readme[documented_name(cls)]
        carried = set(re.findall(r"\w+", row.rsplit("|", 2)[-2]))
        assert set(cls.FIELDS) <= carried, f"README's {documented_name(cls)} row misses {set(cls.FIELDS) - carried}"


def test_every_per_shard_stream_is_named_as_names_py_names_it() -> None:
    for cls in STREAM_CLASSES:
        if cls.kind:
            assert documented_name(cls).replace("<k>", "3") == cls.stream_of(3)
