"""The profiles: the summary reads py-spy's call tree back from its SVG; profiles.py records a service under load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flame_summary import summarize
from profile_attach import py_spy_works
from profile_report import profile_section

ROOT = Path(__file__).resolve().parents[2]

# (name, depth, first sample, samples): one inferno box each.
TREE = [
    ("all", 0, 0, 100),
    ("main (app.py:1)", 1, 0, 100),
    ("work (app.py:5)", 2, 0, 60),
    ("pairs_to_dict (redis/_parsers/helpers.py:10)", 3, 0, 20),
    ("gc_collect_main (libpython3.11.so.1.0)", 3, 20, 10),
    ("send (libc.so.6)", 3, 30, 10),
    ("epoll_wait (libc.so.6)", 2, 60, 40),
]


def svg(tree: list[tuple[str, int, int, int]]) -> str:
    """Boxes as py-spy's inferno writes them."""
    return "\n".join(
        f'<g><title>{name} ({w} samples, {w}%)</title><rect x="{x}%" y="{52 + 16 * depth}" width="{w}%" '
        f'height="15" fill="rgb(1,2,3)" fg:x="{x}" fg:w="{w}"/><text x="0">{name}</text></g>'
        for name, depth, x, w in tree
    )


def test_the_summary_leaves_out_waits_counts_system_calls_apart_and_shares_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "graph.svg"
    path.write_text(svg(TREE))
    summary = summarize(path)
    assert (summary["samples"], summary["waiting_samples"], summary["busy_samples"]) == (100, 40, 60)
    assert summary["system_call_share"] == round(10 / 60, 3) and summary["user_space_samples"] == 50
    assert summary["top_self"] == [
        {"function": "work (app.py)", "self_share": 0.4},
        {"function": "pairs_to_dict (redis/_parsers/helpers.py)", "self_share": 0.4},
        {"function": "gc_collect_main (libpython3.11.so.1.0)", "self_share": 0.2},
    ]
    assert summary["self_by_package"] == {"app": 0.4, "redis": 0.4, "libpython3.11.so.1.0": 0.2}
    assert summary["subtrees"] == {"redis-py reply parsing": 0.4, "redis-py (all)": 0.4, "garbage collection": 0.2}


def test_profiles_records_the_notifier_under_its_bench_load(tmp_path: Path) -> None:
    broken = py_spy_works()
    if broken:
        # CI runs as root on a fresh machine, where py-spy works: there a refusal is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(f"py-spy cannot read processes: {broken}")
        pytest.skip(f"py-spy cannot read processes on this machine: {broken}")
    out = tmp_path / "profiles.json"
    # Enough mails to keep the notifier busy through the 1 s recording: with 400 it was done in a fraction of it, and
    # py-spy caught 0-4 busy samples (CI once saw none in user space).
    command = [sys.executable, "bench/profiles.py", "--only", "notifier", "--seconds", "1", "--mails", "2000"]
    command += ["--dir", str(tmp_path / "profiles"), "--out", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=100)
    profile = json.loads(out.read_text())["profiles"]["notifier"]
    assert "error" not in profile and profile["target_command"].endswith("-m pricealert.notifier")
    assert Path(profile["svg"]).read_text().lstrip().startswith("<?xml") and profile["busy_samples"] > 0
    assert profile["top_self"] and profile["top_self"][0]["self_share"] > 0
    section = profile_section({"profiles": json.loads(out.read_text())}, tmp_path)
    assert any(line.startswith("- **notifier**") and "profiles/notifier.svg" in line for line in section)
