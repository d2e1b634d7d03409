"""``CcxtBackpackFeed``: Backpack through ccxt.pro's ``backpack`` client, as a cryptofeed ``Feed``.

The fallback path of the migration (DESIGN D8, D11; seed 003). Use it where a deployment still
depends on ccxt's view of Backpack, or to shadow the native ``BackpackFeed`` during a rollout;
new deployments should use ``BackpackFeed``. It needs the ``ccxt`` extra
(``pip install 'cryptofeed-backpack[ccxt]'``); this module imports without it, and building the
feed without it raises ``BackpackConfigError`` saying what to install.

It runs under ``FeedHandler`` like any feed, takes the same ``config=`` as ``BackpackFeed``
(``BackpackConfig`` or what ``BackpackConfig.coerce`` accepts: URLs, ``ca_file``, proxies,
keys, ``window_ms``) and the same symbols, and emits the same cryptofeed types:

    TRADES       ccxt.pro watch_trades           Trade
    L2_BOOK      ccxt.pro watch_order_book       OrderBook: full book first, then deltas
                 (ccxt fetches the REST snapshot and applies depth frames; see BookMirror)
    TICKER       ccxt.pro watch_bids_asks        Ticker (best bid / ask, from bookTicker)
    ORDER_INFO   ccxt.pro watch_orders           OrderInfo          (keys needed)
    POSITIONS    ccxt.pro watch_positions        Position           (keys needed)
    BALANCES     ccxt fetch_balance once per (re)start, then watch_balance   Balance (keys needed)

Not offered: FILLS (ccxt.pro's backpack client has no ``watchMyTrades``), CANDLES, FUNDING,
INDEX, OPEN_INTEREST, LIQUIDATIONS: use ``BackpackFeed``.

Options beyond cryptofeed's ``Feed`` arguments: ``snapshot_interval`` (seconds between forced
REST resynchronisations of every book; in ``rest_only`` mode, between book polls), ``rest_only``
(no WebSocket: books, tickers and trades are polled over REST, for networks that block
WebSockets), ``poll_interval`` (trade and ticker polls in ``rest_only`` mode), ``keep_raw``,
``reconnect_backoff_base_s`` / ``reconnect_backoff_max_s``, ``region_retry_s`` (how long to wait
after HTTP 451) and ``ccxt_options`` (extra settings passed to the ccxt client, last).

What ccxt does not guarantee, and the native feed does (docs/migrations/backpack_ccxt.md):

* **Book continuity.** Once synchronised, ccxt applies every depth frame newer than its book
  without checking that no frame is missing. This feed resynchronises a book from a new REST
  snapshot after every connection error, when the book crosses, and every
  ``snapshot_interval`` seconds, which bounds how long an unnoticed gap can last; it cannot
  detect the gap itself.
* **Lossless trades.** Trades lost in a disconnect are not fetched again; a jump in trade ids
  is counted (``trade_gaps_unrecovered``) and logged.
* **Timestamps** come from ccxt in milliseconds (Backpack sends microseconds), and trades carry
  the event time ``E`` instead of the trade time ``T``.

HTTP 429 (``Retry-After`` honoured) and 451 (logged once, retried every ``region_retry_s``)
are raised as this package's ``BackpackRateLimitedError`` / ``BackpackRegionRestrictedError``
from ccxt's error hook. ``metrics_snapshot()`` and ``health()`` report like the native feed's.
The feed owns its ccxt client and its tasks and closes them on shutdown.
"""
from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time
from collections import defaultdict
from typing import Any, Awaitable, Callable, Dict, List, Optional
from urllib.parse import urlsplit

from cryptofeed.config import Config
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import (
    BALANCES, CANDLES, FILLS, FUNDING, INDEX, L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, ORDER_INFO, POSITIONS, TICKER,
    TRADES,
)
from cryptofeed.feed import Feed

