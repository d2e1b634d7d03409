"""The test servers of ``tests/integration/services.py``: real, private, loopback-only, gone after.

Other tests rely on these fixtures (and the context managers behind them) starting an empty
server of their own on 127.0.0.1 that keeps nothing on disk and is stopped, its files removed,
when the test ends.
"""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis

from tests.integration.services import postgres_server, redis_server, running_postgres, running_redis  # noqa: F401


def refused(port: int) -> bool:
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_redis_server_is_an_empty_loopback_redis_without_persistence(redis_server):
    url = urlsplit(redis_server)
    assert (url.scheme, url.hostname) == ('redis', '127.0.0.1')
    client = aioredis.from_url(redis_server)
    try:
        assert await client.dbsize() == 0
        config = await client.config_get('*')
        assert config['save'] == '' and config['appendonly'] == 'no' and config['bind'] == '127.0.0.1'
    finally:
        await client.aclose()


async def test_two_redis_servers_are_separate_and_stop_with_their_context(tmp_path):
    with running_redis(tmp_path / 'a') as first, running_redis(tmp_path / 'b') as second:
        assert first != second
        a, b = aioredis.from_url(first), aioredis.from_url(second)
        await a.set('shard', 'a')
        assert await b.get('shard') is None
        await a.aclose()
        await b.aclose()
    assert refused(urlsplit(first).port) and refused(urlsplit(second).port)
    assert not list(Path(tmp_path).rglob('*.rdb')) and not list(Path(tmp_path).rglob('*.aof'))


async def test_postgres_server_is_an_empty_loopback_cluster_removed_after():
    with running_postgres() as dsn:
        url = urlsplit(dsn)
        assert (url.scheme, url.hostname, url.username, url.path) == ('postgresql', '127.0.0.1', 'postgres',
                                                                      '/postgres')
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
            assert await conn.fetchval('SHOW listen_addresses') == '127.0.0.1'
            assert await conn.fetchval('SHOW fsync') == 'off'
            directory = Path(await conn.fetchval('SHOW data_directory')).parent
        finally:
            await conn.close()
    assert refused(url.port)
    assert not directory.exists()
