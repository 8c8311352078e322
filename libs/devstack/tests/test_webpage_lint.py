"""The page's files keep to what its Content-Security-Policy and security model demand: no inline script or
style, no event-handler attributes, no other host, no HTML from strings, no token in browser storage; and
the ids of the DOM contract (docs/web.md) stay where the browser tests look for them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pricealert.devstack.webpages import STATIC_DIR

TEXT_FILES = sorted(p for p in STATIC_DIR.iterdir() if p.suffix in {".html", ".css", ".js"})
JS_FILES = [p for p in TEXT_FILES if p.suffix == ".js"]
# What would put markup from a string into the page, keep a token where scripts can read it, or run strings.
FORBIDDEN_JS = {
    "innerHTML": r"\binnerHTML\b",
    "outerHTML": r"\bouterHTML\b",
    "insertAdjacentHTML": r"\binsertAdjacentHTML\b",
    "document.write": r"\bdocument\s*\.\s*write(ln)?\b",
    "eval": r"(?<![\w.])eval\s*\(",
    "new Function": r"\bnew\s+Function\s*\(",
    "string timers": r"\bset(Timeout|Interval)\s*\(\s*[\"'`]",
    "localStorage": r"\blocalStorage\b",
    "sessionStorage": r"\bsessionStorage\b",
    "indexedDB": r"\bindexedDB\b",
    "document.cookie": r"\bdocument\s*\.\s*cookie\b",
    "style attribute": r"setAttribute\(\s*[\"']style[\"']",
    "createContextualFragment": r"\bcreateContextualFragment\b",
}
CONTRACT_IDS = [
    "register-form",
    "login-form",
    "alert-form",
    "channel-form",
    "nav-alerts",
    "nav-new-alert",
    "nav-channels",
    "nav-sign-out",
    "alert-list",
    "alert-detail",
    "firings",
    "deliveries",
    "pause-alert",
    "resume-alert",
    "edit-alert",
    "delete-alert",
    "current-price",
    "toasts",
    "session-user",
    "verify-result",
]


class Tags(HTMLParser):
    """Every start tag of a document with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(path.read_text())
    return parser.tags


def test_the_html_has_no_inline_script_style_or_handlers() -> None:
    html = STATIC_DIR / "index.html"
    tags = tags_of(html)
    text = html.read_text()

    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts and all(attrs.get("src", "").startswith("/static/") for attrs in scripts)  # type: ignore[union-attr]
    assert all(attrs.get("type") == "module" for attrs in scripts)
    assert not [tag for tag, _ in tags if tag == "style"]
    assert not [(tag, a) for tag, attrs in tags for a in attrs if a.lower().startswith("on") or a.lower() == "style"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text)
    assert "javascript:" not in text.lower()


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.name)
def test_no_file_names_another_host(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"\b(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), path.name
    assert "@import" not in text and not re.search(r"url\(\s*[\"']?(https?:)?//", text)


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_the_scripts_build_the_dom_from_nodes_and_keep_no_token_in_storage(path: Path) -> None:
    # Comments may name what the code avoids: only code is checked.
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(), flags=re.DOTALL)
    found = [name for name, pattern in FORBIDDEN_JS.items() if re.search(pattern, code)]
    assert found == [], f"{path.name} uses {found}"


def test_the_dom_contract_ids_are_in_the_page_and_documented() -> None:
    sources = "\n".join(p.read_text() for p in TEXT_FILES)
    contract = (STATIC_DIR / "app.js").read_text().split("import", 1)[0]
    missing = [i for i in CONTRACT_IDS if f'"{i}"' not in sources]
    undocumented = [i for i in CONTRACT_IDS if f"#{i}" not in contract]

    assert missing == [] and undocumented == []


def test_the_lint_catches_what_it_is_meant_to() -> None:
    samples = {
        "innerHTML": "el.innerHTML = name;",
        "localStorage": "localStorage.setItem('t', token);",
        "eval": "eval(text);",
        "document.write": "document.write(x)",
    }
    for name, sample in samples.items():
        assert re.search(FORBIDDEN_JS[name], sample), name
