"""cryptofeed's REST API for Backpack, on every line: history downloads and account calls.

``BackpackRestMixin`` is a base of ``BackpackFeed``, so the methods sit on the object that
streams, as on every cryptofeed exchange::

    feed = BackpackFeed(config={'auth': {'private_key': '...'}})
    for page in feed.trades_sync('SOL-USDC', start='2026-09-01 00:00:00', end='2026-09-01 01:00:00'):
        ...
    order = feed.place_order_sync('SOL-USDC', BUY, LIMIT, Decimal('1'), Decimal('100'))

Each method is a coroutine (``trades`` and ``candles``: async generators of pages) with a
``<name>_sync`` twin. The methods and their signatures are cryptofeed 2.x's ``RestExchange``
(on 2.x the feed is one); cryptofeed 3.0 removed that API, and there these are this package's
own, with the same names, arguments and results (the account results are this package's types). Everything goes through the feed's ``BackpackRestClient`` (retries,
Retry-After, circuit breaker, proxies, signing). Return shapes follow cryptofeed 2.4.1's own
REST mixins (``rest_adapters.py`` lists them): dicts for ``trades`` and ``ticker`` as most of
its mixins return, ``OrderBook``, ``Candle``, ``Funding``, ``OpenInterest``, and
``Balance``/``Position``/``OrderInfo``/``Fill`` for the account.

Rules worth knowing:

* **Pacing.** ``/api/v1/trades/history``, ``/api/v1/klines`` and ``/wapi/v1/history/*`` are
  paced by one ``RequestPacer`` per feed: at most ``history_rate_limit`` = (30, 60.0)
  requests per 60 s, shared by the async and ``_sync`` calls; assign another tuple to the
  feed to change it. The paging rules are in ``paging.py``.
* **Windows.** ``start``/``end`` are epoch seconds, ``datetime`` (naive = UTC) or text
  ``'YYYY-MM-DD HH:MM:SS[.ffffff]'`` (UTC); ``end`` defaults to now; ``NaN``/``inf`` are refused
  with an error naming the argument. Both ends are inclusive for trades and fills; ``candles``
  yields the candles overlapping ``[start, end)``.
* **Candle windows are costed before the first request.** Backpack documents no first candle
  and no row limit (ccxt windows by 1000; so does ``paging.kline_windows``), so the client cannot
  know where a market's history begins, and a guessed start (a launch date, 2015) could drop
  candles silently while still leaving hours of requests for short intervals (11 years of 1m
  candles are 6,000 requests, 3.4 h at 30 per minute). So ``candles`` clamps only what is certain:
  ``end`` to an hour past now (no candle starts later); then, when the window still needs more
  than ``max_requests`` requests (default ``CANDLE_MAX_REQUESTS`` = 600, 20 minutes at the default
  rate limit: a year of 1m candles), it raises ``BackpackHistoryWindowError`` before any request,
  naming the window, the requests and their time at the feed's ``history_rate_limit`` (which
  every other history call shares meanwhile). Pass ``max_requests`` to go beyond, knowingly.
* **Sync calls** run on a private event loop with a fork of the feed's REST client (its own
  session, the same settings, breaker and stats), closed when the call ends, so they work
  before, after and beside a running ``FeedHandler`` (in a thread of their own when the
  calling thread already runs a loop). A ``rest_client`` given its own aiohttp session cannot
  be forked (its connector decides the route): its sync calls raise ``BackpackConfigError``.
  ``retry_count``/``retry_delay`` are accepted for cryptofeed's signatures; retries follow
  ``BackpackConfig.max_retries``.
* **Account calls** without keys raise ``BackpackAuthError`` naming the setting to add. An
  order the exchange refuses raises ``BackpackRequestError`` with Backpack's ``code``
  (``INVALID_PRICE``, ``INSUFFICIENT_FUNDS``, ...) and message. The JSON body of a signed
  POST/DELETE is serialised from the same mapping that is signed, values rendered alike.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import math
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple, Union

import cryptofeed.exceptions

from cryptofeed.exchanges.backpack.core import records
from cryptofeed.exchanges.backpack.core.config import DEFAULT_REST_URL
from cryptofeed.exchanges.backpack.core.defines import (
    BALANCES, BUY, CANCEL_ORDER, CANDLES, FILL_OR_KILL, FUNDING, GOOD_TIL_CANCELED, IMMEDIATE_OR_CANCEL, L2_BOOK,
    LIMIT, MAKER_OR_CANCEL, MARKET, OPEN_INTEREST, ORDER_STATUS, ORDERS, PLACE_ORDER, POSITIONS, SELL, TICKER,
    TRADE_HISTORY, TRADES,
)
from cryptofeed.exchanges.backpack.core.errors import (
    BackpackAuthError, BackpackError, BackpackHistoryWindowError, BackpackProtocolError, BackpackRequestError,
)
from cryptofeed.exchanges.backpack.core.rest.paging import (
    HISTORY_PAGE_LIMIT, INTERVAL_SECONDS, MAX_KLINES, RequestPacer, kline_request_count, kline_windows, trade_pages,
)
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.core.wire.parse import (
    history_seconds, parse_capital, parse_rest_fill, parse_rest_order, parse_rest_position,
)
from cryptofeed.exchanges.backpack.core.wire.parse_rest import (
    parse_rest_book, parse_rest_funding, parse_rest_kline, parse_rest_open_interest, parse_rest_ticker,
    parse_rest_trade_dict,
)

__all__ = ['BackpackRestMixin', 'UnsupportedTradingOption', 'to_epoch_seconds', 'CANDLE_MAX_REQUESTS']

TimeLike = Union[int, float, str, datetime, None]

_SIDES = {BUY: 'Bid', SELL: 'Ask'}
_TIME_IN_FORCE = {GOOD_TIL_CANCELED: 'GTC', IMMEDIATE_OR_CANCEL: 'IOC', FILL_OR_KILL: 'FOK'}
_MAX_CLIENT_ID = 2 ** 32 - 1
_BOOK_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_MONTH_S = 31 * 86400
#: Most ``/api/v1/klines`` requests one ``candles`` call makes unless its ``max_requests`` says more.
CANDLE_MAX_REQUESTS = 600
_FUTURE_MARGIN_S = 3600   # ``end`` is clamped to this far past now: no candle starts later
_KEYS_HINT = ('add the key to the feed\'s config: auth.private_key (the base64 ED25519 secret of a Backpack '
              'API key), e.g. BackpackFeed(config={"auth": {"private_key": "..."}}), key_secret in a '
              'cryptofeed config\'s backpack section, or the BACKPACK_PRIVATE_KEY environment variable')

# The client of the ``*_sync`` call running in this context (a fork of ``feed.rest``).
_SYNC_CLIENT: contextvars.ContextVar[Optional[BackpackRestClient]] = contextvars.ContextVar(
    'backpack_sync_client', default=None)


def to_epoch_seconds(value: Union[int, float, str, datetime], name: str = 'time') -> float:
    """Epoch seconds of a number (seconds), a ``datetime`` (naive = UTC) or UTC text
    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (ISO ``T`` and an offset accepted)."""
    if isinstance(value, bool):
        raise ValueError(f'{name} must be epoch seconds, a datetime or UTC text, got {value!r}')
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f'{name} must be a finite time (epoch seconds, a datetime or UTC text), got {value!r}')
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f'{name} {value!r} is not a UTC time like 2026-09-01 16:52:00') from None
        return to_epoch_seconds(parsed, name)
    raise ValueError(f'{name} must be epoch seconds, a datetime or UTC text, got {type(value).__name__}')


def _window(start: TimeLike, end: TimeLike) -> Tuple[Optional[float], Optional[float]]:
    """(start, end) in seconds; ``end`` defaults to now when a start is given."""
    if start is None:
        if end is not None:
            raise ValueError('end was given without start; give both, or neither for the latest data')
        return None, None
    start_s = to_epoch_seconds(start, 'start')
    end_s = time.time() if end is None else to_epoch_seconds(end, 'end')
    if start_s > end_s:
        raise ValueError(f'start ({start_s}) is after end ({end_s})')
    return start_s, end_s


def _utc(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime('%Y-%m-%d %H:%M:%S')
    except (OverflowError, OSError, ValueError):
        return f'{seconds:.0f} s'


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``, ``41.3 days``."""
    if seconds < 120:
        return f'{seconds:.0f} s'
    if seconds < 7200:
        return f'{seconds / 60:.0f} min'
    if seconds < 3 * 86400:
        hours, rest = divmod(round(seconds / 60), 60)
        return f'{hours} h {rest} min'
    return f'{seconds / 86400:,.1f} days'


