"""Fixtures of the deploy tests: the gateway stack (auth, alerts, docs behind nginx), one per test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from deploy_testkit import require_tool
from gateway_testkit import CLIENT_ADDRESS, Stack, publish_catalog, wait_ready

from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.devstack.ports import free_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import temp_dir
from pricealert.testsupport.nginx import Nginx, nginx_binary


@pytest.fixture(scope="module")
def nginx_path() -> str:
    """Debian's nginx, or the test skips saying how to install it."""
    found = nginx_binary()
    if found is None:
        require_tool("nginx", "install Debian's nginx (`apt-get install -y nginx-light`)")
    return found


@pytest.fixture(scope="module")
def stack(nginx_path: str, redis_server_url: str) -> Iterator[Stack]:
    """One stack for the module (the redis_url fixture would flush the keys and catalog under it)."""
    directory = temp_dir("pricealert-gateway-")
    asyncio.run(publish_catalog(redis_server_url))
    auth_port, alerts_port, docs_port = free_port(), free_port(), free_port()
    env = {
        "ENV": "test",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_server_url,
        "AUTH_DATABASE_URL": f"sqlite:///{directory / 'auth.db'}",
        "ALERTS_DATABASE_URL": f"sqlite:///{directory / 'alerts.db'}",
        "AUTH_KEY_DIR": str(directory / "keys"),
        "AUTH_BCRYPT_ROUNDS": "4",
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(directory / "keys" / ROOT_PUBLIC_KEY_IN_KEY_DIR),
        # auth believes any peer's X-Forwarded-For (compose believes only the gateway's address): only the
        # gateway replacing the header stops a forgery.
        "AUTH_FORWARDED_ALLOW_IPS": "*",
        "AUTH_PORT": str(auth_port),
        "ALERTS_PORT": str(alerts_port),
        "HOST": "127.0.0.1",
        "PORT": str(docs_port),
        "AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "ALERTS_URL": f"http://127.0.0.1:{alerts_port}",
    }
    processes = {
        name: ServiceProcess(name, env, log_path=directory / f"{name}.log").start()
        for name in ("auth", "alerts", "gateway")
    }
    nginx = Nginx(
        nginx_path,
        directory / "nginx",
        free_port(),
        {
            "AUTH_UPSTREAM": f"127.0.0.1:{auth_port}",
            "ALERTS_UPSTREAM": f"127.0.0.1:{alerts_port}",
            "DOCS_UPSTREAM": f"127.0.0.1:{docs_port}",
        },
    )
    stack = Stack(env, nginx, processes, directory)
    try:
        nginx.write_config()
        checked = nginx.check()
        assert checked.returncode == 0, checked.stderr
        nginx.start()
        wait_ready(stack)
        yield stack
    finally:
        nginx.stop()
        for process in processes.values():
            process.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to nginx from CLIENT_ADDRESS."""
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_ADDRESS)
    async with httpx.AsyncClient(base_url=stack.nginx.url, transport=transport, timeout=10) as http:
        yield http
