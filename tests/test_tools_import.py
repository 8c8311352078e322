"""Every benchmark and chaos module imports: a rename in a service cannot leave a tool broken unnoticed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = sorted(p.stem for p in (ROOT / "bench").glob("*.py"))
CHAOS = sorted(f"chaos.{p.stem}" for p in (ROOT / "chaos").glob("*.py") if p.stem != "__main__")


@pytest.mark.parametrize("module", BENCH + CHAOS)
def test_module_imports(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # chaos is a package at the root; bench/ is on pytest's pythonpath
    importlib.import_module(module)
