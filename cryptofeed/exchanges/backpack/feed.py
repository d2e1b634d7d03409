"""``BackpackFeed``: Backpack public market data through cryptofeed's ``FeedHandler``.

This module wires the pieces; it parses nothing itself. Frames go ``router`` (decode once,
exact stream split) -> an adapter of ``adapters.py`` -> cryptofeed's callbacks. Depth frames go
through a ``book.BookSync`` per symbol, trades through a ``trades.TradeSequencer`` per symbol.
REST (depth snapshots, trade backfill, markets) goes through ``rest.BackpackRestClient``.

Channels (backpack-api.md section 8.1)::

    TRADES        trade.<s>               every trade exactly once, in id order (REST backfill)
    L2_BOOK       depth[.<window>].<s>    REST snapshot + deltas; full book first, then deltas
    TICKER        bookTicker.<s>          best bid / ask
    CANDLES       kline.<interval>.<s>    ``candle_closed_only`` honoured
    FUNDING       markPrice.<s>           perpetuals only
    INDEX         markPrice.<s>           perpetuals only (index price ``i``)
    OPEN_INTEREST openInterest.<s>        perpetuals only
    LIQUIDATIONS  liquidation             one all-market stream, filtered to the symbols asked for

Construction does no network I/O: symbols are converted by Backpack's spelling rules
(``symbols.py``); whether they exist is checked against ``/api/v1/markets`` when the first
connection subscribes, and unknown ones are left out with an error in the log.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, NamedTuple, Optional

from cryptofeed.config import Config
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.defines import (
    CANDLES, FUNDING, INDEX, L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, TICKER, TRADES,
)
from cryptofeed.exceptions import UnsupportedSymbol
from cryptofeed.feed import Feed
from cryptofeed.symbols import Symbol, Symbols

from cryptofeed.exchanges.backpack import adapters
from cryptofeed.exchanges.backpack.adapters import parse_trade, raw_payload
from cryptofeed.exchanges.backpack.backoff import backoff_delays
from cryptofeed.exchanges.backpack.book import BookSync
from cryptofeed.exchanges.backpack.config import DEFAULT_REST_URL, DEFAULT_WS_URL, BackpackConfig
from cryptofeed.exchanges.backpack.defines import BACKPACK
from cryptofeed.exchanges.backpack.errors import BackpackError, BackpackRegionRestrictedError
from cryptofeed.exchanges.backpack.health import BackpackHealthReport, evaluate_health
from cryptofeed.exchanges.backpack.loop import ensure_event_loop
from cryptofeed.exchanges.backpack.metrics import FeedMetrics
from cryptofeed.exchanges.backpack.rest import BackpackRestClient
from cryptofeed.exchanges.backpack.router import INVALID, MALFORMED, UNKNOWN_STREAM, Router
from cryptofeed.exchanges.backpack.symbols import (
    BackpackSymbolService, exchange_to_normalized, normalized_to_exchange, parse_symbol_data,
)
from cryptofeed.exchanges.backpack.trades import TradeGap, TradeSequencer, fetch_trade_range
from cryptofeed.exchanges.backpack.ws import BackpackConnectionHandler, BackpackWSConn

__all__ = ['BackpackFeed', 'DEPTH_WINDOWS']

LOG = logging.getLogger('feedhandler')

DEPTH_WINDOWS = (None, '200ms', '600ms', '1000ms')
_PERP_ONLY_KINDS = frozenset({'markPrice', 'openInterest'})
_SUBSCRIBE_BATCH = 50


class _Stream(NamedTuple):
    name: str            # e.g. 'depth.200ms.SOL_USDC'
    kind: str            # 'depth'
    symbol: Optional[str]  # normalized symbol; None for the all-market 'liquidation' stream


class _RuleSymbols(dict):
    """exchange symbol -> normalized symbol by spelling rules, learnt on first use.

    The router asks it for symbols named in the data of all-market streams (``liquidation``);
    anything outside Backpack's spot/perp grammar is absent.
    """

    def get(self, key, default=None):  # noqa: D401 - dict API
        try:
            return self[key]
        except KeyError:
            try:
                value = exchange_to_normalized(key)
            except (ValueError, TypeError):
                return default
            if len(self) < 10_000:
                self[key] = value
            return value


class _Done:
    """An awaitable that is already finished (``await _DONE`` returns None at once)."""

    __slots__ = ()

    def __await__(self):
        return iter(())


_DONE = _Done()


def _run_blocking(coro):
    """Run ``coro`` to completion from synchronous code, even when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class BackpackFeed(Feed):
    """Backpack spot and USDC perpetual market data as cryptofeed objects.

    Beyond cryptofeed's ``Feed`` arguments (``symbols``, ``channels``, ``subscription``,
    ``callbacks``, ``max_depth``, ``candle_interval``, ``candle_closed_only``, ``timeout``,
    ``retries`` = -1 by default, ...):

    ``config``
        a ``BackpackConfig``, a dict of its options, a cryptofeed ``Config`` or the path of a
        YAML file (section ``backpack:``).
    ``depth_interval``
        ``None`` (realtime ``depth.<s>``) or ``'200ms'``/``'600ms'``/``'1000ms'`` aggregated depth.
    ``snapshot_limit``
        levels per side asked of ``/api/v1/depth`` (5, 10, 20, 50, 100, 500 or 1000).
    ``streams_per_connection``
        subscriptions beyond this are spread over more WebSocket connections.
    ``keep_raw``
        attach the venue payload as ``raw`` on every emitted object: a dict of the decoded
        fields with the venue's keys (trade frames' ``a``/``b``/``s``/``E`` are not decoded).
    ``rest_client``
        an injected ``BackpackRestClient`` (otherwise built lazily from the config).
    ``ping_interval`` / ``ping_timeout``
        WebSocket keepalive; a dead connection is detected within their sum.
    ``reconnect_backoff_base_s`` / ``reconnect_backoff_max_s``
        capped, jittered delays between reconnects (and between failed snapshot requests).
    ``trade_backfill_limit``
        the largest trade-id gap fetched from REST; larger gaps are reported and skipped.
    """

    id = BACKPACK
    websocket_endpoints = [WebsocketEndpoint(DEFAULT_WS_URL)]
    rest_endpoints = [RestEndpoint(DEFAULT_REST_URL, routes=Routes(
        '/api/v1/markets', l2book='/api/v1/depth?symbol={}&limit={}', open_interest='/api/v1/openInterest?symbol={}',
        funding='/api/v1/fundingRates?symbol={}'))]
    websocket_channels = {
        TRADES: 'trade', L2_BOOK: 'depth', TICKER: 'bookTicker', CANDLES: 'kline', FUNDING: 'markPrice',
        INDEX: 'markPrice', OPEN_INTEREST: 'openInterest', LIQUIDATIONS: 'liquidation',
    }
    candle_interval_map = {
        '1s': '1s', '1m': '1m', '3m': '3m', '5m': '5m', '15m': '15m', '30m': '30m', '1h': '1h', '2h': '2h',
        '4h': '4h', '6h': '6h', '8h': '8h', '12h': '12h', '1d': '1d', '3d': '3d', '1w': '1w', '1M': '1month',
    }
    valid_candle_intervals = frozenset(candle_interval_map)
    valid_depth_limits = (5, 10, 20, 50, 100, 500, 1000)
    request_limit = 20

    _parse_symbol_data = classmethod(lambda cls, data: parse_symbol_data(data))

    def __init__(self, config=None, *, depth_interval: Optional[str] = None, snapshot_limit: int = 1000,
                 streams_per_connection: int = 200, keep_raw: bool = False,
                 rest_client: Optional[BackpackRestClient] = None, ping_interval: float = 10.0,
                 ping_timeout: float = 10.0, trade_backfill_limit: int = 10_000, snapshot_workers: int = 2,
                 snapshot_spacing_s: float = 0.05, reconnect_backoff_base_s: float = 0.5,
                 reconnect_backoff_max_s: float = 30.0, **kwargs):
        self.backpack_config = BackpackConfig.coerce(config)
        ensure_event_loop()  # FeedHandler.run() under uvloop >= 0.22 needs a current loop (loop.py)
        if depth_interval not in DEPTH_WINDOWS:
            raise ValueError(f'depth_interval must be one of {DEPTH_WINDOWS}, got {depth_interval!r}')
        if snapshot_limit not in self.valid_depth_limits:
            raise ValueError(f'snapshot_limit must be one of {self.valid_depth_limits}, got {snapshot_limit!r}')
        if streams_per_connection < 1:
            raise ValueError('streams_per_connection must be >= 1')
        backoff_delays(reconnect_backoff_base_s, reconnect_backoff_max_s)  # raises ValueError if inconsistent
        kwargs.setdefault('retries', -1)
        cryptofeed_config = config if isinstance(config, (Config, str)) or (
            isinstance(config, dict) and 'backpack' in config) else None
        with self._no_symbol_download():
            super().__init__(config=cryptofeed_config, **kwargs)
        self.depth_interval = depth_interval
        self.snapshot_limit = snapshot_limit
        self.streams_per_connection = streams_per_connection
        self.keep_raw = keep_raw
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.trade_backfill_limit = trade_backfill_limit
        self.snapshot_workers = max(1, snapshot_workers)
        self.snapshot_spacing_s = snapshot_spacing_s
        self.reconnect_backoff_base_s = reconnect_backoff_base_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s

        self.metrics = FeedMetrics()
        # Per-channel frame counts, incremented in place on the hot path (read by the metrics).
        self._messages = self.metrics.messages
        self._messages.update(dict.fromkeys((TRADES, L2_BOOK, TICKER, CANDLES, 'markPrice', OPEN_INTEREST,
                                             LIQUIDATIONS), 0))
        self._rest = rest_client
        self._owns_rest = rest_client is None
        self._symbol_service: Optional[BackpackSymbolService] = None
        self._wanted = self._wanted_symbols(kwargs.get('subscription'), kwargs.get('symbols'), kwargs.get('channels'))
        self._streams = self._plan_streams()
        self._books: Dict[str, BookSync] = {s.symbol: BookSync(s.symbol, self.max_depth, exchange=self.id)
                                            for s in self._streams if s.kind == 'depth'}
        self._trades: Dict[str, TradeSequencer] = {s.symbol: TradeSequencer(max_gap=trade_backfill_limit)
                                                   for s in self._streams if s.kind == 'trade'}
        self._book_busy: Dict[str, asyncio.Event] = {}
        self._trade_busy: Dict[str, asyncio.Event] = {}
        self._snapshot_retry_at: Dict[str, float] = {}
        self._snapshot_failures: Dict[str, int] = defaultdict(int)
        self._gaps_seen: Dict[str, int] = defaultdict(int)
        self._unknown_symbols: set = set()
        self._unexpected_seen: set = set()
        self._snapshot_queue: Optional[asyncio.Queue] = None
        self._tasks: set = set()
        self.metrics.expect_books(self._books)
        subscribed = {normalized_to_exchange(s): str(s) for s in self.normalized_symbols}
        self._router = Router({
            'trade': self._on_trade, 'depth': self._on_depth, 'bookTicker': self._on_book_ticker,
            'kline': self._on_kline, 'markPrice': self._on_mark_price, 'openInterest': self._on_open_interest,
            'liquidation': self._on_liquidation,
        }, subscribed, data_symbols=_RuleSymbols(subscribed), on_error=self._on_server_error,
            on_drop=self._on_drop, dropped=_DONE)
        self.message_handler = self._router.handle

    # ------------------------------------------------------------------ symbols

    @contextmanager
    def _no_symbol_download(self) -> Iterator[None]:
        """cryptofeed's ``Exchange.__init__`` downloads the markets when none are cached; we
        convert symbols by spelling rules instead, so hand it an empty table for the duration."""
        lent_empty_table = not Symbols.populated(self.id)
        if lent_empty_table:
            Symbols.set(self.id, {}, {})
        try:
            yield
        finally:
            if lent_empty_table and Symbols.data.get(self.id) == {'normalized': {}, 'info': {}}:
                Symbols.data.pop(self.id, None)

    def std_symbol_to_exchange_symbol(self, symbol) -> str:
        if isinstance(symbol, Symbol):
            symbol = symbol.normalized
        try:
            return normalized_to_exchange(symbol)
        except (ValueError, TypeError):
            if self.ignore_invalid_instruments:
                LOG.warning('%s: invalid symbol %s ignored', self.id, symbol)
                return symbol
            raise UnsupportedSymbol(f'{symbol} is not a Backpack spot or perpetual symbol '
                                    f'(expected BASE-QUOTE or BASE-QUOTE-PERP, e.g. SOL-USDC, SOL-USDC-PERP)')

    def exchange_symbol_to_std_symbol(self, symbol: str) -> str:
        try:
            return exchange_to_normalized(symbol)
        except (ValueError, TypeError):
            if self.ignore_invalid_instruments:
                return symbol
            raise UnsupportedSymbol(f'{symbol} is not a Backpack spot or perpetual symbol')

    @classmethod
    def symbol_mapping(cls, refresh: bool = False, headers: dict = None, config=None) -> Dict[str, str]:
        """normalized -> exchange symbol for every listed spot/perp market (cached process-wide).

        Blocking, like cryptofeed's own: call it outside the event loop or accept the stall.
        ``config`` chooses the REST URL, proxy and CA (default: the live exchange).
        """
        if Symbols.populated(cls.id) and not refresh:
            return Symbols.get(cls.id)[0]

        async def fetch():
            async with BackpackRestClient.from_config(BackpackConfig.coerce(config)) as client:
                return await client.markets()

        normalized, info = cls._parse_symbol_data(_run_blocking(fetch()))
        Symbols.set(cls.id, normalized, info)
        return normalized

    @classmethod
    def symbols(cls, refresh: bool = False, config=None) -> list:
        return list(cls.symbol_mapping(refresh=refresh, config=config))

    @classmethod
    def info(cls, config=None) -> dict:
        cls.symbol_mapping(config=config)
        return super().info()

    # ------------------------------------------------------------------ planning

    @staticmethod
    def _wanted_symbols(subscription, symbols, channels) -> Dict[str, set]:
        """cryptofeed channel -> normalized symbols asked for. Computed from the arguments:
        cryptofeed 2.4.1's ``_feed_config`` gives every channel of a ``subscription=`` dict all
        the symbols seen so far."""
        if subscription is None:
            subscription = {channel: symbols for channel in channels or ()}
        return {channel: {str(s) for s in syms} for channel, syms in subscription.items()}

    def _plan_streams(self) -> List[_Stream]:
        """Every stream this feed subscribes to, in a stable order."""
        interval = self.candle_interval_map[self.candle_interval]
        depth = 'depth' if self.depth_interval is None else f'depth.{self.depth_interval}'
        streams: List[_Stream] = []
        seen = set()
        for kind, exchange_symbols in sorted(self.subscription.items()):
            if kind == 'liquidation':
                streams.append(_Stream('liquidation', kind, None))
                continue
            prefix = {'depth': depth, 'kline': f'kline.{interval}'}.get(kind, kind)
            for exchange_symbol in sorted(exchange_symbols):
                symbol = self.exchange_symbol_to_std_symbol(exchange_symbol)
                if kind in _PERP_ONLY_KINDS and not symbol.endswith('-PERP'):
                    LOG.warning('%s: %s is published for perpetuals only; %s is spot, not subscribed',
                                self.id, kind, symbol)
                    continue
                name = f'{prefix}.{exchange_symbol}'
                if name not in seen:
                    seen.add(name)
                    streams.append(_Stream(name, kind, symbol))
        return streams

    def connect(self) -> list:
        """One ``BackpackWSConn`` per ``streams_per_connection`` streams."""
        cfg = self.backpack_config
        ssl_context = cfg.ssl_context() if cfg.ws_url.startswith('wss://') else None
        proxy = cfg.ws_proxy
        connections = []
        step = self.streams_per_connection
        for start in range(0, len(self._streams), step):
            chunk = self._streams[start:start + step]
            subscription = defaultdict(list)
            for stream in chunk:
                subscription[stream.kind].append(stream.symbol)
            conn = BackpackWSConn(cfg.ws_url, self.id, subscription=dict(subscription), ssl=ssl_context,
                                  proxy=proxy, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout)
            conn.streams = chunk
            connections.append((conn, self.subscribe, self.message_handler, self.authenticate))
        return connections

    # ------------------------------------------------------------------ lifecycle

    def start(self, loop: asyncio.AbstractEventLoop):
        self.metrics.mark_started()
        for conn, subscribe, handler, authenticate in self.connect():
            handler = BackpackConnectionHandler(
                conn, subscribe, handler, authenticate, self.retries, timeout=self.timeout,
                timeout_interval=self.timeout_interval, exceptions=self.exceptions, log_on_error=self.log_on_error,
                start_delay=self.start_delay, backoff_base=self.reconnect_backoff_base_s,
                backoff_max=self.reconnect_backoff_max_s,
                on_reconnect=self.metrics.on_reconnect)
            self.connection_handlers.append(handler)
            handler.start(loop)
        self._snapshot_queue = asyncio.Queue()
        for _ in range(self.snapshot_workers):
            self._spawn(self._snapshot_worker(), loop)
        for callbacks in self.callbacks.values():
            for callback in callbacks:
                if hasattr(callback, 'start'):
                    LOG.info('%s: starting backend task %s', self.id, self.backend_name(callback))
                    callback.start(loop, multiprocess=self.config.backend_multiprocessing)

    def _spawn(self, coro, loop: Optional[asyncio.AbstractEventLoop] = None) -> asyncio.Task:
        task = (loop or asyncio.get_running_loop()).create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def shutdown(self):
        """Stop every connection, cancel every task this feed started, close our sessions, then
        let cryptofeed's shutdown flush the backends."""
        for handler in self.connection_handlers:
            if isinstance(handler, BackpackConnectionHandler):
                await handler.stop()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._rest is not None and self._owns_rest:
            await self._rest.close()
        await super().shutdown()

    @property
    def rest(self) -> BackpackRestClient:
        """The REST client (created on first use from the config)."""
        if self._rest is None:
            self._rest = BackpackRestClient.from_config(self.backpack_config, conn_id=f'{self.id}.rest')
        return self._rest

    async def _known_symbols(self) -> Optional[set]:
        if self._symbol_service is None:
            self._symbol_service = BackpackSymbolService(self.rest.markets,
                                                         ttl_s=self.backpack_config.symbol_cache_ttl_s)
        try:
            table = await self._symbol_service.get()
        except BackpackError as exc:
            LOG.warning('%s: could not load /api/v1/markets (%s); subscribing without checking symbols',
                        self.id, exc)
            return None
        return set(table.normalized)

    async def subscribe(self, conn: BackpackWSConn):
        """Runs on every (re)connect: reset this connection's books and trade sequences, then
        SUBSCRIBE in batches. Symbols the exchange does not list are left out (logged once)."""
        known = await self._known_symbols()
        names = []
        for stream in conn.streams:
            if known is not None and stream.symbol is not None and stream.symbol not in known:
                if stream.symbol not in self._unknown_symbols:
                    self._unknown_symbols.add(stream.symbol)
                    LOG.error('%s: %s is not listed by Backpack (/api/v1/markets); its streams are not subscribed',
                              self.id, stream.symbol)
                continue
            if stream.kind == 'depth':
                self._books[stream.symbol].reset()
                self._snapshot_retry_at.pop(stream.symbol, None)
            elif stream.kind == 'trade':
                gap = self._trades[stream.symbol].on_reconnect()
                if gap is not None:
                    self._spawn(self._backfill(stream.symbol, gap))
            names.append(stream.name)
        for start in range(0, len(names), _SUBSCRIBE_BATCH):
            await conn.write(json.dumps({'method': 'SUBSCRIBE', 'params': names[start:start + _SUBSCRIBE_BATCH]}))

    def message_handler(self, msg, conn, timestamp: float):
        """Route one frame; returns the awaitable cryptofeed's ConnectionHandler awaits.

        ``__init__`` replaces this method on the instance by ``Router.handle`` itself (same
        signature, same result): no frame of ours between cryptofeed and the router.
        """
        return self._router.handle(msg, conn, timestamp)

    # ------------------------------------------------------------------ channel handlers

    def _raw(self, msg) -> Optional[dict]:
        return adapters.raw_payload(msg) if self.keep_raw else None

    # The two hot handlers are plain functions: they return the awaitable to run (the user's
    # callback coroutine itself when there is one callback, ``_DONE`` when nothing is emitted),
    # so the common frame costs no coroutine of ours. The router hands it to cryptofeed.

    def _on_trade(self, msg, symbol: str, interval, receipt_ts: float):
        if self._trade_busy:
            busy = self._trade_busy.get(symbol)
            if busy is not None:  # a backfill of this symbol is being delivered: queue behind it
                return self._after(busy, self._on_trade, msg, symbol, interval, receipt_ts)
        self._messages[TRADES] += 1
        sequencer = self._trades.get(symbol)
        if sequencer is None:
            return self._unexpected('trade', symbol)
        trade = parse_trade(msg, symbol, receipt_ts, raw_payload(msg) if self.keep_raw else None)
        if sequencer.accept_next(msg.t):
            return self._deliver(TRADES, trade, receipt_ts)
        return self._trade_out_of_order(msg.t, trade, symbol, receipt_ts)

    async def _trade_out_of_order(self, trade_id: int, trade, symbol: str, receipt_ts: float):
        sequencer = self._trades[symbol]
        implausible = sequencer.implausible
        ready, gap = sequencer.on_live(trade_id, trade)
        if sequencer.implausible > implausible:  # a corrupt trade id: counted like a corrupt frame
            self.metrics.on_dropped()
            self.metrics.on_parse_error()
            if implausible == 0 or sequencer.implausible % 100 == 0:
                LOG.warning('%s: %s: dropped a trade with an implausible id (%d so far); the stream '
                            'continues from id %s', self.id, symbol, sequencer.implausible, sequencer.last_id)
        for item in ready:
            await self.callback(TRADES, item, receipt_ts)
        if gap is not None:
            self._on_trade_gap(symbol, gap)

    def _on_depth(self, msg, symbol: str, interval, receipt_ts: float):
        if self._book_busy:
            busy = self._book_busy.get(symbol)
            if busy is not None:  # a snapshot of this symbol is being delivered: queue behind it
                return self._after(busy, self._on_depth, msg, symbol, interval, receipt_ts)
        self._messages[L2_BOOK] += 1
        sync = self._books.get(symbol)
        if sync is None:
            return self._unexpected('depth', symbol)
        emission = sync.on_depth(msg.U, msg.u, msg.b, msg.a, msg.T / 1_000_000)
        if emission is not None:
            # What Feed.book_callback does, without its two coroutine layers.
            book = emission.book
            book.timestamp = emission.timestamp
            book.sequence_number = emission.sequence_number
            book.delta = emission.delta
            book.raw = raw_payload(msg) if self.keep_raw else None
            if self.cross_check:
                self.check_bid_ask_overlapping(book)
            return self._deliver(L2_BOOK, book, receipt_ts)
        if sync.needs_snapshot:
            self._request_snapshot(symbol, sync)
        return _DONE

    def _unexpected(self, kind: str, symbol: str):
        """A frame of a stream this feed did not subscribe to: counted, warned about once."""
        self.metrics.on_dropped()
        if (kind, symbol) not in self._unexpected_seen:
            self._unexpected_seen.add((kind, symbol))
            LOG.warning('%s: dropping %s frames for %s: not subscribed on this feed', self.id, kind, symbol)
        return _DONE

    def _deliver(self, channel: str, obj, receipt_ts: float):
        callbacks = self.callbacks[channel]
        if len(callbacks) == 1:
            return callbacks[0](obj, receipt_ts)
        return self.callback(channel, obj, receipt_ts)

    @staticmethod
    async def _after(busy: asyncio.Event, handler, *args):
        await busy.wait()
        await handler(*args)

    async def _on_book_ticker(self, msg, symbol: str, _interval, receipt_ts: float):
        self._messages[TICKER] += 1
        await self.callback(TICKER, adapters.parse_book_ticker(msg, symbol, receipt_ts, self._raw(msg)), receipt_ts)

    async def _on_kline(self, msg, symbol: str, interval: str, receipt_ts: float):
        self._messages[CANDLES] += 1
        if self.candle_closed_only and not msg.X:
            return
        candle = adapters.parse_kline(msg, symbol, self.normalize_candle_interval.get(interval, interval),
                                      receipt_ts, self._raw(msg))
        if candle is not None:
            await self.callback(CANDLES, candle, receipt_ts)

    async def _on_mark_price(self, msg, symbol: str, _interval, receipt_ts: float):
        self._messages['markPrice'] += 1
        raw = self._raw(msg)
        if symbol in self._wanted.get(FUNDING, ()):
            await self.callback(FUNDING, adapters.parse_funding(msg, symbol, receipt_ts, raw), receipt_ts)
        if symbol in self._wanted.get(INDEX, ()):
            index = adapters.parse_index(msg, symbol, receipt_ts, raw)
            if index is not None:
                await self.callback(INDEX, index, receipt_ts)

    async def _on_open_interest(self, msg, symbol: str, _interval, receipt_ts: float):
        self._messages[OPEN_INTEREST] += 1
        await self.callback(OPEN_INTEREST, adapters.parse_open_interest(msg, symbol, receipt_ts, self._raw(msg)),
                            receipt_ts)

    async def _on_liquidation(self, msg, symbol: str, _interval, receipt_ts: float):
        self._messages[LIQUIDATIONS] += 1
        if symbol in self._wanted.get(LIQUIDATIONS, ()):
            await self.callback(LIQUIDATIONS, adapters.parse_liquidation(msg, symbol, receipt_ts, self._raw(msg)),
                                receipt_ts)

    def _on_server_error(self, error, receipt_ts: float) -> None:
        self.metrics.on_server_error()

    def _on_drop(self, reason: str) -> None:
        self.metrics.on_dropped()
        if reason in (MALFORMED, INVALID):
            self.metrics.on_parse_error()
        elif reason == UNKNOWN_STREAM:
            self.metrics.on_unknown_stream()

    # ------------------------------------------------------------------ book snapshots

    def _request_snapshot(self, symbol: str, sync: BookSync) -> None:
        if sync.gaps + sync.crossed > self._gaps_seen[symbol]:
            self._gaps_seen[symbol] = sync.gaps + sync.crossed
            self.metrics.on_gap()
            self.metrics.on_resync(symbol)
            LOG.warning('%s: %s depth sequence broken at %s; resynchronising this book from a snapshot',
                        self.id, symbol, sync.last_update_id)
        retry_at = self._snapshot_retry_at.get(symbol)
        if retry_at is not None and time.monotonic() < retry_at:
            return
        if self._snapshot_queue is None:
            return
        sync.snapshot_requested()
        self._snapshot_queue.put_nowait(symbol)

    async def _snapshot_worker(self):
        """Fetch queued depth snapshots, at most ``snapshot_workers`` at a time, spaced out."""
        while True:
            symbol = await self._snapshot_queue.get()
            try:
                await self._snapshot(symbol)
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception('%s: unexpected error while resynchronising %s', self.id, symbol)
                self._books[symbol].snapshot_failed()
            await asyncio.sleep(self.snapshot_spacing_s)

    async def _snapshot(self, symbol: str) -> None:
        sync = self._books[symbol]
        try:
            data = await self.rest.depth(normalized_to_exchange(symbol), self.snapshot_limit)
            snapshot = adapters.parse_depth_snapshot(data)
        except BackpackRegionRestrictedError:
            # The REST client has said so once, loudly; it now fails fast without a request.
            self._snapshot_failed(symbol, sync, 60.0)
            return
        except (BackpackError, KeyError, TypeError, ValueError) as exc:
            self.metrics.on_rest_failure()
            self._snapshot_failures[symbol] += 1
            delay = min(self.reconnect_backoff_max_s,
                        self.reconnect_backoff_base_s * 2 ** min(self._snapshot_failures[symbol], 8))
            LOG.warning('%s: depth snapshot for %s failed (%s); retrying in %.2f s', self.id, symbol, exc, delay)
            self._snapshot_failed(symbol, sync, delay)
            return
        self._snapshot_failures.pop(symbol, None)
        busy = self._book_busy[symbol] = asyncio.Event()
        try:
            emission = sync.apply_snapshot(snapshot.last_update_id, snapshot.bids, snapshot.asks, snapshot.timestamp)
            self.metrics.on_snapshot(symbol)
            if emission is not None:
                await self.book_callback(L2_BOOK, emission.book, time.time(), timestamp=emission.timestamp,
                                         sequence_number=emission.sequence_number, delta=None,
                                         raw=data if self.keep_raw else None)
            elif sync.needs_snapshot:
                # Too old for the frames already buffered: ask again after a short pause.
                self._snapshot_retry_at[symbol] = time.monotonic() + self.snapshot_spacing_s
        finally:
            busy.set()
            del self._book_busy[symbol]

    def _snapshot_failed(self, symbol: str, sync: BookSync, delay: float) -> None:
        self._snapshot_retry_at[symbol] = time.monotonic() + delay
        sync.snapshot_failed()

    # ------------------------------------------------------------------ trade backfill

    def _on_trade_gap(self, symbol: str, gap: TradeGap) -> None:
        sequencer = self._trades[symbol]
        if sequencer.backfilling:
            LOG.info('%s: %s trade ids %s..%s missing; fetching them from REST', self.id, symbol, gap.first, gap.last)
            self._spawn(self._backfill(symbol, gap))
        else:
            self.metrics.on_trade_gap_unrecovered()
            LOG.warning('%s: %s lost %d trades (ids %d..%d): more than trade_backfill_limit=%d, not fetched',
                        self.id, symbol, gap.size, gap.first, gap.last, self.trade_backfill_limit)

    async def _backfill(self, symbol: str, gap: TradeGap) -> None:
        sequencer = self._trades[symbol]
        exchange_symbol = normalized_to_exchange(symbol)
        lost_before = sequencer.unrecovered
        try:
            rows = await fetch_trade_range(
                lambda limit: self.rest.trades(exchange_symbol, limit),
                lambda limit, offset: self.rest.trades_history(exchange_symbol, limit, offset),
                gap.first, gap.last, self.trade_backfill_limit)
            fetched, _skipped = adapters.parse_rest_trades(rows, symbol, time.time(), self.keep_raw)
        except asyncio.CancelledError:
            raise
        except (BackpackError, KeyError, TypeError, ValueError) as exc:
            LOG.warning('%s: trade backfill for %s failed (%s); releasing held trades', self.id, symbol, exc)
            self.metrics.on_rest_failure()
            fetched = None
        busy = self._trade_busy[symbol] = asyncio.Event()
        try:
            before = sequencer.backfilled
            ready = sequencer.abandon_backfill() if fetched is None else sequencer.on_backfill(fetched)
            self.metrics.on_backfilled_trades(sequencer.backfilled - before)
            if sequencer.unrecovered > lost_before:
                self.metrics.on_trade_gap_unrecovered()
                LOG.warning('%s: %s: %d trades could not be recovered', self.id, symbol,
                            sequencer.unrecovered - lost_before)
            receipt = time.time()
            for trade in ready:
                await self.callback(TRADES, trade, receipt)
        finally:
            busy.set()
            del self._trade_busy[symbol]

    # ------------------------------------------------------------------ observability

    def _note_last_message(self) -> None:
        """cryptofeed stamps every received frame on its connection; take the newest stamp."""
        stamps = [h.conn.last_message for h in self.connection_handlers if h.conn.last_message]
        if stamps:
            self.metrics.last_message_time = max(stamps)

    def metrics_snapshot(self) -> Dict[str, Any]:
        """Counters, ages and per-symbol book/trade state, JSON-serialisable."""
        self._note_last_message()
        snap = self.metrics.snapshot()
        snap['books'] = {symbol: {'state': sync.state, 'last_update_id': sync.last_update_id, **sync.counters()}
                         for symbol, sync in self._books.items()}
        snap['trades'] = {symbol: {'last_id': seq.last_id, 'duplicates': seq.duplicates, 'gaps': seq.gaps,
                                   'backfilled': seq.backfilled, 'unrecovered': seq.unrecovered,
                                   'implausible': seq.implausible}
                          for symbol, seq in self._trades.items()}
        snap['drops'] = self._router.drops
        if self._rest is not None:
            snap['rest'] = self._rest.stats.as_dict()
        return snap

    def health(self, **thresholds) -> BackpackHealthReport:
        """``healthy`` / ``degraded`` / ``unhealthy`` with reasons, judged over a recent window."""
        self._note_last_message()
        return evaluate_health(self.metrics, now=time.time(), **thresholds)
