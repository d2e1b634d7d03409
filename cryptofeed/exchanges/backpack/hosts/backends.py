"""Backends for the account channels (BALANCES, POSITIONS, ORDER_INFO, FILLS): Redis and PostgreSQL.

Use these where cryptofeed's own account backends fail or do not exist. On cryptofeed 2.4.1 /
2.5.0, ``BalancesRedis`` raises on every balance (a ``Balance`` has no ``timestamp``),
``OrderInfoRedis`` raises on an order without an amount (``float(None)``), and there is no
positions backend nor any PostgreSQL account backend; cryptofeed 3 has no account backends at
all. Each class here is a callback for one channel, given like any cryptofeed backend::

    callbacks={BALANCES: BalancesRedis(url='redis://127.0.0.1:6379'),
               POSITIONS: PositionsPostgres(dsn='postgresql://user@127.0.0.1/db')}

They are built on the installed line's own ``BackendQueue`` (the feed starts their writer and
flushes it at shutdown, as for cryptofeed's backends). A row is the object's ``to_dict()`` plus
``timestamp`` (the object's own, else the receipt time: a ``Balance`` carries none) and
``receipt_timestamp``; a fill's row also has ``fee_asset`` (from ``fill.raw``). Redis rows go to a
sorted set per exchange and symbol (per asset for balances), ``<key>-<exchange>-<symbol>``,
scored by ``timestamp``, as JSON with numbers as text (exact) unless ``numeric_type`` says
otherwise. PostgreSQL rows go to the table the user created (docs/exchanges/backpack.md gives
the SQL), numbers as ``NUMERIC``, times as ``TIMESTAMPTZ``.

A write the server refuses (a missing table, a Redis key of another type) drops that batch
with an error in the log saying what to fix; a lost connection is retried with a backoff, then
the batch is dropped and counted. The client libraries are extras:
``cryptofeed-backpack[redis]`` (redis) and ``cryptofeed-backpack[postgres]`` (asyncpg).
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from cryptofeed.backends.backend import BackendQueue

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import BALANCES, FILLS, ORDER_INFO, POSITIONS
from cryptofeed.exchanges.backpack.hosts.line import LINE

if LINE >= 3:
    from cryptofeed.backends.backend import PermanentWriteError
else:
    class PermanentWriteError(Exception):
        """The server refused a batch: retrying cannot help (3.x's exception of the same name)."""

__all__ = ['BalancesRedis', 'PositionsRedis', 'OrderInfoRedis', 'FillsRedis',
           'BalancesPostgres', 'PositionsPostgres', 'OrderInfoPostgres', 'FillsPostgres',
           'PermanentWriteError']

LOG = log.get()

_IDENTIFIER = re.compile(r'[A-Za-z_][A-Za-z0-9_$]*')


def _require(module: str, extra: str, owner: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{owner} needs the {module!r} package: pip install 'cryptofeed-backpack[{extra}]'")


class _Cf2Writer:
    """The writer loop and flushing stop for cryptofeed 2.x's ``BackendQueue``.

    2.x's own writers never end when the stop sentinel arrives on an empty queue, and its
    ``stop()`` does not wait for them, so rows queued just before shutdown could be lost; this
    writer ends on the sentinel and ``stop()`` waits for it (``flush_timeout_s``)."""

    async def writer(self):
        try:
            while True:
                async with self.read_queue() as rows:
                    if not rows:   # 2.x yields nothing only for the stop sentinel
                        break
                    await self._deliver_cf2(list(rows))
        finally:
            self.running = False
            await self._close_quietly()

    async def _deliver_cf2(self, rows: list) -> None:
        for attempt in range(1, self.RETRY_ATTEMPTS + 1):
            try:
                await self.connect()
                accepted = await self.write_batch(rows)
            except PermanentWriteError as exc:
                self._drop(rows, exc)
                return
            except self._retryable() as exc:
                await self._close_quietly()
                if attempt == self.RETRY_ATTEMPTS:
                    self._drop(rows, exc)
                    return
                await asyncio.sleep(self.RETRY_BASE_S * 2 ** (attempt - 1))
            except Exception as exc:   # a writer that died would lose every later row without a word
                await self._close_quietly()
                self._drop(rows, exc)
                return
            else:   # (written, refused) from Redis, None when every row went in
                self._cf2_written += accepted[0] if isinstance(accepted, tuple) else len(rows)
                return

    async def stop(self):
        if not getattr(self, 'started', False):
            return
        await super().stop()
        worker = getattr(self, 'worker', None)
        if isinstance(worker, asyncio.Task) and not worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker), self.flush_timeout_s)
            except asyncio.TimeoutError:
                LOG.warning('%s: rows not written within flush_timeout_s=%.1f s of shutdown are dropped',
                            type(self).__name__, self.flush_timeout_s)
                worker.cancel()


