"""What ``BackpackFeed`` is on every cryptofeed line: Backpack market data and account streams.

``BackpackFeedBase`` holds all of the feed that does not depend on the cryptofeed line: its
arguments, the plan of streams, the channel families, subscribing, routing, metrics and
health. The host of each line (``cf2/feed.py``, ``cf3/feed.py``) adds the lifecycle its
``Feed`` expects. This module wires the pieces; it parses nothing itself. Frames go ``router`` (decode once,
exact stream split) -> the handler of a channel family in ``channels/`` (market data, the L2
book, trades), which parses with ``adapters.py`` and emits through a ``ChannelContext`` to
cryptofeed's callbacks. REST goes through one lazily created ``rest.BackpackRestClient``.

Channels (backpack-api.md section 8.1)::

    TRADES        trade.<s>               every trade exactly once, in id order (REST backfill)
    L2_BOOK       depth[.<window>].<s>    REST snapshot + deltas; full book first, then deltas
    TICKER        bookTicker.<s>          best bid / ask
    CANDLES       kline.<interval>.<s>    ``candle_closed_only`` honoured
    FUNDING       markPrice.<s>           perpetuals only
    INDEX         markPrice.<s>           perpetuals only (index price ``i``)
    OPEN_INTEREST openInterest.<s>        perpetuals only
    LIQUIDATIONS  liquidation             one all-market stream, filtered to the symbols asked for
    ORDER_INFO, FILLS, POSITIONS, BALANCES    account.* streams, signed, on a connection of their own
                                          (channels/account.py); an empty symbol list = every market

``symbols='all'`` subscribes every listed, open market (``market_types=``, ``shard=``) and
follows listings while running; ``add_symbols`` / ``remove_symbols`` change a running feed
(``listings.py``, connections in ``subscribing.py``).

Construction does no network I/O: symbols are converted by Backpack's spelling rules
(``symbols.py``); whether they exist is checked against ``/api/v1/markets`` when the first
connection subscribes: unknown ones are left out with an error naming close matches, and a
feed with none listed stops with that error.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Dict, List, Optional

from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays
from cryptofeed.exchanges.backpack.core.channels import DONE, BookChannel, ChannelContext, MarketChannels, TradeChannel
from cryptofeed.exchanges.backpack.core.channels.account import AccountChannel, private_channels_asked
from cryptofeed.exchanges.backpack.core.config import (
    DEFAULT_REST_URL, DEFAULT_WS_URL, BackpackConfig, is_cryptofeed_config,
)
from cryptofeed.exchanges.backpack.core.defines import (
    BACKPACK, BALANCES, CANDLES, FILLS, FUNDING, INDEX, L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, ORDER_INFO, POSITIONS,
    TICKER, TRADES,
)
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.core.subscriptions import PERP_ONLY_KINDS, Stream, stream_prefixes
from cryptofeed.exchanges.backpack.hosts.listings import BackpackListingsMixin
from cryptofeed.exchanges.backpack.hosts.subscribing import BackpackSubscribingMixin
from cryptofeed.exchanges.backpack.hosts.symbols import BackpackSymbolsMixin
from cryptofeed.exchanges.backpack.core.ops.health import BackpackHealthReport, evaluate_health
from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics
from cryptofeed.exchanges.backpack.core.ops.prometheus import release_feed, serve_feed
from cryptofeed.exchanges.backpack.hosts.options import check_feed_options, check_symbol_request
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.hosts.rest_api import BackpackRestMixin
from cryptofeed.exchanges.backpack.core.wire.router import INVALID, MALFORMED, UNKNOWN_STREAM, Router
from cryptofeed.exchanges.backpack.core.symbols import BackpackSymbolService, RuleSymbols, normalized_to_exchange
from cryptofeed.exchanges.backpack.hosts.ws import MAX_FRAME_BYTES, BackpackConnectionHandler

__all__ = ['BackpackFeedBase', 'DEPTH_WINDOWS']

LOG = log.get()

DEPTH_WINDOWS = (None, '200ms', '600ms', '1000ms')


class BackpackFeedBase(BackpackSymbolsMixin, BackpackSubscribingMixin, BackpackListingsMixin, BackpackRestMixin):
    """Backpack spot and USDC perpetual market data as cryptofeed objects (the host's ``BackpackFeed``).

    Beyond cryptofeed's ``Feed`` arguments (``symbols``, ``channels``, ``subscription``,
    ``callbacks``, ``max_depth``, ``candle_interval``, ``candle_closed_only``, ``timeout``,
    ``retries`` = -1 by default, ...):

    ``symbols='all'``
        every listed, open market, new listings subscribed and delisted ones dropped while
        running (``BackpackConfig.listing_poll_s``); channels that exist for perpetuals only are
        applied to those. ``market_types`` (``'spot'``, ``'perp'`` or both) and
        ``shard=(index, count)`` (the markets whose ``shard_of(symbol, count) == index``) narrow it.

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
    ``max_frame_bytes``
        the largest WebSocket frame accepted (4 MiB); a larger one closes the connection, which
        reconnects.
    ``raise_callback_errors``
        False (default): an exception in a callback is logged with its traceback (rate-limited),
        counted in ``callback_errors`` and the feed carries on with the next message. True:
        cryptofeed's behaviour, the exception drops the connection, which reconnects.
    ``reconcile_interval_s``
        BALANCES: compare ``/api/v1/capital`` with the balances emitted this often (None: never).
    """

    id = BACKPACK
    websocket_endpoints = [WebsocketEndpoint(DEFAULT_WS_URL)]
    rest_endpoints = [RestEndpoint(DEFAULT_REST_URL, routes=Routes(
        '/api/v1/markets', l2book='/api/v1/depth?symbol={}&limit={}', open_interest='/api/v1/openInterest?symbol={}',
        funding='/api/v1/fundingRates?symbol={}'))]
    websocket_channels = {
        TRADES: 'trade', L2_BOOK: 'depth', TICKER: 'bookTicker', CANDLES: 'kline', FUNDING: 'markPrice',
        INDEX: 'markPrice', OPEN_INTEREST: 'openInterest', LIQUIDATIONS: 'liquidation',
        ORDER_INFO: 'account.orderUpdate', FILLS: 'account.orderUpdate', POSITIONS: 'account.positionUpdate',
        BALANCES: 'account.balanceUpdate',
    }
    candle_interval_map = {
        '1s': '1s', '1m': '1m', '3m': '3m', '5m': '5m', '15m': '15m', '30m': '30m', '1h': '1h', '2h': '2h',
        '4h': '4h', '6h': '6h', '8h': '8h', '12h': '12h', '1d': '1d', '3d': '3d', '1w': '1w', '1M': '1month',
    }
    valid_candle_intervals = frozenset(candle_interval_map)
    valid_depth_limits = (5, 10, 20, 50, 100, 500, 1000)
    request_limit = 20

    def __init__(self, config=None, *, depth_interval: Optional[str] = None, snapshot_limit: int = 1000,
                 streams_per_connection: int = 200, keep_raw: bool = False,
                 rest_client: Optional[BackpackRestClient] = None, ping_interval: float = 10.0,
                 ping_timeout: float = 10.0, trade_backfill_limit: int = 10_000, snapshot_workers: int = 2,
                 snapshot_spacing_s: float = 0.05, reconnect_backoff_base_s: float = 0.5,
                 reconnect_backoff_max_s: float = 30.0, raise_callback_errors: bool = False,
                 max_frame_bytes: int = MAX_FRAME_BYTES, reconcile_interval_s: Optional[float] = None,
                 market_types=None, shard=None, **kwargs):
        check_feed_options(dict(streams_per_connection=streams_per_connection, keep_raw=keep_raw,
                                ping_interval=ping_interval, ping_timeout=ping_timeout,
                                trade_backfill_limit=trade_backfill_limit, snapshot_workers=snapshot_workers,
                                snapshot_spacing_s=snapshot_spacing_s, raise_callback_errors=raise_callback_errors,
                                max_frame_bytes=max_frame_bytes), kwargs, _OWN_KEYWORDS)
        cfg = BackpackConfig.coerce(config)
        http_proxy = kwargs.pop('http_proxy', None)
        if http_proxy:  # cryptofeed's keyword: here it applies to REST and WebSocket alike
            if cfg.proxies is not None:
                raise BackpackConfigError('give the proxy once: http_proxy= or the config\'s proxies, not both')
            cfg = cfg.replace(proxies={'url': str(http_proxy)})
        self.backpack_config = cfg
        if depth_interval not in DEPTH_WINDOWS:
            raise ValueError(f'depth_interval must be one of {DEPTH_WINDOWS}, got {depth_interval!r}')
        if snapshot_limit not in self.valid_depth_limits:
            raise ValueError(f'snapshot_limit must be one of {self.valid_depth_limits}, got {snapshot_limit!r}')
        backoff_delays(reconnect_backoff_base_s, reconnect_backoff_max_s)  # raises ValueError if inconsistent
        kwargs.setdefault('retries', -1)
        self._selection = check_symbol_request(kwargs.get('subscription'), kwargs.get('symbols'),
                                               kwargs.get('channels'), market_types, shard)
        if self._selection is not None:  # symbols='all': the markets are known once running
            kwargs.pop('symbols')
            self._wanted = {channel: set() for channel in kwargs.pop('channels')}
        else:
            self._wanted = self._wanted_symbols(kwargs.get('subscription'), kwargs.get('symbols'),
                                                kwargs.get('channels'))
        private = private_channels_asked(self._wanted, self.backpack_config)  # raises what to configure
        cryptofeed_config = config if is_cryptofeed_config(config) or isinstance(config, str) or (
            isinstance(config, dict) and 'backpack' in config) else None
        with self._no_symbol_download():
            super().__init__(config=cryptofeed_config, **kwargs)
        self.depth_interval = depth_interval
        self.snapshot_limit = snapshot_limit
        self.streams_per_connection = streams_per_connection
        self.keep_raw = keep_raw
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_frame_bytes = max_frame_bytes
        self.reconnect_backoff_base_s = reconnect_backoff_base_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s

        self.metrics = FeedMetrics()
        self.metrics_server = None  # the /metrics + /healthz server while running, with metrics_port set
        self._symbol_service: Optional[BackpackSymbolService] = None
        self._prefixes = stream_prefixes(depth_interval, self.candle_interval_map[self.candle_interval])
        self._streams = self._plan_streams()
        self._public: list = []          # the public connections (subscribing.py)
        self._followed = {s.symbol for s in self._streams if s.symbol is not None}
        self._pinned: set = set()        # added by hand: kept while listed (listings.py)
        self._excluded: set = set()      # removed by hand: not added back by the listing poll
        self._changes: Optional[asyncio.Lock] = None
        self._checked = self._closing = self._running = False
        self.metrics.subscribed_symbols = len(self._followed)
        self._ctx = ChannelContext(
            self.id, self.callbacks, self.metrics, keep_raw=keep_raw,
            cross_check=self.check_bid_ask_overlapping if self.cross_check else None, rest_client=rest_client,
            rest_factory=lambda: BackpackRestClient.from_config(cfg, conn_id=f'{self.id}.http'),
            raise_callback_errors=raise_callback_errors)
        symbols_of = {kind: [s.symbol for s in self._streams if s.kind == kind] for kind in ('depth', 'trade')}
        self._book = BookChannel(self._ctx, symbols_of['depth'], max_depth=self.max_depth,
                                 snapshot_limit=snapshot_limit, snapshot_workers=snapshot_workers,
                                 snapshot_spacing_s=snapshot_spacing_s, retry_base_s=reconnect_backoff_base_s,
                                 retry_max_s=reconnect_backoff_max_s)
        self._trade = TradeChannel(self._ctx, symbols_of['trade'], backfill_limit=trade_backfill_limit)
        self._market = MarketChannels(self._ctx, self._wanted, candle_closed_only=self.candle_closed_only,
                                      candle_intervals=self.normalize_candle_interval)
        # What (re)subscribing a stream resets, by stream kind.
        self._on_subscribe = {'depth': self._book.on_subscribe, 'trade': self._trade.on_subscribe}
        subscribed = {normalized_to_exchange(s): s for s in set().union(*self._wanted.values())}
        self._account_every_market = {channel for channel, symbols in private.items() if not symbols}
        self._router = Router({**self._market.handlers(), **self._book.handlers(), **self._trade.handlers()},
                              subscribed, data_symbols=RuleSymbols(subscribed), on_error=self._on_server_error,
                              on_drop=self._on_drop, dropped=DONE)
        self.message_handler = self._router.handle
        self._account = self._private_router = None
        if private:
            self._account = AccountChannel(
                self._ctx, private, signer=cfg.signer(), measure_clock='clock_offset_ms' not in cfg.model_fields_set,
                retry_base_s=reconnect_backoff_base_s, retry_max_s=reconnect_backoff_max_s,
                reconcile_interval_s=reconcile_interval_s)
            self._private_router = Router(self._account.handlers(), {}, data_symbols=RuleSymbols(),
                                          on_error=self._account.on_error_frame, on_drop=self._on_drop, dropped=DONE)

    # cryptofeed 2.x refuses authenticated channels without its own key_id/key_secret; ours are in the
    # BackpackConfig (checked above), so they answer for it when its Config has none (and on 3.x,
    # which has no such attributes, they say which key the feed signs with).
    key_id = property(
        lambda self: getattr(self, '_key_id', None) or (self.backpack_config.auth and self.backpack_config.auth.public_key),
        lambda self, value: setattr(self, '_key_id', value))
    key_secret = property(
        lambda self: getattr(self, '_key_secret', None) or (self.backpack_config.auth and '<in BackpackConfig>'),
        lambda self, value: setattr(self, '_key_secret', value))

    # ------------------------------------------------------------------ planning

    @staticmethod
    def _wanted_symbols(subscription, symbols, channels) -> Dict[str, set]:
        """cryptofeed channel -> normalized symbols asked for. Computed from the arguments:
        cryptofeed 2.4.1's ``_feed_config`` gives every channel of a ``subscription=`` dict all
        the symbols seen so far."""
        if subscription is None:  # account channels may come without symbols: every market
            subscription = {channel: symbols or () for channel in channels or ()}
        return {channel: {str(s) for s in syms} for channel, syms in subscription.items()}

    def _plan_streams(self) -> List[Stream]:
        """Every stream of the symbols given as a list, in a stable order (none yet for 'all')."""
        streams: List[Stream] = []
        seen = set()
        for kind, exchange_symbols in sorted(self.subscription.items()):
            if kind == 'liquidation':
                streams.append(Stream('liquidation', kind, None))
                continue
            if kind.startswith('account.'):
                continue  # private: the account channel's own connection
            for exchange_symbol in sorted(exchange_symbols):
                symbol = self.exchange_symbol_to_std_symbol(exchange_symbol)
                if kind in PERP_ONLY_KINDS and not symbol.endswith('-PERP'):
                    # Name the channels asked for (FUNDING, INDEX), not the stream that carries them.
                    asked = [channel.upper() for channel, stream in self.websocket_channels.items()
                             if stream == kind and symbol in self._wanted.get(channel, ())]
                    LOG.warning('%s: %s is published for perpetuals only; %s is spot, so it is not subscribed '
                                'for it', self.id, ' and '.join(asked) or kind, symbol)
                    continue
                name = f'{self._prefixes.get(kind, kind)}.{exchange_symbol}'
                if name not in seen:
                    seen.add(name)
                    streams.append(Stream(name, kind, symbol))
        return streams

    def _start(self, loop: asyncio.AbstractEventLoop) -> list:
        """Start the book workers, the account tasks and (``symbols='all'``) the listings task;
        return the connection handlers to run (the line's lifecycle runs them; ``_launch`` runs
        those opened later). cryptofeed 2.x's ``authenticate`` hook, where the line has one, runs
        on every connect; 3.x's playback replaces ``_wrap_connection``."""
        self.metrics.mark_started()
        if self.backpack_config.metrics_port is not None:
            self.metrics_server = serve_feed(self, self.backpack_config.metrics_host,
                                             self.backpack_config.metrics_port, loop)
        self._running = True
        authenticate = getattr(self, 'authenticate', None)
        handlers = []
        for conn, subscribe, handler in self._connections():
            wrapped = self._wrap_connection(conn)
            if wrapped is not conn:  # a stand-in (playback): it carries the streams of the connection it replaces
                wrapped.streams, wrapped.on_close = conn.streams, conn.on_close
            handlers.append(self._connection_handler(wrapped, subscribe, handler, authenticate))
        self._book.start(loop)
        if self._account is not None:
            self._account.start(loop)
        if self._selection is not None:
            self._ctx.spawn(self._follow_listings(), loop)
        return handlers

    def _launch(self, handler: BackpackConnectionHandler) -> None:
        """Run a connection opened while the feed runs (each line's host implements it)."""
        raise NotImplementedError

    async def _halt_line(self, error: BackpackConfigError) -> None:
        """Stop every connection for good after ``error`` (each line's host implements it)."""
        raise NotImplementedError

    def _wrap_connection(self, conn):
        """The connection to run (cryptofeed 3.x's hook, replaced by its playback)."""
        return conn

    def _connection_handler(self, conn, subscribe, handler, authenticate=None) -> BackpackConnectionHandler:
        """The reconnecting handler of one connection, reporting into the feed's metrics."""
        return BackpackConnectionHandler(
            conn, subscribe, handler, authenticate, self.retries, timeout=self.timeout,
            timeout_interval=self.timeout_interval, exceptions=self.exceptions, log_on_error=self.log_on_error,
            start_delay=self.start_delay, backoff_base=self.reconnect_backoff_base_s,
            backoff_max=self.reconnect_backoff_max_s,
            on_reconnect=self.metrics.on_reconnect, on_connect_failure=self.metrics.on_connect_failure,
            on_give_up=self.metrics.on_connection_given_up,
            on_handler_error=None if self._ctx.raise_callback_errors else self._ctx.callback_failed)

    async def _stop_connections(self) -> None:
        """Stop every connection and cancel every task this feed started; close our sessions."""
        self._closing = True
        if self._account is not None:
            self._account.stopping = True
        for handler in list(self.connection_handlers):
            if isinstance(handler, BackpackConnectionHandler):
                await handler.stop()
        await self._ctx.close()
        await release_feed(self, self.metrics_server)
        self.metrics_server = None

    @property
    def rest(self) -> BackpackRestClient:
        """The REST client (created on first use from the config)."""
        return self._ctx.rest

    def _start_replay(self) -> list:
        """The streams to subscribe when a playback hands its stand-in connection to ``subscribe``
        (a host that plays recordings back overrides this)."""
        return []

    def message_handler(self, msg, conn, timestamp: float):
        """Route one frame; returns the awaitable cryptofeed's ConnectionHandler awaits.

        ``__init__`` replaces this method on the instance by ``Router.handle`` itself (same
        signature, same result): no frame of ours between cryptofeed and the router.
        """
        return self._router.handle(msg, conn, timestamp)

    # ------------------------------------------------------------------ router callbacks

    def _on_server_error(self, error, receipt_ts: float) -> None:
        self.metrics.on_server_error()

    def _on_drop(self, reason: str) -> None:
        self.metrics.on_dropped()
        if reason in (MALFORMED, INVALID):
            self.metrics.on_parse_error()
        elif reason == UNKNOWN_STREAM:
            self.metrics.on_unknown_stream()

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
        snap['books'] = self._book.state()
        snap['trades'] = self._trade.state()
        snap['drops'] = self._router.drops
        if self._account is not None:
            snap['account'] = self._account.state()
            snap['drops_private'] = self._private_router.drops
        rest = self._ctx.rest_created
        if rest is not None:
            snap['rest'] = rest.stats.as_dict()
        return snap

    def health(self, **thresholds) -> BackpackHealthReport:
        """``healthy`` / ``degraded`` / ``unhealthy`` with reasons, judged over a recent window."""
        self._note_last_message()
        return evaluate_health(self.metrics, now=time.time(), **thresholds)


# The feed's own keyword names, for the suggestions of ``check_feed_options``.
_OWN_KEYWORDS = frozenset(inspect.signature(BackpackFeedBase.__init__).parameters) - {'self', 'kwargs'}