def _ms_ceil(seconds: float) -> int:
    return math.ceil(round(seconds * 1000, 6))


def _ms_floor(seconds: float) -> int:
    return math.floor(round(seconds * 1000, 6))


def _decimal(value: Any, name: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f'{name} must be a number, got {value!r}') from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f'{name} must be a positive number, got {value!r}')
    return number


async def _awaited(awaitable):
    return await awaitable


class _SyncCall:
    """A private event loop and a fork of the feed's REST client for one ``*_sync`` call.

    Runs in the calling thread, or in a thread of its own when the caller is inside a running
    event loop (whose thread must not block on itself).
    """

    def __init__(self, client: BackpackRestClient):
        self._client = client.fork()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._pool = None
        else:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='backpack-sync')
        self._loop = asyncio.new_event_loop()
        self._context = contextvars.copy_context()
        self._context.run(_SYNC_CLIENT.set, self._client)

    def run(self, awaitable):
        def drive():
            task = self._context.run(self._loop.create_task, _awaited(awaitable))
            return self._loop.run_until_complete(task)
        return drive() if self._pool is None else self._pool.submit(drive).result()

    def close(self) -> None:
        try:
            self.run(self._client.close())
            self.run(self._loop.shutdown_asyncgens())
        finally:
            if self._pool is None:
                self._loop.close()
            else:
                self._pool.submit(self._loop.close).result()
                self._pool.shutdown()


