"""A Redis of the ACL tests' own, with every pricealert user applied, and clients logged in as each of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from pricealert.cli import redisacl
from pricealert.common import acl
from pricealert.common.redisconn import connect

PASSWORDS = {role.name: f"{role.name}-password-{index:02d}-0123456789" for index, role in enumerate(acl.ROLES)}


def concrete(pattern: str, shard: int = 5) -> str:
    """A key `pattern` of acl.py (`pricealert:{s*}:triggers`) on one shard (`pricealert:{s5}:triggers`)."""
    return pattern.replace("{s*}", f"{{s{shard}}}")


def user_url(url: str, user: str, password: str) -> str:
    """`url` logged in as `user`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@dataclass(frozen=True)
class AclRedis:
    """The server (its `default` user is the admin) and what its ACL understands."""

    url: str
    server: acl.ServerAcl

    def url_of(self, role: acl.Role) -> str:
        """The REDIS_URL a service would be given: its own user and password."""
        return user_url(self.url, role.user, PASSWORDS[role.name])

    @asynccontextmanager
    async def client(self, role: acl.Role) -> AsyncIterator[Redis]:
        """A client logged in as `role`'s user."""
        client = connect(self.url_of(role))
        try:
            yield client
        finally:
            await client.aclose()

    def require_selectors(self) -> None:
        """Skip on Redis < 7, whose ACL has no read-only or consume-only keys (README: "Security model")."""
        if not self.server.selectors:
            pytest.skip("Redis < 7 has no %R~ read-only keys or selectors: a user may write what it reads")


async def apply_users(url: str) -> acl.ServerAcl:
    """Every pricealert user with PASSWORDS, set by `url`'s (admin) user; what the server's ACL understands."""
    admin = connect(url)
    try:
        await redisacl.apply(admin, PASSWORDS)
        info = await admin.info("server")
        return acl.ServerAcl.parse(str(info["redis_version"]))
    finally:
        await admin.aclose()
