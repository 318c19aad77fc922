"""Production Redis is ``rediss://`` with an ACL user: the URL alone must carry both.

The worker builds its client with ``redis.asyncio.from_url(settings.redis_url)`` and nothing
else, so what docs/operations.md tells operators to write has to work through the URL.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection


def test_rediss_url_with_acl_user_gives_tls_connections_and_username() -> None:
    url = (
        "rediss://omnistream:s3cret@redis.internal:6380/0"
        "?ssl_cert_reqs=required&ssl_ca_certs=/etc/omnistream/redis-ca.pem"
    )
    client = aioredis.from_url(url)
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("omnistream", "s3cret")
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.internal", 6380, 0)
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_ca_certs"] == "/etc/omnistream/redis-ca.pem"
    connection = pool.make_connection()
    assert isinstance(connection, SSLConnection)
    assert connection.username == "omnistream"


def test_plain_redis_url_is_not_tls() -> None:
    pool = aioredis.from_url("redis://127.0.0.1:6379/0").connection_pool
    assert pool.connection_class is not SSLConnection