from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays, parse_retry_after
from cryptofeed.exchanges.backpack.hosts.ccxt_convert import (
    BookMirror, parse_ccxt_balances, parse_ccxt_order, parse_ccxt_position, parse_ccxt_ticker, parse_ccxt_trade,
    to_decimal,
)
from cryptofeed.exchanges.backpack.core.config import DEFAULT_REST_URL, DEFAULT_WS_URL, BackpackConfig
from cryptofeed.exchanges.backpack.core.defines import BACKPACK
from cryptofeed.exchanges.backpack.core.errors import (
    BackpackConfigError, BackpackRateLimitedError, BackpackRegionRestrictedError,
)
from cryptofeed.exchanges.backpack.hosts.symbols import BackpackSymbolsMixin
from cryptofeed.exchanges.backpack.core.ops.health import BackpackHealthReport, evaluate_health
from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics
from cryptofeed.exchanges.backpack.core.ops.prometheus import release_feed, serve_feed
from cryptofeed.exchanges.backpack.hosts.line import lifecycle
from cryptofeed.exchanges.backpack.hosts.registry import CCXT_INSTALL_HINT
from cryptofeed.exchanges.backpack.core.symbols import normalized_to_exchange

__all__ = ['CcxtBackpackFeed', 'client_settings', 'require_ccxt', 'UNSUPPORTED_CHANNELS']

LOG = log.get()

PRIVATE_CHANNELS = (ORDER_INFO, POSITIONS, BALANCES)
UNSUPPORTED_CHANNELS = {
    FILLS: "ccxt.pro's backpack client cannot watch fills (it has no watchMyTrades)",
    CANDLES: 'not offered by CcxtBackpackFeed', FUNDING: 'not offered by CcxtBackpackFeed',
    INDEX: 'not offered by CcxtBackpackFeed', OPEN_INTEREST: 'not offered by CcxtBackpackFeed',
    LIQUIDATIONS: 'not offered by CcxtBackpackFeed',
}
_REGION_MESSAGE = ('Backpack refuses requests from this location (HTTP 451); retrying every %.0f s. Route the '
                   'traffic through a proxy in an allowed region (BackpackConfig.proxies)')
_WARN_EVERY_S = 10.0


def require_ccxt():
    """``ccxt.pro``, or ``BackpackConfigError`` saying what to install (or which flag to set)."""
    try:
        return importlib.import_module('ccxt.pro')
    except ImportError as exc:
        raise BackpackConfigError(f'{CCXT_INSTALL_HINT} ({exc})') from None


@functools.lru_cache(maxsize=1)
def _client_class():
    """ccxt.pro's backpack class with HTTP 429/451 raised as this package's errors."""
    pro = require_ccxt()

    class BackpackCcxtClient(pro.backpack):
        def handle_errors(self, code, reason, url, method, headers, body, response, request_headers, request_body):
            path = urlsplit(url).path
            if code == 451:
                raise BackpackRegionRestrictedError('Backpack refuses requests from this location', status=451,
                                                    path=path, body=body)
            if code == 429:
                raise BackpackRateLimitedError('Backpack rate limit', status=429, path=path, body=body,
                                               retry_after=parse_retry_after((headers or {}).get('Retry-After')))
            return super().handle_errors(code, reason, url, method, headers, body, response, request_headers,
                                         request_body)

    return BackpackCcxtClient


def client_settings(config: BackpackConfig, extra: Optional[dict] = None) -> dict:
    """The ccxt constructor settings for ``config``. Pure apart from reading proxy variables.

    URLs go to ``urls.api``; the REST proxy to ``httpsProxy`` (HTTP CONNECT) or ``socksProxy``;
    the WebSocket proxy to ``wsProxy``/``wssProxy`` or ``wsSocksProxy``; keys to ``apiKey``
    (the base64 public key) and ``secret`` (the base64 seed); ``window_ms`` to ccxt's
    ``recvWindow``. ``extra`` is merged last. The TLS context (``ca_file``) is set on the client
    separately (``ssl_context``), as ccxt expects.
    """
    settings: Dict[str, Any] = {
        'enableRateLimit': True,
        'newUpdates': True,
        'urls': {'api': {'public': config.rest_url, 'private': config.rest_url,
                         'ws': {'public': config.ws_url, 'private': config.ws_url}}},
        'options': {'recvWindow': str(config.window_ms)},
    }
    rest_proxy, ws_proxy = config.rest_proxy, config.ws_proxy
    if rest_proxy:
        settings['socksProxy' if urlsplit(rest_proxy).scheme.startswith('socks') else 'httpsProxy'] = rest_proxy
    if ws_proxy:
        if urlsplit(ws_proxy).scheme.startswith('socks'):
            settings['wsSocksProxy'] = ws_proxy
        else:
            settings['wssProxy' if config.ws_url.startswith('wss://') else 'wsProxy'] = ws_proxy
    if config.auth is not None:
        settings['apiKey'] = config.auth.derived_public_key
        settings['secret'] = config.auth.private_key.get_secret_value()
    settings.update(extra or {})
    return settings


