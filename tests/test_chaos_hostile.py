"""The hostile-input run's judging: a schemathesis run cut short by its time limit fails and is reported so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos import hostile
from chaos.hostile_tokens import Probe
from chaos.report import hostile_section


def test_a_har_cut_short_by_the_timeout_is_an_unfinished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cut_short(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        (tmp_path / "schemathesis.har").write_text('{"log": {"entries": [{"response": {"status": 200}')
        raise subprocess.TimeoutExpired(command, hostile.SCHEMATHESIS_TIMEOUT_S, output=b"Schemathesis v4")

    monkeypatch.setattr(hostile.subprocess, "run", cut_short)
    result = hostile.schemathesis("http://127.0.0.1:9", {}, tmp_path)
    assert result["finished"] is False and result["requests"] == 0 and result["exit_code"] is None
    assert "cut short" in (tmp_path / "schemathesis.txt").read_text()
    lines = hostile_section([{"database": "sqlite", "schemathesis": result | {"pass": False}, "handwritten": {}}])
    assert "- sqlite schemathesis: did not finish within its time limit (nothing judged)" in lines


def test_the_feed_stream_is_left_to_the_hand_written_probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def finished(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        (tmp_path / "schemathesis.har").write_text('{"log": {"entries": []}}')
        return subprocess.CompletedProcess(command, 0, "ok", "")

    monkeypatch.setattr(hostile.subprocess, "run", finished)
    assert hostile.schemathesis("http://127.0.0.1:9", {}, tmp_path)["finished"] is True
    assert seen[0][seen[0].index("--exclude-path") + 1] == "/events"
    feed_probes = [p for p in hostile.probes("a", "u", None, None) if p.path == "/events"]
    assert len(feed_probes) > 60 and any(p.auth is False and p.params for p in feed_probes)


async def test_a_request_the_client_refuses_to_build_is_counted_not_sent() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as client:
        status, detail = await hostile.send(client, Probe("long", "GET", "/x", params={"q": "x" * 70_000}), {})
    assert status == -1 and detail.startswith("InvalidURL")


def test_a_server_error_is_reported_with_both_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answered = '{"error": {"code": "database_unavailable", "message": "The database is not reachable"}}'
    entry = {
        "request": {"method": "POST", "url": "http://gw/channels/verify", "postData": {"text": '{"code": "x"}'}},
        "response": {"status": 503, "content": {"text": answered}},
    }

    def finished(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        (tmp_path / "schemathesis.har").write_text(json.dumps({"log": {"entries": [entry, entry]}}))
        return subprocess.CompletedProcess(command, 1, "failed", "")

    monkeypatch.setattr(hostile.subprocess, "run", finished)
    result = hostile.schemathesis("http://127.0.0.1:9", {}, tmp_path)
    assert result["server_errors"] == 2
    [finding] = result["findings"]
    assert finding.startswith('503: POST http://gw/channels/verify sent \'{"code": "x"}\'')
    assert "database_unavailable" in finding
