"""The account backends (``cryptofeed.exchanges.backpack.backends``) against real servers.

A real FeedHandler runs a BackpackFeed on the simulator with private channels; every account
channel has a recording callback and a Redis and a PostgreSQL backend. After some trading and a
shutdown (which flushes the backends), Redis and PostgreSQL hold exactly the rows for what the
callbacks got, values included. The servers are the ones ``tests/integration/services.py``
starts for each test; the PostgreSQL tables come from the SQL block of docs/exchanges/backpack.md.
"""
from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from cryptofeed import FeedHandler

from cryptofeed.exchanges.backpack import BALANCES, FILLS, ORDER_INFO, POSITIONS, BackpackConfig, BackpackFeed
from cryptofeed.exchanges.backpack.backends import (
    BalancesPostgres, BalancesRedis, FillsPostgres, FillsRedis, OrderInfoPostgres, OrderInfoRedis,
    PositionsPostgres, PositionsRedis,
)
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.feed_harness import FH_CONFIG, start_handler, stop_handler, wait_until
from tests.integration.services import postgres_server, redis_server  # noqa: F401 (fixtures)
from tests.integration.test_feed_private import place, private_config, trade_a_little

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'exchanges' / 'backpack.md'
PRIVATE = [ORDER_INFO, FILLS, POSITIONS, BALANCES]
REDIS = {BALANCES: BalancesRedis, POSITIONS: PositionsRedis, ORDER_INFO: OrderInfoRedis, FILLS: FillsRedis}
POSTGRES = {BALANCES: BalancesPostgres, POSITIONS: PositionsPostgres, ORDER_INFO: OrderInfoPostgres,
            FILLS: FillsPostgres}
TIMES = ('timestamp', 'receipt_timestamp')


def schema_sql() -> str:
    """The SQL block of the Backends section of the page (the tables users create)."""
    text = DOC.read_text()
    start = text.index('\n## Backends\n')
    end = text.find('\n## ', start + 1)
    (sql,) = re.findall(r'```sql\n(.*?)```', text[start:end], re.S)
    return sql


async def create_tables(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(schema_sql())
    finally:
        await conn.close()


class Recorder:
    """What each account callback got: (object, receipt time)."""

    def __init__(self):
        self.got = {channel: [] for channel in PRIVATE}

    def callback(self, channel):
        async def record(obj, receipt_ts):
            self.got[channel].append((obj, receipt_ts))
        return record


def expected_row(channel: str, obj, receipt_ts: float) -> dict:
    """The row a backend must hold for what a callback got (numbers as Decimal)."""
    row = obj.to_dict()
    row['timestamp'] = row.get('timestamp') or receipt_ts
    row['receipt_timestamp'] = receipt_ts
    if channel == FILLS:
        row['fee_asset'] = obj.raw['fee_asset']
    return row


def subject(channel: str, row: dict) -> str:
    return row['currency'] if channel == BALANCES else row['symbol']


def comparable(row: dict) -> tuple:
    """A row with numbers as Decimal and times to the microsecond, for comparing sets."""
    out = []
    for name, value in sorted(row.items()):
        if name in TIMES:
            value = round(float(value), 6)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = Decimal(str(value))
        elif isinstance(value, str) and re.fullmatch(r'-?\d+(\.\d+)?(E[-+]?\d+)?', value) and name not in (
                'id', 'order_id', 'client_order_id', 'trade_id'):
            value = Decimal(value)
        out.append((name, value))
    return tuple(out)


@pytest.fixture
async def sim():
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=5, rate=0, tls=True) as simulator:
        yield simulator