def _wanted(subscription, symbols, channels) -> Dict[str, set]:
    """cryptofeed channel -> normalized symbols asked for, from ``subscription`` or ``channels``."""
    if subscription is None:
        subscription = {channel: symbols or () for channel in channels or ()}
    return {channel: {str(s) for s in syms} for channel, syms in subscription.items()}


class CcxtBackpackFeed(BackpackSymbolsMixin, lifecycle(), Feed):
    """Backpack via ccxt.pro under ``FeedHandler``; see the module docstring for what it offers."""

    id = BACKPACK
    websocket_endpoints = [WebsocketEndpoint(DEFAULT_WS_URL)]
    rest_endpoints = [RestEndpoint(DEFAULT_REST_URL, routes=Routes('/api/v1/markets'))]
    websocket_channels = {
        TRADES: 'trade', L2_BOOK: 'depth', TICKER: 'bookTicker', ORDER_INFO: 'account.orderUpdate',
        POSITIONS: 'account.positionUpdate', BALANCES: 'account.balanceUpdate',
    }
    request_limit = 20

    def __init__(self, config=None, *, snapshot_interval: Optional[float] = 30.0, rest_only: bool = False,
                 poll_interval: float = 1.0, keep_raw: bool = False, reconnect_backoff_base_s: float = 0.5,
                 reconnect_backoff_max_s: float = 30.0, region_retry_s: float = 60.0,
                 ccxt_options: Optional[dict] = None, **kwargs):
        require_ccxt()
        self.backpack_config = BackpackConfig.coerce(config)
        if snapshot_interval is not None and not snapshot_interval > 0:
            raise BackpackConfigError(f'snapshot_interval must be > 0 seconds (or None), got {snapshot_interval!r}')
        if rest_only and snapshot_interval is None:
            raise BackpackConfigError('rest_only=True polls books every snapshot_interval seconds; give one')
        if not poll_interval > 0 or not region_retry_s > 0:
            raise BackpackConfigError('poll_interval and region_retry_s must be > 0 seconds')
        backoff_delays(reconnect_backoff_base_s, reconnect_backoff_max_s)  # raises ValueError if inconsistent
        wanted = _wanted(kwargs.get('subscription'), kwargs.get('symbols'), kwargs.get('channels'))
        self._check_channels(list(wanted), rest_only)
        with self._no_symbol_download():
            super().__init__(config=self._cryptofeed_config(config), **kwargs)
        # What cryptofeed 2.x's Feed derives from its config and channels; 3.x has neither.
        auth = self.backpack_config.auth
        self.key_id = getattr(self, 'key_id', None) or (auth.derived_public_key if auth is not None else None)
        self.requires_authentication = any(channel in PRIVATE_CHANNELS for channel in wanted)
        self.snapshot_interval = snapshot_interval
        self.rest_only = rest_only
        self.poll_interval = poll_interval
        self.keep_raw = keep_raw
        self.reconnect_backoff_base_s = reconnect_backoff_base_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self.region_retry_s = region_retry_s
        self.ccxt_options = dict(ccxt_options or {})
        self.metrics = FeedMetrics()
        self.metrics_server = None  # the /metrics + /healthz server while running, with metrics_port set
        self.client = None  # the ccxt client, built by start() and closed by shutdown()
        self._wanted = {channel: sorted(symbols) for channel, symbols in wanted.items()}
        self._books: Dict[str, BookMirror] = {s: BookMirror(s, self.max_depth) for s in self._wanted.get(L2_BOOK, ())}
        self.metrics.expect_books(self._books)
        self._last_trade_id: Dict[str, int] = {}
        self._balances: Dict[str, tuple] = {}
        self._synced_at: Dict[str, float] = {}
        self._book_connection: Dict[str, Any] = {}
        self._last_connection = None
        self._scheduled_resyncs = 0
        self._rest_retries = 0
        self._ccxt_symbols: Dict[str, str] = {}
        self._warned_at: Dict[str, float] = defaultdict(float)
        self._tasks: set = set()

    # ------------------------------------------------------------------ construction helpers

    def _check_channels(self, channels: List[str], rest_only: bool) -> None:
        problems = [f'{channel}: {UNSUPPORTED_CHANNELS.get(channel, "unknown channel")}'
                    for channel in channels if channel not in self.websocket_channels]
        private = [c for c in channels if c in PRIVATE_CHANNELS]
        if private and rest_only:
            problems.append(f'{", ".join(private)}: private channels need the WebSocket; drop rest_only')
        if private and not self.backpack_config.enable_private_channels:
            problems.append(f'{", ".join(private)}: set enable_private_channels=True and auth in the config')
        if problems:
            raise BackpackConfigError('CcxtBackpackFeed cannot serve ' + '; '.join(problems)
                                      + '. The native BackpackFeed offers every Backpack channel.')

    def _cryptofeed_config(self, config) -> Config:
        """cryptofeed's view of ``config``, with our keys in its ``backpack`` section so that
        ``Feed`` accepts the private channels whichever form the keys were given in."""
        cryptofeed_config = Config(config if isinstance(config, (Config, str)) or (
            isinstance(config, dict) and 'backpack' in config) else None)
        auth = self.backpack_config.auth
        if auth is not None:
            section = dict(cryptofeed_config.config.get('backpack') or {})
            section.update(key_id=auth.derived_public_key, key_secret=auth.private_key.get_secret_value())
            cryptofeed_config.config['backpack'] = section
        return cryptofeed_config

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> list:
        """No cryptofeed connections: ccxt owns the sockets (see ``_start``)."""
        return []

    def _start(self, loop: asyncio.AbstractEventLoop) -> list:
        """Build the ccxt client and start one supervised task per channel and symbol; no
        cryptofeed connection to run (the line's lifecycle then starts the backends)."""
        self.metrics.mark_started()
        if self.backpack_config.metrics_port is not None:
            self.metrics_server = serve_feed(self, self.backpack_config.metrics_host,
                                             self.backpack_config.metrics_port, loop)
        self.client = _client_class()(client_settings(self.backpack_config, self.ccxt_options))
        self.client.ssl_context = self.backpack_config.ssl_context()
        self._warn_on_ccxt_capabilities()
        for channel, symbols in self._wanted.items():
            if channel == BALANCES:
                self._spawn_step(loop, BALANCES, None, self._balances_loop)
            elif channel == POSITIONS:
                self._spawn_step(loop, POSITIONS, None, functools.partial(self._positions_step, symbols))
            else:
                for symbol in symbols:
                    self._spawn_step(loop, channel, symbol, self._step_for(channel, symbol))
        return []

    def _step_for(self, channel: str, symbol: str) -> Callable[[], Awaitable[None]]:
        steps = ({TRADES: self._poll_trades_step, L2_BOOK: self._poll_book_step, TICKER: self._poll_ticker_step}
                 if self.rest_only else
                 {TRADES: self._trades_step, L2_BOOK: self._book_step, TICKER: self._ticker_step,
                  ORDER_INFO: self._orders_step})
        return functools.partial(steps[channel], symbol)

    def _spawn_step(self, loop, channel: str, symbol: Optional[str], step: Callable[[], Awaitable[None]]) -> None:
        task = loop.create_task(self._supervise(channel, symbol, step))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self):
        """Cancel every task, close the ccxt client (its sockets and HTTP session), then let
        cryptofeed's shutdown flush the backends."""
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.close()
        await release_feed(self, self.metrics_server)
        self.metrics_server = None
        return await super().shutdown()

    def _warn_on_ccxt_capabilities(self) -> None:
        needed = {TRADES: 'watchTrades', L2_BOOK: 'watchOrderBook', TICKER: 'watchBidsAsks',
                  ORDER_INFO: 'watchOrders', POSITIONS: 'watchPositions', BALANCES: 'watchBalance'}
        if self.rest_only:
            needed = {TRADES: 'fetchTrades', L2_BOOK: 'fetchOrderBook', TICKER: 'fetchOrderBook'}
        for channel in self._wanted:
            flag = self.client.has.get(needed.get(channel, ''))
            if flag is not True:
                LOG.warning('%s: ccxt %s marks %s as %r for backpack; %s may not work', self.id,
                            importlib.import_module('ccxt').__version__, needed.get(channel), flag, channel)

    # ------------------------------------------------------------------ supervision

    async def _supervise(self, channel: str, symbol: Optional[str], step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` forever; on errors, count, log (rate-limited) and wait before the next."""
        what = channel if symbol is None else f'{channel} {symbol}'
        delays = None
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except BackpackConfigError as exc:  # a symbol Backpack does not list: nothing to retry
                if channel == L2_BOOK:
                    self.metrics.forget_book(symbol)
                LOG.error('%s: %s; %s is not watched', self.id, exc, what)
                return
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                if channel == L2_BOOK:
                    self._resync(symbol)
                delays = delays or backoff_delays(self.reconnect_backoff_base_s, self.reconnect_backoff_max_s)
                await asyncio.sleep(self._on_error(what, exc, delays))
            else:
                delays = None

    def _on_error(self, what: str, exc: Exception, delays) -> float:
        """Count and log ``exc`` from ``what``; return how long to wait before trying again."""
        ccxt = importlib.import_module('ccxt')
        if isinstance(exc, BackpackRegionRestrictedError):
            self.metrics.on_rest_failure()
            self._warn('451', _REGION_MESSAGE, self.region_retry_s, level=logging.ERROR, every=3600.0)
            return self.region_retry_s
        if isinstance(exc, BackpackRateLimitedError):
            self._rest_retries += 1
            delay = exc.retry_after if exc.retry_after is not None else next(delays)
            self._warn('429', '%s: rate limited (HTTP 429); waiting %.2f s', what, delay)
            return delay
        if isinstance(exc, ccxt.AuthenticationError):
            self.metrics.on_server_error()
            self._warn(f'auth {what}', '%s: credentials rejected: %s', what, exc, level=logging.ERROR)
            return self.reconnect_backoff_max_s
        if isinstance(exc, ccxt.NetworkError):
            delay = next(delays)
            self._warn(f'net {what}', '%s: connection problem (%s); retrying in %.2f s', what, exc, delay)
            return delay
        if isinstance(exc, ccxt.BaseError):
            self.metrics.on_server_error()
        else:
            self.metrics.on_parse_error()
        delay = next(delays)
        self._warn(f'error {what}', '%s: %s: %s; retrying in %.2f s', what, type(exc).__name__, exc, delay)
        return delay

    def _warn(self, key: str, message: str, *args, level: int = logging.WARNING, every: float = _WARN_EVERY_S):
        now = time.monotonic()
        if now - self._warned_at[key] >= every or not self._warned_at[key]:
            self._warned_at[key] = now
            LOG.log(level, '%s: ' + message, self.id, *args)

    # ------------------------------------------------------------------ symbols

    def _ccxt_symbol(self, symbol: str) -> str:
        """cryptofeed symbol -> ccxt's unified symbol, through ccxt's own market table."""
        found = self._ccxt_symbols.get(symbol)
        if found is None:
            market_id = normalized_to_exchange(symbol)
            if market_id not in (self.client.markets_by_id or {}):
                raise BackpackConfigError(f'{symbol} is not listed by Backpack (no {market_id} in /api/v1/markets)')
            found = self._ccxt_symbols[symbol] = self.client.safe_symbol(market_id)
        return found

    async def _markets(self) -> None:
        if self.client.markets is None:
            await self.client.load_markets()

    def _connection(self):
        """ccxt's current WebSocket client object; a new one means ccxt reconnected (counted once)."""
        connection = self.client.clients.get(self.backpack_config.ws_url)
        if connection is not self._last_connection and connection is not None:
            if self._last_connection is not None:
                self.metrics.on_reconnect()
            self._last_connection = connection
        return connection

    # ------------------------------------------------------------------ WebSocket steps

    async def _trades_step(self, symbol: str) -> None:
        await self._markets()
        trades = await self.client.watch_trades(self._ccxt_symbol(symbol))
        self._connection()
        await self._emit_trades(symbol, trades)

    async def _emit_trades(self, symbol: str, trades) -> None:
        receipt = time.time()
        last = self._last_trade_id.get(symbol)
        for item in trades:
            trade_id = int(item['id'])
            if last is not None and trade_id <= last:
                continue
            if last is not None and trade_id > last + 1:
                self.metrics.on_trade_gap_unrecovered()
                self._warn(f'gap {symbol}', '%s: trade ids %d..%d missed; ccxt cannot fetch them again',
                           symbol, last + 1, trade_id - 1)
            last = self._last_trade_id[symbol] = trade_id
            self.metrics.on_message(TRADES, receipt)
            await self.callback(TRADES, parse_ccxt_trade(item, symbol, self.keep_raw), receipt)

    async def _book_step(self, symbol: str) -> None:
        await self._markets()
        book = await self.client.watch_order_book(self._ccxt_symbol(symbol))
        connection = self._connection()
        if self._books[symbol].synced and (connection is not self._book_connection.get(symbol)
                                           or self._resync_due(symbol)):
            # A new connection may have skipped frames that ccxt would never notice.
            self._resync(symbol, scheduled=connection is self._book_connection.get(symbol))
            return
        self._book_connection[symbol] = connection
        await self._emit_book(symbol, book['bids'], book['asks'], book.get('nonce'), book.get('timestamp'))

    async def _emit_book(self, symbol: str, bids, asks, nonce, timestamp) -> None:
        mirror = self._books[symbol]
        receipt = time.time()
        emission = mirror.update(bids, asks, nonce, timestamp)
        self.metrics.on_message(L2_BOOK, receipt)
        if emission is None:
            return
        if mirror.crossed():
            self.metrics.on_gap()
            self._warn(f'crossed {symbol}', '%s: ccxt book crossed at %s; resynchronising from a snapshot',
                       symbol, nonce)
            self._resync(symbol)
            return
        if emission.delta is None:
            self.metrics.on_snapshot(symbol)
            self._synced_at[symbol] = time.monotonic()
        await self.book_callback(L2_BOOK, emission.book, receipt, timestamp=emission.timestamp,
                                 sequence_number=emission.sequence_number, delta=emission.delta)

    def _resync_due(self, symbol: str) -> bool:
        return (self.snapshot_interval is not None
                and time.monotonic() - self._synced_at.get(symbol, 0.0) >= self.snapshot_interval)

    def _resync(self, symbol: str, scheduled: bool = False) -> None:
        """Drop ccxt's book and ours: ccxt fetches a new REST snapshot, we emit a full book."""
        mirror = self._books[symbol]
        if not mirror.synced:
            return
        mirror.reset()
        if scheduled:  # a planned refresh, not a symptom: kept out of the health counters
            self._scheduled_resyncs += 1
        else:
            self.metrics.on_resync(symbol)
        if self.client is not None and self.client.orderbooks is not None:
            self.client.orderbooks.pop(self._ccxt_symbol(symbol), None)
        if not scheduled:
            LOG.info('%s: %s book resynchronising from a new snapshot', self.id, symbol)

    async def _ticker_step(self, symbol: str) -> None:
        await self._markets()
        found = await self.client.watch_bids_asks([self._ccxt_symbol(symbol)])
        self._connection()
        ticker = found if 'bid' in found else found.get(self._ccxt_symbol(symbol), {})
        await self._emit_ticker(symbol, ticker)

    async def _emit_ticker(self, symbol: str, ticker) -> None:
        receipt = time.time()
        self.metrics.on_message(TICKER, receipt)
        parsed = parse_ccxt_ticker(ticker, symbol, self.keep_raw)
        if parsed is not None:
            await self.callback(TICKER, parsed, receipt)

    async def _orders_step(self, symbol: str) -> None:
        await self._markets()
        orders = await self.client.watch_orders(self._ccxt_symbol(symbol))
        receipt = time.time()
        for order in orders:
            self.metrics.on_message(ORDER_INFO, receipt)
            await self.callback(ORDER_INFO, parse_ccxt_order(order, symbol, self.keep_raw), receipt)

    async def _positions_step(self, symbols: List[str]) -> None:
        await self._markets()
        by_ccxt = {self._ccxt_symbol(s): s for s in symbols}
        positions = await self.client.watch_positions(list(by_ccxt))
        receipt = time.time()
        for position in positions:
            symbol = by_ccxt.get(position.get('symbol'))
            if symbol is not None:
                self.metrics.on_message(POSITIONS, receipt)
                await self.callback(POSITIONS, parse_ccxt_position(position, symbol, self.keep_raw), receipt)

    async def _balances_loop(self) -> None:
        """A REST snapshot of every asset, then the assets whose balance changed (forever)."""
        await self._emit_balances(await self.client.fetch_balance())
        while True:
            await self._emit_balances(await self.client.watch_balance())

    async def _emit_balances(self, balance) -> None:
        receipt = time.time()
        totals, used = balance.get('total') or {}, balance.get('used') or {}
        changed = [asset for asset in totals
                   if self._balances.get(asset) != (to_decimal(totals[asset]), to_decimal(used.get(asset)))]
        for item in parse_ccxt_balances(balance, changed, self.keep_raw):
            self._balances[item.currency] = (to_decimal(totals[item.currency]), to_decimal(used.get(item.currency)))
            self.metrics.on_message(BALANCES, receipt)
            await self.callback(BALANCES, item, receipt)

    # ------------------------------------------------------------------ REST-only steps

    async def _poll_trades_step(self, symbol: str) -> None:
        await self._markets()
        trades = sorted(await self.client.fetch_trades(self._ccxt_symbol(symbol), limit=1000), key=lambda t: int(t['id']))
        if symbol not in self._last_trade_id and trades:
            # The first poll only sets the starting point: like the WebSocket, deliver trades from now on.
            self._last_trade_id[symbol] = int(trades[-1]['id'])
        else:
            await self._emit_trades(symbol, trades)
        await asyncio.sleep(self.poll_interval)

    async def _poll_book_step(self, symbol: str) -> None:
        await self._markets()
        book = await self.client.fetch_order_book(self._ccxt_symbol(symbol))
        await self._emit_book(symbol, book['bids'], book['asks'], book.get('nonce'), book.get('timestamp'))
        await asyncio.sleep(self.snapshot_interval)

    async def _poll_ticker_step(self, symbol: str) -> None:
        await self._markets()
        book = await self.client.fetch_order_book(self._ccxt_symbol(symbol), 5)
        bids, asks = book['bids'], book['asks']
        await self._emit_ticker(symbol, {'bid': bids[0][0] if bids else None, 'ask': asks[0][0] if asks else None,
                                         'timestamp': book.get('timestamp'), 'info': book})
        await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ observability

    def metrics_snapshot(self) -> Dict[str, Any]:
        """The native feed's counters (those that apply), plus per-book and per-symbol state."""
        snap = self.metrics.snapshot()
        snap['feed'] = 'ccxt'
        snap['scheduled_resyncs'] = self._scheduled_resyncs
        snap['books'] = {symbol: {'state': 'synced' if m.synced else 'syncing', 'last_update_id': m.nonce}
                         for symbol, m in self._books.items()}
        snap['trades'] = {symbol: {'last_id': last} for symbol, last in self._last_trade_id.items()}
        snap['rest'] = {'retries': self._rest_retries}   # where the native feed's REST client counts them
        return snap

    def health(self, **thresholds) -> BackpackHealthReport:
        """``healthy`` / ``degraded`` / ``unhealthy`` with reasons, judged like the native feed's."""
        return evaluate_health(self.metrics, now=time.time(), **thresholds)