class _UnsupportedTradingOption(BackpackError, ValueError):
    """An order option Backpack does not offer (cryptofeed 3.0 has no exception of its own for it)."""


#: cryptofeed 2.x's ``UnsupportedTradingOption`` where the line has it, else this package's.
UnsupportedTradingOption = getattr(cryptofeed.exceptions, 'UnsupportedTradingOption', _UnsupportedTradingOption)


class BackpackRestMixin:
    """cryptofeed's REST methods for Backpack, on top of ``self.rest`` (a ``BackpackRestClient``).

    The class using it provides ``rest``, ``std_symbol_to_exchange_symbol`` and
    ``exchange_symbol_to_std_symbol`` (``BackpackFeed`` does).
    """

    api = DEFAULT_REST_URL
    rest_channels = (
        TRADES, TICKER, L2_BOOK, CANDLES, FUNDING, OPEN_INTEREST, ORDER_STATUS, ORDERS, PLACE_ORDER, CANCEL_ORDER,
        BALANCES, POSITIONS, TRADE_HISTORY,
    )
    order_options = {
        LIMIT: 'Limit', MARKET: 'Market', GOOD_TIL_CANCELED: 'GTC', IMMEDIATE_OR_CANCEL: 'IOC', FILL_OR_KILL: 'FOK',
        MAKER_OR_CANCEL: 'postOnly',
    }
    #: (requests, seconds): the most history requests sent in any window of that many seconds.
    history_rate_limit: Tuple[int, float] = (30, 60.0)

    # ------------------------------------------------------------------ plumbing

    def _client(self) -> BackpackRestClient:
        return _SYNC_CLIENT.get() or self.rest

    def _history_pacer(self) -> RequestPacer:
        pacer = self.__dict__.get('_backpack_history_pacer')
        limit, period = self.history_rate_limit
        if pacer is None or (pacer.max_requests, pacer.period_s) != (limit, period):
            pacer = self.__dict__['_backpack_history_pacer'] = RequestPacer(limit, period)
        return pacer

    def _signed_client(self, what: str) -> BackpackRestClient:
        client = self._client()
        if client.signer is None:
            raise BackpackAuthError(f'{what} needs Backpack API keys: {_KEYS_HINT}')
        return client

    def _symbols(self, symbol) -> Tuple[str, str]:
        """(exchange symbol, normalized symbol) of a cryptofeed symbol."""
        exchange = self.std_symbol_to_exchange_symbol(symbol)
        return exchange, self.exchange_symbol_to_std_symbol(exchange)

    def _std(self, exchange_symbol: str) -> str:
        return self.exchange_symbol_to_std_symbol(exchange_symbol)

    def _sync_run_coroutine(self, coroutine):
        try:
            call = _SyncCall(self.rest)
        except BaseException:
            coroutine.close()   # never started: no 'never awaited' warning
            raise
        try:
            return call.run(coroutine)
        finally:
            call.close()

    def _sync_run_generator(self, generator):
        call = _SyncCall(self.rest)
        try:
            while True:
                try:
                    page = call.run(generator.__anext__())
                except StopAsyncIteration:
                    return
                yield page
        finally:
            try:
                call.run(generator.aclose())
            finally:
                call.close()

    # ------------------------------------------------------------------ public data

    async def ticker(self, symbol: str, retry_count=1, retry_delay=60) -> Dict[str, Any]:
        """``{symbol, feed, bid, ask, timestamp}``: the best bid and ask now (``/api/v1/depth``)."""
        exchange, std = self._symbols(symbol)
        return parse_rest_ticker(await self._client().depth(exchange, 5), std)

    async def l2_book(self, symbol: str, retry_count=1, retry_delay=60) -> records.OrderBook:
        """The REST depth snapshot as an ``OrderBook`` (``sequence_number`` = ``lastUpdateId``),
        as deep as the feed's ``max_depth`` (all 1000 levels a side when 0)."""
        exchange, std = self._symbols(symbol)
        depth = getattr(self, 'max_depth', 0) or 0
        limit = next((n for n in _BOOK_LIMITS if n >= depth), 1000) if depth else 1000
        return parse_rest_book(await self._client().depth(exchange, limit), std, depth)

    async def trades(self, symbol: str, start: TimeLike = None, end: TimeLike = None, retry_count=1,
                     retry_delay=60) -> AsyncIterator[List[Dict[str, Any]]]:
        """Pages of trade dicts, oldest first: every trade with ``start <= timestamp <= end``
        exactly once (``/api/v1/trades/history``, paced); without ``start``, the latest 1000."""
        exchange, std = self._symbols(symbol)
        start_s, end_s = _window(start, end)
        client = self._client()
        if start_s is None:
            rows = await client.trades(exchange, HISTORY_PAGE_LIMIT)
            yield [parse_rest_trade_dict(row, std) for row in sorted(rows, key=lambda r: int(r['id']))]
            return
        pacer = self._history_pacer()

        async def fetch(limit: int, offset: int) -> List[dict]:
            async with pacer.slot():
                return await client.trades_history(exchange, limit, offset)

        async for rows in trade_pages(fetch, _ms_ceil(start_s), _ms_floor(end_s)):
            yield [parse_rest_trade_dict(row, std) for row in rows]

    def _candle_window(self, start: TimeLike, end: TimeLike, interval: str, max_requests: Optional[int],
                       symbol: Any = None) -> Tuple[float, float, int]:
        """``(start_s, end_s, requests)`` of a ``candles`` call, or the error it must raise before
        any request (see the module docstring, *Candle windows*)."""
        if interval not in self.candle_interval_map:
            raise ValueError(f'interval {interval!r} is not one of {", ".join(self.candle_interval_map)}')
        if max_requests is None:
            max_requests = CANDLE_MAX_REQUESTS
        elif isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
            raise ValueError(f'max_requests must be a positive integer, got {max_requests!r}')
        size = INTERVAL_SECONDS.get(self.candle_interval_map[interval])
        start_s, end_s = _window(start, end)
        now = time.time()
        if start_s is None:
            end_s = now
            start_s = end_s - MAX_KLINES * (size or _MONTH_S)
        end_s = min(end_s, now + max(_FUTURE_MARGIN_S, size or 0))
        requests = kline_request_count(math.floor(start_s), math.ceil(end_s), size)
        if requests > max_requests:
            limit, period = self.history_rate_limit
            what = f'{symbol} {interval}' if symbol is not None else interval
            raise BackpackHistoryWindowError(
                f'candles({what}): the window {_utc(start_s)} .. {_utc(end_s)} UTC ({_duration(end_s - start_s)}) '
                f'needs {requests:,} requests to /api/v1/klines ({MAX_KLINES} candles each), about '
                f'{_duration(requests / limit * period)} at the history rate limit of {limit} requests per '
                f'{period:g} s, which every other history call of this feed waits behind meanwhile; the limit is '
                f'max_requests={max_requests}: narrow the window, take a longer interval, or pass '
                f'max_requests={requests} to download it anyway')
        return start_s, end_s, requests

    def candles_sync(self, symbol: str, start: TimeLike = None, end: TimeLike = None, interval: str = '1m',
                     retry_count=1, retry_delay=60, max_requests: Optional[int] = None):
        """``candles`` as a generator of pages; a window it refuses raises here, at the call."""
        self._candle_window(start, end, interval, max_requests, symbol)
        return self._sync_run_generator(self.candles(symbol, start, end, interval, retry_count, retry_delay,
                                                     max_requests=max_requests))

    async def candles(self, symbol: str, start: TimeLike = None, end: TimeLike = None, interval: str = '1m',
                      retry_count=1, retry_delay=60, max_requests: Optional[int] = None) -> AsyncIterator[List[records.Candle]]:
        """Pages of ``Candle``s overlapping ``[start, end)``, oldest first, for any interval of
        ``candle_interval_map``; without ``start``, the latest 1000 candles. Intervals without
        trades have no prices and are left out, as on the CANDLES stream. A window needing more
        than ``max_requests`` requests (default ``CANDLE_MAX_REQUESTS``) raises
        ``BackpackHistoryWindowError`` before the first one; ``end`` is clamped to an hour past now."""
        start_s, end_s, _ = self._candle_window(start, end, interval, max_requests, symbol)
        exchange, std = self._symbols(symbol)
        venue_interval = self.candle_interval_map[interval]
        size = INTERVAL_SECONDS.get(venue_interval)
        client = self._client()
        pacer = self._history_pacer()
        last_start = None
        for first, stop in kline_windows(math.floor(start_s), math.ceil(end_s), size):
            async with pacer.slot():
                rows = await client.klines(exchange, venue_interval, first, stop)
            now = time.time()
            page = []
            for row in rows or ():
                candle = parse_rest_kline(row, std, interval, now)
                if candle is None or candle.start >= end_s or candle.stop <= start_s:
                    continue
                if last_start is not None and candle.start <= last_start:
                    continue  # the same candle from the previous window
                last_start = candle.start
                page.append(candle)
            if page:
                yield page

    async def funding(self, symbol: str, retry_count=1, retry_delay=60) -> records.Funding:
        """The current funding of a perpetual (``/api/v1/markPrices``): mark price, the rate of
        the running interval and the next funding time."""
        exchange, std = self._symbols(symbol)
        self._require_perp(std, 'funding')
        rows = await self._client().mark_prices(exchange)
        row = next((r for r in rows or () if r.get('symbol') == exchange and 'fundingRate' in r), None)
        if row is None:
            raise BackpackProtocolError(f'/api/v1/markPrices has no funding rate for {exchange}')
        return parse_rest_funding(row, std, time.time())

    async def open_interest(self, symbol: str, retry_count=1, retry_delay=60) -> records.OpenInterest:
        """Open interest of a perpetual in contracts (``/api/v1/openInterest``)."""
        exchange, std = self._symbols(symbol)
        self._require_perp(std, 'open interest')
        rows = await self._client().open_interest(exchange)
        row = next((r for r in rows or () if r.get('symbol') == exchange), None)
        if row is None:
            raise BackpackProtocolError(f'/api/v1/openInterest has no row for {exchange}')
        return parse_rest_open_interest(row, std)

    @staticmethod
    def _require_perp(std: str, what: str) -> None:
        if not std.endswith('-PERP'):
            raise ValueError(f'Backpack publishes {what} for perpetuals only; {std} is spot '
                             f'(use e.g. {std}-PERP)')

    # ------------------------------------------------------------------ account

    async def balances(self) -> List[records.Balance]:
        """One ``Balance`` per asset: ``balance`` = available + locked, ``reserved`` = locked."""
        return parse_capital(await self._signed_client('balances()').balances() or {}, keep_raw=True)

    async def positions(self, symbol: Optional[str] = None) -> List[records.Position]:
        """Open perpetual positions (signed net quantity), optionally of one symbol."""
        client = self._signed_client('positions()')
        exchange = None if symbol is None else self._symbols(symbol)[0]
        now = time.time()
        return [parse_rest_position(row, self._std(row['symbol']), now, dict(row))
                for row in await client.positions(exchange)]

    def positions_sync(self, symbol: Optional[str] = None) -> List[records.Position]:
        return self._sync_run_coroutine(self.positions(symbol))

    async def orders(self, symbol: Optional[str] = None) -> List[records.OrderInfo]:
        """Open orders, optionally of one symbol."""
        client = self._signed_client('orders()')
        exchange = None if symbol is None else self._symbols(symbol)[0]
        return [_order(row, self._std(row['symbol'])) for row in await client.open_orders(exchange)]

    async def order_status(self, order_id: str, symbol: Optional[str] = None) -> records.OrderInfo:
        """Any order of the account, open or closed. With ``symbol`` one request usually
        suffices (``/api/v1/order``); without, open orders and then the order history are searched."""
        client = self._signed_client('order_status()')
        order_id = str(order_id)
        exchange = None if symbol is None else self._symbols(symbol)[0]
        if exchange is not None:
            try:
                row = await client.signed_get('orderQuery', '/api/v1/order', {'symbol': exchange, 'orderId': order_id})
                return _order(row, self._std(row['symbol']))
            except BackpackRequestError as exc:
                if exc.status != 404:
                    raise
        else:
            for row in await client.open_orders():
                if str(row.get('id')) == order_id:
                    return _order(row, self._std(row['symbol']))
        async with self._history_pacer().slot():
            rows = await client.signed_get('orderHistoryQueryAll', '/wapi/v1/history/orders',
                                           {'orderId': order_id, 'symbol': exchange, 'limit': 1})
        if not rows:
            raise BackpackRequestError(f'order {order_id} not found', status=404, code='RESOURCE_NOT_FOUND',
                                       path='/wapi/v1/history/orders')
        return _order(rows[0], self._std(rows[0]['symbol']))

    def order_status_sync(self, order_id: str, symbol: Optional[str] = None) -> records.OrderInfo:
        return self._sync_run_coroutine(self.order_status(order_id, symbol))

    async def trade_history(self, symbol: Optional[str] = None, start: TimeLike = None,
                            end: TimeLike = None) -> List[records.Fill]:
        """The account's fills, oldest first, within ``[start, end]`` when given
        (``/wapi/v1/history/fills`` ascending, paged by offset, paced)."""
        client = self._signed_client('trade_history()')
        exchange = None if symbol is None else self._symbols(symbol)[0]
        start_s, end_s = _window(start, end)
        from_ms = None if start_s is None else _ms_ceil(start_s)
        to_ms = None if end_s is None else _ms_floor(end_s) + 1   # the exchange's ``to`` is exclusive
        pacer = self._history_pacer()
        fills: List[records.Fill] = []
        offset = 0
        while True:
            async with pacer.slot():
                page = await client.fill_history(exchange, from_ms=from_ms, to_ms=to_ms, limit=HISTORY_PAGE_LIMIT,
                                                 offset=offset, sort_direction='Asc')
            fills.extend(parse_rest_fill(row, self._std(row['symbol']), None, dict(row)) for row in page or ())
            if not page or len(page) < HISTORY_PAGE_LIMIT:
                return fills
            offset += len(page)

    async def place_order(self, symbol: str, side: str, order_type: str, amount: Union[Decimal, str, int],
                          price: Union[Decimal, str, int, None] = None, time_in_force: Optional[str] = None,
                          client_order_id: Union[int, str, None] = None, post_only: bool = False,
                          reduce_only: Optional[bool] = None) -> records.OrderInfo:
        """Place an order; returns its ``OrderInfo`` as the exchange accepted it.

        ``side`` BUY/SELL; ``order_type`` LIMIT (needs ``price``) or MARKET (no price);
        ``time_in_force`` GOOD_TIL_CANCELED, IMMEDIATE_OR_CANCEL, FILL_OR_KILL or
        MAKER_OR_CANCEL (= ``post_only``); ``client_order_id`` an integer 0..2**32-1.
        """
        client = self._signed_client('place_order()')
        exchange, std = self._symbols(symbol)
        body = self._order_body(exchange, side, order_type, amount, price, time_in_force, client_order_id,
                                post_only, reduce_only)
        return _order(await client.signed_post('orderExecute', '/api/v1/order', body), std)

    def _order_body(self, exchange: str, side: str, order_type: str, amount, price, time_in_force,
                    client_order_id, post_only: bool, reduce_only: Optional[bool]) -> Dict[str, Any]:
        if side not in _SIDES:
            raise ValueError(f'side must be {BUY!r} or {SELL!r} (cryptofeed.defines BUY/SELL), got {side!r}')
        if order_type not in (LIMIT, MARKET):
            raise UnsupportedTradingOption(f'order_type must be LIMIT or MARKET, got {order_type!r}')
        body: Dict[str, Any] = {'symbol': exchange, 'side': _SIDES[side],
                                'orderType': self.order_options[order_type],
                                'quantity': _decimal(amount, 'amount')}
        if order_type == LIMIT:
            if price is None:
                raise ValueError('a LIMIT order needs a price')
            body['price'] = _decimal(price, 'price')
        elif price is not None:
            raise ValueError('a MARKET order takes no price')
        if time_in_force == MAKER_OR_CANCEL:
            post_only = True
        elif time_in_force is not None:
            if time_in_force not in _TIME_IN_FORCE:
                raise UnsupportedTradingOption(
                    f'time_in_force must be GOOD_TIL_CANCELED, IMMEDIATE_OR_CANCEL, FILL_OR_KILL or '
                    f'MAKER_OR_CANCEL, got {time_in_force!r}')
            body['timeInForce'] = _TIME_IN_FORCE[time_in_force]
        if post_only:
            if order_type != LIMIT or 'timeInForce' in body and body['timeInForce'] != 'GTC':
                raise ValueError('post-only (MAKER_OR_CANCEL) applies to good-til-cancelled LIMIT orders only')
            body['postOnly'] = True
        if client_order_id is not None:
            try:
                client_id = int(client_order_id)
            except (TypeError, ValueError):
                client_id = -1
            if isinstance(client_order_id, bool) or not 0 <= client_id <= _MAX_CLIENT_ID:
                raise ValueError(f'client_order_id must be an integer 0..{_MAX_CLIENT_ID} on Backpack, '
                                 f'got {client_order_id!r}')
            body['clientId'] = client_id
        if reduce_only is not None:
            body['reduceOnly'] = bool(reduce_only)
        return body

    async def cancel_order(self, order_id: str, symbol: str) -> records.OrderInfo:
        """Cancel an open order; returns it with status CANCELLED (or, if the exchange only
        accepted the request (202), as ``order_status`` then reports it)."""
        client = self._signed_client('cancel_order()')
        exchange, std = self._symbols(symbol)
        row = await client.signed_delete('orderCancel', '/api/v1/order', {'orderId': str(order_id), 'symbol': exchange})
        if not row:
            return await self.order_status(order_id, symbol)
        return _order(row, std)

    def cancel_order_sync(self, order_id: str, symbol: str) -> records.OrderInfo:
        return self._sync_run_coroutine(self.cancel_order(order_id, symbol))

    # ------------------------------------------------------------------ the _sync twins
    # cryptofeed 2.x's RestExchange defines these around the coroutines above; 3.0 has no
    # RestExchange, so they are defined here for every line (candles_sync is above).

    def ticker_sync(self, symbol: str, retry_count=1, retry_delay=60) -> Dict[str, Any]:
        return self._sync_run_coroutine(self.ticker(symbol))

    def l2_book_sync(self, symbol: str, retry_count=1, retry_delay=60):
        return self._sync_run_coroutine(self.l2_book(symbol))

    def trades_sync(self, symbol: str, start: TimeLike = None, end: TimeLike = None, retry_count=1, retry_delay=60):
        return self._sync_run_generator(self.trades(symbol, start=start, end=end))

    def funding_sync(self, symbol: str, retry_count=1, retry_delay=60):
        return self._sync_run_coroutine(self.funding(symbol))

    def open_interest_sync(self, symbol: str, retry_count=1, retry_delay=60):
        return self._sync_run_coroutine(self.open_interest(symbol))

    def balances_sync(self):
        return self._sync_run_coroutine(self.balances())

    def orders_sync(self, symbol: Optional[str] = None):
        return self._sync_run_coroutine(self.orders(symbol))

    def trade_history_sync(self, symbol: Optional[str] = None, start: TimeLike = None, end: TimeLike = None):
        return self._sync_run_coroutine(self.trade_history(symbol, start, end))

    def place_order_sync(self, symbol: str, side: str, order_type: str, amount, price=None, **kwargs):
        return self._sync_run_coroutine(self.place_order(symbol, side, order_type, amount, price, **kwargs))


def _order(row: dict, symbol: str):
    """An order object or history row -> ``OrderInfo`` stamped with its creation time."""
    return parse_rest_order(row, symbol, history_seconds(row['createdAt']), dict(row))