async def run_trading(sim, recorder: Recorder, callbacks: dict) -> BackpackFeed:
    """A FeedHandler with ``callbacks`` on the account channels, every market, while orders are
    placed (a quote-quantity market order among them: its ``remaining`` is ``None``); returns after
    the handler stopped (and so flushed its backends), the feed."""
    config = private_config(sim)
    handler = FeedHandler(config=FH_CONFIG)
    feed = BackpackFeed(config=config, subscription={channel: [] for channel in PRIVATE}, callbacks=callbacks)
    handler.add_feed(feed)
    await start_handler(handler)
    try:
        async with BackpackRestClient.from_config(BackpackConfig(**config)) as trader:
            await wait_until(lambda: recorder.got[BALANCES], timeout=15)
            await trade_a_little(trader)
            quote = await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quoteQuantity='50')
            history = await trader.fill_history(limit=1000, sort_direction='Asc')
            await wait_until(lambda: len(recorder.got[FILLS]) >= len(history), timeout=15)
            await wait_until(lambda: any(o.id == quote['id'] and o.status == 'filled'
                                         for o, _ in recorder.got[ORDER_INFO]), timeout=15)
    finally:
        await stop_handler(handler)
    return feed


def recording_callbacks(recorder: Recorder, backends: dict) -> dict:
    callbacks = {}
    for channel in PRIVATE:
        callbacks[channel] = [recorder.callback(channel), *backends.get(channel, [])]
    return callbacks


async def redis_rows(url: str, backend) -> dict:
    """Redis key -> rows (decoded JSON) of every key the backend's prefix names."""
    client = aioredis.from_url(url)
    try:
        keys = sorted(k.decode() for k in await client.keys(f'{backend.key}-*'))
        return {key: [json.loads(m) for m in await client.zrange(key, 0, -1)] for key in keys}
    finally:
        await client.aclose()


async def test_account_channels_land_in_redis_and_postgres_with_the_values_the_callbacks_got(
        sim, redis_server, postgres_server):
    await create_tables(postgres_server)
    recorder = Recorder()
    redis_backends = {channel: cls(url=redis_server) for channel, cls in REDIS.items()}
    pg_backends = {channel: cls(dsn=postgres_server) for channel, cls in POSTGRES.items()}
    callbacks = recording_callbacks(recorder, {c: [redis_backends[c], pg_backends[c]] for c in PRIVATE})
    await run_trading(sim, recorder, callbacks)

    got = recorder.got
    assert all(got[channel] for channel in PRIVATE), {c: len(v) for c, v in got.items()}
    assert any(obj.remaining is None for obj, _ in got[ORDER_INFO])   # the quote-quantity market order
    assert {obj.currency for obj, _ in got[BALANCES]} >= {'SOL', 'USDC'}

    for channel in PRIVATE:
        expected = [expected_row(channel, obj, ts) for obj, ts in got[channel]]
        # Redis: one sorted set per exchange and symbol (asset), JSON rows with numbers as text
        stored = await redis_rows(redis_server, redis_backends[channel])
        assert set(stored) == {f'{redis_backends[channel].key}-BACKPACK-{subject(channel, row)}' for row in expected}
        assert sorted(map(comparable, (r for rows in stored.values() for r in rows))) == \
            sorted(map(comparable, expected)), channel
        for key, rows in stored.items():
            assert [r['timestamp'] for r in rows] == sorted(r['timestamp'] for r in rows)   # scored by time
            # numbers as exact text: no JSON number but the times
            assert all(n in TIMES or not isinstance(v, (int, float)) for r in rows for n, v in r.items())

    # PostgreSQL: NUMERIC columns hold the exact Decimals, TIMESTAMPTZ the times
    conn = await asyncpg.connect(postgres_server)
    try:
        for channel, backend in pg_backends.items():
            rows = [dict(r) for r in await conn.fetch(f'SELECT * FROM {backend.table} ORDER BY id')]
            renames = {column: field for column, field in backend.COLUMNS}
            stored = [comparable({renames[k]: (v.timestamp() if k in TIMES else v)
                                  for k, v in row.items() if k in renames}) for row in rows]
            expected = [comparable({field: expected_row(channel, obj, ts)[field] for _, field in backend.COLUMNS})
                        for obj, ts in recorder.got[channel]]
            assert sorted(stored) == sorted(expected), channel
        balances = await conn.fetch('SELECT timestamp, receipt_timestamp FROM balances')
        assert all(r['timestamp'] == r['receipt_timestamp'] for r in balances)   # Balance has no time of its own
        quoted = await conn.fetch("SELECT amount FROM order_info WHERE type = 'market' AND remaining IS NULL")
        assert quoted and all(r['amount'] is not None for r in quoted)
    finally:
        await conn.close()
    for backend in [*redis_backends.values(), *pg_backends.values()]:
        assert (backend.dropped, backend.last_error) == (0, None)
        assert backend.written == len(recorder.got[backend.channel])


