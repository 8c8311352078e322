"""docs/architecture.md matches the tree: every stream's row, every file it names, every service's shape."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pricealert.common import events

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()
SERVICES = ("auth", "alerts", "ingest", "evaluator", "notifier")
SHAPE = ("__main__.py", "settings.py", "metrics.py", "handlers.py")
STREAM_CLASSES = [cls for cls in vars(events).values() if isinstance(cls, type) and getattr(cls, "stream", "")]


def _stream_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.splitlines():
        found = re.match(r"\| `(pricealert:[a-z-]+)` \|", line)
        if found:
            rows[found[1]] = line
    return rows


def _package_dir(area: str) -> Path:
    return ROOT / ("libs" if area == "common" else "services") / area / "src" / "pricealert" / area


def test_every_stream_has_its_row_with_its_class() -> None:
    rows = _stream_rows()
    assert {cls.stream for cls in STREAM_CLASSES} == set(rows)
    for cls in STREAM_CLASSES:
        assert f"`{cls.__name__}`" in rows[cls.stream]


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
    rows = _stream_rows()
    for stream in re.findall(r"pricealert:[a-z-]+(?![a-z-]|:dead)", docstring):
        assert service in rows[stream], f"{service} names {stream}, whose row does not name {service}"


def test_the_readme_stream_table_names_every_field_of_each_class() -> None:
    readme: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        if found := re.match(r"\| `(pricealert:[a-z-]+)` \|", line):
            readme.setdefault(found[1], line)  # the Streams table comes first; the redis-cli one names no fields
    for cls in STREAM_CLASSES:
        carried = set(re.findall(r"\w+", readme[cls.stream].rsplit("|", 2)[-2]))
        assert set(cls.FIELDS) <= carried, f"README's {cls.stream} row misses {set(cls.FIELDS) - carried}"
