"""The hostile-input run: schemathesis against the gateway's merged OpenAPI, then the hand-written list."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from chaos.hostile_requests import RAW_REQUESTS, probes
from chaos.hostile_tokens import Probe
from chaos.stack import ChaosStack
from chaos.workload import SYMBOLS, PlannedAlert, create_alert, register_users
from pricealert.common import names

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Disconnect|URL)\w*(:|$)")
ADMIN = {"ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": "admin-password-123"}
SCHEMATHESIS_TIMEOUT_S = 240.0


async def send(client: httpx.AsyncClient, probe: Probe, token_headers: dict[str, str]) -> tuple[int | None, str]:
    """Send one probe; (status or None on a transport error, detail)."""
    # Bytes, so that non-ASCII header values go out as UTF-8 instead of failing in the client.
    headers = {k.encode(): v.encode() for k, v in {**(token_headers if probe.auth else {}), **probe.headers}.items()}
    try:
        request = client.build_request(
            probe.method,
            probe.path,
            json=probe.json_body if probe.content is None else None,
            content=probe.content,
            headers=headers,
            params=probe.params,
        )
        response = await client.send(request, stream=True)
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return response.status_code, "an event stream (not read: it never ends)"
            await response.aread()
        finally:
            await response.aclose()
    except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeError) as exc:  # the client itself refuses to send it
        return -1, f"{type(exc).__name__}: {exc}"[:200]
    except Exception as exc:  # the server hung up or never answered
        return None, f"{type(exc).__name__}: {exc}"[:200]
    return response.status_code, response.text[:200]


def raw_status(port: int, payload: bytes) -> str:
    """Send raw bytes to a port; the status line of the answer, or what happened instead."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(200)
    except OSError as exc:
        return f"{type(exc).__name__}"
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"


async def handwritten(
    stack: ChaosStack, client: httpx.AsyncClient, headers: dict[str, str], alert_id: str, user_id: str
) -> dict[str, Any]:
    """Send every hand-written probe and raw request; count 5xx and transport errors."""
    keys: list[tuple[bytes, dict[bytes, bytes]]] = await stack.redis.xrevrange(  # type: ignore[assignment]  # redis-py types replies as Any-ish unions
        names.SIGNING_KEYS, count=1
    )
    pem = keys[0][1][b"public_key"].decode() if keys else None
    kid = keys[0][1][b"kid"].decode() if keys else None
    findings: list[str] = []
    statuses: dict[str, int] = {}
    transport = server_errors = 0
    gate = asyncio.Semaphore(1)  # one at a time: a failure must not be blamed on the request beside it

    async def one(probe: Probe) -> None:
        nonlocal transport, server_errors
        async with gate:
            status, detail = await send(client, probe, headers)
        key = "transport" if status is None else "not sent" if status < 0 else f"{status // 100}xx"
        statuses[key] = statuses.get(key, 0) + 1
        if status is not None and status < 0:
            return
        if status is None:
            transport += 1
            findings.append(f"transport error: {probe.label}: {detail}")
        elif status >= 500:
            server_errors += 1
            findings.append(f"{status}: {probe.label}: {detail}")

    listed = probes(alert_id, user_id, pem, kid)
    await asyncio.gather(*(one(p) for p in listed))
    ports = {
        "gateway": int(stack.env["PORT"]),
        "auth": int(stack.env["AUTH_PORT"]),
        "alerts": int(stack.env["ALERTS_PORT"]),
    }
    raw_count = 0
    for name, port in ports.items():
        for payload in RAW_REQUESTS:
            line = await asyncio.to_thread(raw_status, port, payload)
            raw_count += 1
            parts = line.split(" ")
            if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) >= 500:
                server_errors += 1
                findings.append(f"raw to {name}: {payload[:40]!r} -> {line}")
    return {
        "requests": len(listed) + raw_count,
        "server_errors": server_errors,
        "transport_errors": transport,
        "by_class": statuses,
        "findings": findings,
    }