async def test_a_missing_table_drops_batches_with_an_error_that_says_what_to_create(sim, postgres_server, caplog):
    recorder = Recorder()
    backend = BalancesPostgres(dsn=postgres_server, table='account.balances_missing')
    callbacks = recording_callbacks(recorder, {BALANCES: [backend]})
    handler = FeedHandler(config=FH_CONFIG)
    handler.add_feed(BackpackFeed(config=private_config(sim), subscription={BALANCES: []},
                                  callbacks={BALANCES: callbacks[BALANCES]}))
    with caplog.at_level(logging.ERROR):
        await start_handler(handler)
        try:
            await wait_until(lambda: recorder.got[BALANCES], timeout=15)
            await wait_until(lambda: 'does not exist: create it first' in caplog.text, timeout=15)
        finally:
            await stop_handler(handler)
    assert "table 'account.balances_missing' does not exist" in caplog.text
    assert 'docs/exchanges/backpack.md' in caplog.text
    assert backend.dropped >= 1 and backend.written == 0 and 'does not exist' in backend.last_error


async def test_a_redis_key_of_another_type_is_reported_with_the_fix_and_the_other_keys_are_written(
        sim, redis_server, caplog):
    client = aioredis.from_url(redis_server)
    await client.set('balances-BACKPACK-USDC', 'written by another backend')
    recorder = Recorder()
    backend = BalancesRedis(url=redis_server)
    handler = FeedHandler(config=FH_CONFIG)
    handler.add_feed(BackpackFeed(config=private_config(sim), subscription={BALANCES: []},
                                  callbacks=recording_callbacks(recorder, {BALANCES: [backend]})))
    try:
        with caplog.at_level(logging.ERROR):
            await start_handler(handler)
            try:
                await wait_until(lambda: {b.currency for b, _ in recorder.got[BALANCES]} >= {'SOL', 'USDC'}, timeout=15)
            finally:
                await stop_handler(handler)
        assert 'WRONGTYPE' in caplog.text and 'give this one its own key=' in caplog.text
        assert await client.get('balances-BACKPACK-USDC') == b'written by another backend'
        assert await client.zcard('balances-BACKPACK-SOL') == sum(
            1 for b, _ in recorder.got[BALANCES] if b.currency == 'SOL')
        usdc = sum(1 for b, _ in recorder.got[BALANCES] if b.currency == 'USDC')
        assert backend.dropped == usdc and 'WRONGTYPE' in backend.last_error
    finally:
        await client.aclose()


@pytest.mark.parametrize('cls,kwargs,message', [
    (BalancesPostgres, {'table': 'balances; DROP TABLE x'}, 'table must be a name or schema.name'),
    (BalancesRedis, {'url': 'http://127.0.0.1:6379'}, 'url must start with redis://'),
    (FillsRedis, {'score_key': 'price'}, "score_key must be 'timestamp' or 'receipt_timestamp'"),
    (PositionsRedis, {'flush_timeout_s': 0}, 'flush_timeout_s must be > 0'),
])
def test_bad_options_fail_at_construction_saying_what_to_give(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**kwargs)


def test_the_postgres_backend_never_shows_the_password():
    backend = OrderInfoPostgres(user='u', pw='s3cret-pw', db='d')
    assert 's3cret-pw' not in repr(backend) and 's3cret-pw' not in str(backend)
