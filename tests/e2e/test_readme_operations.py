"""Every command in the README's operations section, run against a live stack that has fired an alert.

A command the README adds later must be run here too (or skipped with its reason): an unknown one fails.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from e2e_stack import Stack, fire_one_alert
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
# Placeholders in the README's examples, replaced by this stack's real values.
EXAMPLE_CONSUMER = "evaluator-1"
EXAMPLE_DEAD_LETTER = "1795602346735-0"
# Commands that cannot run here, and why.
SKIPPED = {
    "docker compose": "no Docker engine on the development machines; compose is checked by `docker compose config`",
    "cp .env.example .env": "the compose set-up, see above",
    "make run": "starts the stack this test already runs",
    "export REDIS_URL=": "this test points every command at its own Redis",
    "export REDIS_CLUSTER_URL=": "one Redis here; the CLI on a cluster: libs/cli/tests/test_cli_on_cluster.py",
    "RCLI=": "this test defines RCLI for its own Redis, from the README's definition",
    "grep ": "searches a log file `make run` would have written",
}


def operations_commands() -> list[str]:
    """The command lines of the bash blocks between '## Operations' and the next top-level section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def redis_cli(redis_url: str) -> str:
    """The README's local RCLI, pointed at the test's Redis."""
    [definition] = [c for c in operations_commands() if c.startswith('RCLI=".venv/')]
    cli = definition.removeprefix('RCLI="').removesuffix('"')
    path, _, options = cli.partition(" ")
    assert (ROOT / path).exists(), f"the README's redis-cli is not at {path}"
    url = urlsplit(redis_url)
    db = url.path.strip("/") or "0"
    return f"{ROOT / path} {options.replace('6390', str(url.port))} -h {url.hostname} -n {db}"


def run(command: str, env: dict[str, str], stdin: str = "") -> str:
    """Run one README line in bash; its output, after checking it succeeded and reported no error."""
    # A session of its own: no terminal, so a password prompt reads stdin.
    done = subprocess.run(
        ["bash", "-c", command],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        start_new_session=True,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{output}"
    assert not re.search(r"^(\(error\) )?ERR", output, re.MULTILINE), f"{command!r} answered an error:\n{output}"
    return done.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_operations_command_runs(
    stack: Stack, exchange: FakeExchange, redis_url: str, smtp_server: MailboxServer
) -> None:
    await fire_one_alert(
        stack.url, exchange, smtp_server, email="ops@example.com", symbol="BTCUSDT", target="100", trade_price="101"
    )
    redis = Redis.from_url(redis_url, decode_responses=True)
    # The README's recipes name BTCUSDT's shard ({s3} of the default 16): the alert above fired there.
    triggers = names.triggers_stream(shard_of("BTCUSDT", DEFAULT_SHARDS))
    dead = names.dead_letter_stream(triggers)
    # A trigger no reader can parse: each group dead-letters it, so the dead-letter commands have work.
    await redis.xadd(triggers, {"trigger_id": "not-a-trigger"})
    await eventually(lambda: redis.xlen(dead), within=20, what="a dead-lettered trigger")

    env = {
        **os.environ,
        **stack.env,
        "RCLI": redis_cli(redis_url),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    ran, skipped = [], []
    for command in operations_commands():
        reason = next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)
        if reason is not None:
            skipped.append(command)
            continue
        if command.startswith("uv run pricealert "):
            line = command.removeprefix("uv run ").replace(EXAMPLE_CONSUMER, socket.gethostname())
            if EXAMPLE_DEAD_LETTER in line:
                await eventually(lambda: redis.xlen(dead), within=20, what="a dead letter to drop")
                [(entry_id, _)] = await redis.xrange(dead, count=1)
                line = line.replace(EXAMPLE_DEAD_LETTER, entry_id)
            output = run(line, env, stdin="admin-pass-123\nadmin-pass-123\n")
            if "--json" in line:
                json.loads(output)
        elif command.startswith("$RCLI "):
            run(command, env)
        else:
            pytest.fail(f"the README's operations section shows a command this test does not know: {command!r}")
        ran.append(command)
    await redis.aclose()
    assert len(ran) >= 30, ran
    assert not any(c.startswith("$RCLI") or c.startswith("uv run") for c in skipped), skipped