_QUEUE_BASES: Tuple[type, ...] = (BackendQueue,) if LINE >= 3 else (_Cf2Writer, BackendQueue)


class _AccountBackend(*_QUEUE_BASES):
    """One account channel into one store; subclasses say which channel and which store."""

    channel: str = ''
    key_field = 'symbol'        # the field naming a row's Redis key / identifying its subject
    RETRY_ATTEMPTS = 5          # 2.x: attempts per batch while the server is unreachable
    RETRY_BASE_S = 0.5

    def __init__(self, *, flush_timeout_s: float = 10.0, **queue_options):
        if LINE >= 3:
            super().__init__(**queue_options)
        elif queue_options:
            raise TypeError(f'{type(self).__name__}: unknown option(s) {sorted(queue_options)} (cryptofeed '
                            f'{LINE}.x backends take none of these)')
        if not flush_timeout_s > 0:
            raise ValueError(f'flush_timeout_s must be > 0 seconds, got {flush_timeout_s!r}')
        self.flush_timeout_s = flush_timeout_s
        self._cf2_written = 0
        self._cf2_dropped = 0
        self._own_last_error: Optional[str] = None

    @property
    def written(self) -> int:
        """Rows the server accepted (3.x: ``stats.written``)."""
        return self.stats.written if LINE >= 3 else self._cf2_written

    @property
    def dropped(self) -> int:
        """Rows given up: refused, unreachable server, full queue (3.x: from ``stats``)."""
        if LINE >= 3:
            return self.stats.dropped_failed + self.stats.dropped_overflow
        return self._cf2_dropped

    @property
    def last_error(self) -> Optional[str]:
        """The last write error, ``None`` if there was none."""
        return (self.stats.last_error or self._own_last_error) if LINE >= 3 else self._own_last_error

    async def __call__(self, obj, receipt_timestamp: float):
        await self.write(self.row(obj, receipt_timestamp))

    def row(self, obj, receipt_timestamp: float) -> Dict[str, Any]:
        """The row written for ``obj``: its ``to_dict()`` (Decimals kept), ``timestamp`` (its own,
        else the receipt time) and ``receipt_timestamp``; a fill's ``fee_asset``."""
        data = obj.to_dict()
        data['timestamp'] = data.get('timestamp') or receipt_timestamp
        data['receipt_timestamp'] = receipt_timestamp
        if self.channel == FILLS:
            raw = getattr(obj, 'raw', None)
            data['fee_asset'] = raw.get('fee_asset') if isinstance(raw, dict) else None
        return data

    def _drop(self, rows: list, exc: BaseException) -> None:
        self._cf2_dropped += len(rows)
        self._own_last_error = f'{type(exc).__name__}: {exc}'
        LOG.error('%s: %d row(s) not written: %s', type(self).__name__, len(rows), self._own_last_error)

    async def _close_quietly(self) -> None:
        try:
            await self.close()
        except Exception as exc:   # the connection is gone either way
            LOG.warning('%s: closing the connection failed: %s', type(self).__name__, exc)

    def _retryable(self) -> Tuple[type, ...]:
        return (OSError, asyncio.TimeoutError)


# -- Redis ---------------------------------------------------------------------------------------