def schemathesis(url: str, headers: dict[str, str], directory: Path) -> dict[str, Any]:
    """Run the schemathesis CLI against the gateway; count requests and 5xx from its HAR log."""
    har = directory / "schemathesis.har"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--workers",
        "2",
        "--seed",
        "20261125",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "15",
        "--no-color",
        "--report",
        "har",
        "--report-har-path",
        str(har),
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        # The feed's stream never ends by design: each example would hold a worker until the request timeout (the
        # run then outlives SCHEMATHESIS_TIMEOUT_S). The hand-written probes send it hostile parameters instead.
        "--exclude-path",
        "/events",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    try:
        # Run in the scratch directory: schemathesis keeps a .schemathesis/ cache in its working directory.
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S, check=False, cwd=directory
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output, code = f"timed out after {SCHEMATHESIS_TIMEOUT_S}s: {exc.stdout!r}"[-3000:], None
    try:
        entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    except json.JSONDecodeError:  # cut short by the timeout: judge it failed, and go on with the hand-written run
        entries, code = [], None
        output += "\nthe HAR log is cut short: schemathesis did not finish"
    (directory / "schemathesis.txt").write_text(output)
    server_errors = [e for e in entries if int(e["response"]["status"]) >= 500]
    transport = [e for e in entries if int(e["response"]["status"]) == 0]
    findings = sorted({server_error(e) for e in server_errors})
    tail = [line for line in output.splitlines() if line.strip()][-6:]
    return {
        "requests": len(entries),
        "server_errors": len(server_errors),
        "transport_errors": len(transport),
        "exit_code": code,
        "finished": code is not None,
        "summary": tail,
        "findings": findings,
    }


def server_error(entry: dict[str, Any]) -> str:
    """A 5xx of the HAR log with what explains it: the request's body and the response's."""
    request, response = entry["request"], entry["response"]
    sent = (request.get("postData") or {}).get("text") or ""
    answered = (response.get("content") or {}).get("text") or ""
    return (
        f"{response['status']}: {request['method']} {request['url'][:120]}"
        f" sent {sent[:200]!r} answered {answered[:300]!r}"
    )


def exceptions_logged(stack: ChaosStack) -> list[str]:
    """The final line of every traceback in the services' logs, counted per service."""
    found: dict[str, int] = {}
    for name in stack.processes:
        path = stack.directory / f"{name}.log"
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            if EXCEPTION_LINE.match(line):
                key = f"{name}: {line.strip()[:160]}"
                found[key] = found.get(key, 0) + 1
    return [f"{count} x {key}" for key, count in sorted(found.items())]


async def run_hostile(directory: Path, database: str = "sqlite") -> dict[str, Any]:
    """Start a stack on `database`, throw hostile input at its gateway, and count server errors and crashes."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    stack = ChaosStack(directory, extra_env=ADMIN, database=database)
    result: dict[str, Any] = {"database": database}
    try:
        await stack.start()
        async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
            [user] = await register_users(client, 1, stack.smtp)
            me = (await client.get("/auth/me", headers=user.headers)).json()
            alert = PlannedAlert("hostile-anchor", 0, "BTCUSDT", "above", SYMBOLS["BTCUSDT"] * 2, "never")
            created = await create_alert(client, user, alert, retry_catalog_s=30)
            login = await client.post(
                "/auth/login", json={"email": ADMIN["ADMIN_EMAIL"], "password": ADMIN["ADMIN_PASSWORD"]}
            )
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            result["schemathesis"] = await asyncio.to_thread(schemathesis, stack.url, admin, directory)
        # A fresh connection per probe: a connection the server closes after one probe must not fail the next.
        async with httpx.AsyncClient(
            base_url=stack.url, timeout=20, limits=httpx.Limits(max_keepalive_connections=0)
        ) as fresh:
            result["handwritten"] = await handwritten(
                stack, fresh, user.headers, created.alert_id or "x", str(me.get("id", ""))
            )
        async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
            ready = (await client.get("/readyz")).status_code == 200
        crashed = {n: c for n, c in stack.exit_codes().items() if c is not None}
        tracebacks = exceptions_logged(stack)
        for part in ("schemathesis", "handwritten"):
            result[part]["crashes"] = len(crashed)
            finished = result[part].get("finished", True)  # schemathesis cut short by its timeout judged nothing
            result[part]["pass"] = finished and result[part]["server_errors"] == 0 and not crashed and ready
        result["ready_after"] = ready
        result["crashed_processes"] = crashed
        result["log_tracebacks"] = tracebacks
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await stack.stop()
    return result
