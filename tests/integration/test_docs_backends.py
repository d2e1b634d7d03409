"""The Backends section of docs/exchanges/backpack.md, run as a user would run it.

The SQL block creates the tables in a fresh PostgreSQL; each Python block runs as a script of
its own against a simulator, a Redis and a PostgreSQL started for the test, as written except
for the addresses: the documented ports (8765 simulator, 6379 Redis, 5432 PostgreSQL) are
replaced by the servers' free ones, and the key placeholder by a seed.
"""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.services import postgres_server, redis_server  # noqa: F401 (fixtures)

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'exchanges' / 'backpack.md'
SEED_B64 = 'BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU='
KEY_PLACEHOLDER = re.compile(r'<base64 or hex[^>]*>')


def section_blocks() -> list:
    text = DOC.read_text()
    start = text.index('\n## Backends\n')
    end = text.find('\n## ', start + 1)
    return re.findall(r'```(\w+)\n(.*?)```', text[start:end if end != -1 else None], re.S)


def port(url: str) -> str:
    return str(urlsplit(url).port)


async def run_block(code: str, sim, cwd: Path, redis_url: str, postgres_dsn: str = '') -> str:
    assert '8765' in code and '6379' in code
    code = KEY_PLACEHOLDER.sub(SEED_B64, code).replace('8765', port(sim.rest_url)).replace('6379', port(redis_url))
    if postgres_dsn:
        code = code.replace('5432', port(postgres_dsn))
    process = await asyncio.create_subprocess_exec(sys.executable, '-c', code, cwd=cwd,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return stdout.decode()


def test_the_section_has_the_documented_blocks():
    assert [lang for lang, _ in section_blocks()] == ['sql', 'python', 'python']


async def test_the_schema_and_the_example_store_every_account_channel(redis_server, postgres_server, tmp_path):
    sql, example, _ = [body for _, body in section_blocks()]
    conn = await asyncpg.connect(postgres_server)
    try:
        await conn.execute(sql)
        async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=8, rate=20) as sim:
            out = await run_block(example, sim, tmp_path, redis_server, postgres_server)
        assert out.splitlines() == ['redis: 2 long', 'postgres: SOL-USDC-PERP buy 2']
        counts = {table: await conn.fetchval(f'SELECT count(*) FROM {table}')
                  for table in ('balances', 'positions', 'order_info', 'fills')}
        assert all(counts.values()), counts
    finally:
        await conn.close()


async def test_the_workarounds_for_cryptofeeds_own_redis_backends_work(redis_server, tmp_path):
    _, _, workarounds = [body for _, body in section_blocks()]
    async with BackpackSimulator(markets=['SOL_USDC'], seed=8, rate=20) as sim:
        out = await run_block(workarounds, sim, tmp_path, redis_server)
    assert out.splitlines() == ['zset True', 'string SOL-USDC']