class _RedisBackend(_AccountBackend):
    """Rows as JSON members of a sorted set ``<key>-<exchange>-<symbol or currency>``, scored by
    ``score_key`` (``timestamp``); ``ZADD NX``, so replaying the same row adds nothing."""

    default_key = ''

    def __init__(self, host: str = '127.0.0.1', port: int = 6379, socket: Optional[str] = None, *,
                 url: Optional[str] = None, key: Optional[str] = None, score_key: str = 'timestamp',
                 numeric_type: Callable[[Decimal], Any] = str, none_to: Any = None, **options):
        _require('redis', 'redis', type(self).__name__)
        super().__init__(**options)
        if url is None:
            url = f'unix://{socket}' if socket else f'redis://{host}:{port}'
        if not url.startswith(('redis://', 'rediss://', 'unix://')):
            raise ValueError(f'{type(self).__name__}: url must start with redis://, rediss:// or unix://, '
                             f'got {url.split("://")[0]!r}')
        if score_key not in ('timestamp', 'receipt_timestamp'):
            raise ValueError(f"score_key must be 'timestamp' or 'receipt_timestamp', got {score_key!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f'key must be a non-empty string, got {key!r}')
        self.url = url
        self.key = key or self.default_key
        self.score_key = score_key
        self.numeric_type = numeric_type
        self.none_to = none_to
        self.conn = None

    def _retryable(self) -> Tuple[type, ...]:
        from redis import exceptions
        return (exceptions.ConnectionError, exceptions.TimeoutError, OSError)

    @property
    def retryable_exceptions(self) -> Tuple[type, ...]:   # 3.x's BackendQueue retries these
        return self._retryable()

    def redis_key(self, row: Dict[str, Any]) -> str:
        return f'{self.key}-{row["exchange"]}-{row[self.key_field]}'

    def encode(self, row: Dict[str, Any]) -> str:
        out = {}
        for name, value in row.items():
            if isinstance(value, Decimal):
                value = self.numeric_type(value)
            elif value is None:
                value = self.none_to
            out[name] = value
        return json.dumps(out, separators=(',', ':'))

    async def connect(self):
        if self.conn is None:
            from redis import asyncio as aioredis
            self.conn = aioredis.from_url(self.url)

    async def write_batch(self, batch: list):
        from redis import exceptions
        async with self.conn.pipeline(transaction=False) as pipe:
            for row in batch:
                pipe.zadd(self.redis_key(row), {self.encode(row): row[self.score_key]}, nx=True)
            results = await pipe.execute(raise_on_error=False)
        errors = [(row, result) for row, result in zip(batch, results) if isinstance(result, Exception)]
        for _, error in errors:
            if isinstance(error, self._retryable()):
                raise error
        if errors:
            row, error = errors[0]
            hint = (' (another backend writes a different type under this key: give this one its own key=)'
                    if 'WRONGTYPE' in str(error) else '')
            if len(errors) == len(batch):
                raise PermanentWriteError(f'Redis refused {self.redis_key(row)!r}: {error}{hint}') from (
                    error if isinstance(error, exceptions.RedisError) else None)
            LOG.error('%s: Redis refused %d of %d rows, first %r: %s%s', type(self).__name__, len(errors),
                      len(batch), self.redis_key(row), error, hint)
            self._own_last_error = f'{type(error).__name__}: {error}{hint}'
            if LINE < 3:   # 3.x counts them from the value returned
                self._cf2_dropped += len(errors)
        return sum(result for result in results if not isinstance(result, Exception)), len(errors)

    async def close(self):
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.aclose()


class BalancesRedis(_RedisBackend):
    """BALANCES into Redis: ``balances-<exchange>-<asset>``; ``timestamp`` is the receipt time."""
    channel = BALANCES
    default_key = 'balances'
    key_field = 'currency'


class PositionsRedis(_RedisBackend):
    """POSITIONS into Redis: ``positions-<exchange>-<symbol>``."""
    channel = POSITIONS
    default_key = 'positions'


class OrderInfoRedis(_RedisBackend):
    """ORDER_INFO into Redis: ``order_info-<exchange>-<symbol>``; a missing amount is ``null``."""
    channel = ORDER_INFO
    default_key = 'order_info'


class FillsRedis(_RedisBackend):
    """FILLS into Redis: ``fills-<exchange>-<symbol>``, with ``fee_asset``."""
    channel = FILLS
    default_key = 'fills'


# -- PostgreSQL ----------------------------------------------------------------------------------

def _utc(seconds: Optional[float]) -> Optional[datetime]:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


class _PostgresBackend(_AccountBackend):
    """Rows into a table the user created (``COLUMNS``), one ``INSERT ... ON CONFLICT DO NOTHING``
    per row in one transaction per batch; numbers stay ``Decimal`` (``NUMERIC``)."""

    default_table = ''
    COLUMNS: Sequence[Tuple[str, str]] = ()   # (column, row field)

    def __init__(self, host: str = '127.0.0.1', user: Optional[str] = None, pw: Optional[str] = None,
                 db: Optional[str] = None, port: Optional[int] = None, table: Optional[str] = None, *,
                 dsn: Optional[str] = None, **options):
        _require('asyncpg', 'postgres', type(self).__name__)
        super().__init__(**options)
        self.table = table or self.default_table
        parts = self.table.split('.') if isinstance(self.table, str) else []
        if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
            raise ValueError(f'table must be a name or schema.name of letters, digits and _, got {self.table!r}')
        self._qualified = '.'.join(f'"{part}"' for part in parts)
        self._connect_args = ({'dsn': dsn} if dsn else
                              {'host': host, 'port': port, 'user': user, 'password': pw, 'database': db})
        self.conn = None
        self._insert: Optional[str] = None

    def __repr__(self) -> str:   # never the password
        return f'{type(self).__name__}(table={self.table!r})'

    def _retryable(self) -> Tuple[type, ...]:
        import asyncpg
        return (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)

    @property
    def retryable_exceptions(self) -> Tuple[type, ...]:
        return self._retryable()

    async def connect(self):
        import asyncpg
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(**self._connect_args)
        if self._insert is None:
            await self._check_table()

    async def _check_table(self) -> None:
        rows = await self.conn.fetch(
            'SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 '
            'AND NOT attisdropped', self._qualified)
        if not rows:
            raise PermanentWriteError(
                f'table {self.table!r} does not exist: create it first (the SQL is in '
                f'docs/exchanges/backpack.md, "Backends")')
        present = {row['attname'] for row in rows}
        missing = [column for column, _ in self.COLUMNS if column not in present]
        if missing:
            raise PermanentWriteError(f'table {self.table!r} lacks the column(s) {missing}: create it with the '
                                      f'SQL in docs/exchanges/backpack.md, "Backends"')
        columns = ', '.join(f'"{column}"' for column, _ in self.COLUMNS)
        values = ', '.join(f'${i}' for i in range(1, len(self.COLUMNS) + 1))
        self._insert = f'INSERT INTO {self._qualified} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING'

    def values(self, row: Dict[str, Any]) -> tuple:
        out = []
        for _, field in self.COLUMNS:
            value = row.get(field)
            out.append(_utc(value) if field in ('timestamp', 'receipt_timestamp') else value)
        return tuple(out)

    async def write_batch(self, batch: list):
        import asyncpg
        records = [self.values(row) for row in batch]
        try:
            async with self.conn.transaction():
                await self.conn.executemany(self._insert, records)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as exc:
            self._insert = None   # the table may have changed: check it again before the next batch
            raise PermanentWriteError(f'PostgreSQL refused a batch for {self.table!r}: {exc}') from exc
        return None

    async def close(self):
        if self.conn is not None:
            conn, self.conn = self.conn, None
            self._insert = None
            await conn.close()


class BalancesPostgres(_PostgresBackend):
    """BALANCES into table ``balances``; ``timestamp`` is the receipt time."""
    channel = BALANCES
    default_table = 'balances'
    key_field = 'currency'
    COLUMNS = (('timestamp', 'timestamp'), ('receipt_timestamp', 'receipt_timestamp'), ('exchange', 'exchange'),
               ('currency', 'currency'), ('balance', 'balance'), ('reserved', 'reserved'))


class PositionsPostgres(_PostgresBackend):
    """POSITIONS into table ``positions``."""
    channel = POSITIONS
    default_table = 'positions'
    COLUMNS = (('timestamp', 'timestamp'), ('receipt_timestamp', 'receipt_timestamp'), ('exchange', 'exchange'),
               ('symbol', 'symbol'), ('position', 'position'), ('entry_price', 'entry_price'), ('side', 'side'),
               ('unrealised_pnl', 'unrealised_pnl'))


class OrderInfoPostgres(_PostgresBackend):
    """ORDER_INFO into table ``order_info`` (the order's ``id`` in column ``order_id``)."""
    channel = ORDER_INFO
    default_table = 'order_info'
    COLUMNS = (('timestamp', 'timestamp'), ('receipt_timestamp', 'receipt_timestamp'), ('exchange', 'exchange'),
               ('symbol', 'symbol'), ('order_id', 'id'), ('client_order_id', 'client_order_id'), ('side', 'side'),
               ('status', 'status'), ('type', 'type'), ('price', 'price'), ('amount', 'amount'),
               ('remaining', 'remaining'), ('account', 'account'))


class FillsPostgres(_PostgresBackend):
    """FILLS into table ``fills`` (the trade's ``id`` in column ``trade_id``), with ``fee_asset``."""
    channel = FILLS
    default_table = 'fills'
    COLUMNS = (('timestamp', 'timestamp'), ('receipt_timestamp', 'receipt_timestamp'), ('exchange', 'exchange'),
               ('symbol', 'symbol'), ('trade_id', 'id'), ('order_id', 'order_id'), ('side', 'side'),
               ('type', 'type'), ('liquidity', 'liquidity'), ('price', 'price'), ('amount', 'amount'),
               ('fee', 'fee'), ('fee_asset', 'fee_asset'), ('account', 'account'))
