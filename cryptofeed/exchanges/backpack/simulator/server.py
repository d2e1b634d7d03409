"""The simulator's server: Backpack's public REST API, the WebSocket endpoint and test controls.

Use ``BackpackSimulator`` in tests, demos and benchmarks wherever the real exchange would be::

    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=500) as sim:
        sim.rest_url   # http://127.0.0.1:PORT   (https:// with tls=True; trust sim.ca_file)
        sim.ws_url     # ws://127.0.0.1:PORT     (the WebSocket endpoint is the root path)

One aiohttp application serves, on one port: the public REST endpoints of backpack-api.md §3
(plus ``/api/v1/assets`` and ``/api/v1/securities``, which ccxt loads with the markets), the
signed endpoints of the account side (``private.AccountService``), the WebSocket protocol of §7
at ``/`` (the same GET route upgrades), and the truth/control endpoints below. A background
loop steps the ``MarketModel`` at ``rate`` order-book updates per second (summed over the
markets; each update is one ``depth.<S>`` frame, trades and bookTicker ride on top) and fans
the events out, encoding each frame once for all subscribers.

WebSocket behaviour (§7, §10): SUBSCRIBE/UNSUBSCRIBE with several streams per frame, no
acknowledgement, ``{"stream","data"}`` envelopes, protocol pings every ``ping_interval`` s and a
close (1011, "ping timeout") when no pong arrived for ``ping_timeout`` s. Error frames are
``{"id":null,"error":{"code":4006,"message":"Invalid stream"}}`` for each unknown stream or
symbol (the valid streams of the same frame are subscribed), ``4003 Invalid signature`` when
the account side rejects a private SUBSCRIBE, and ``4000 Invalid request`` (a simulator choice,
the exchange's answer is undocumented) for frames that are not JSON objects with ``method``
SUBSCRIBE/UNSUBSCRIBE and a ``params`` list. ``markPrice.<S>`` and ``openInterest.<S>`` exist
for perpetuals only. On shutdown every connection gets Close 1001.

Truth and control endpoints (never affected by HTTP faults):

* ``GET /_sim/book?symbol=S[&sequence=N]`` -> ``{"symbol", "sequence": N, "bids": [[p, q], ...],
  "asks": [...]}``, both sides best first, strings; ``sequence`` asks for a recent past book.
* ``GET /_sim/trades?symbol=S`` -> every trade printed, oldest first:
  ``[{"id", "price", "quantity", "side", "timestamp_us"}]``; ``side`` is the TAKER's side,
  ``"Buy"`` or ``"Sell"`` (``"Sell"`` exactly when ``isBuyerMaker``/``m`` is true).
* ``POST /_sim/pause`` / ``POST /_sim/resume`` -> ``{"paused": bool}``. Paused, the book and the
  trade log stand still (account orders still execute); periodic streams keep flowing.
* ``POST /_sim/list`` ``{"symbol": "NEWCOIN_USDC"}`` -> ``{"ok": true, "market": <the
  /api/v1/markets object>}``: a new market trades from now on (``_PERP`` suffix: a perpetual);
  a closed one opens again, its sequence carrying on. 400 ``INVALID_CLIENT_REQUEST`` with the
  reason for an open market or a malformed symbol.
* ``POST /_sim/delist`` ``{"symbol": ...}`` -> ``{"ok": true, "market": ...}`` with
  ``orderBookState`` ``"Closed"``: the market stays listed, its streams fall silent (the
  subscriptions stay), depth/trades REST answer the frozen book, orders are refused. 400 for an
  unknown or already closed market.
* ``GET /_sim/stats`` -> ``{"rest_requests", "rest_429", "ws_connections", "subscriptions",
  "ws_connections_total", "subscribe_refused"}`` (see ``BackpackSimulator.stats``).

* ``POST /_sim/faults`` with one of these bodies -> ``{"ok": true, "fault": <normalised>}``, or
  400 ``{"code": "INVALID_CLIENT_REQUEST", "message"}``:

  - ``{"fault": "skip_sequence", "symbol": "SOL_USDC", "count": 3}`` the depth counter jumps by
    ``count``; those ids are never delivered (a gap for clients; the book is unchanged).
  - ``{"fault": "duplicate", "symbol": "SOL_USDC", "count": 2, "stream": "depth.SOL_USDC"}`` each
    of the next ``count`` frames of the stream (default ``depth.<symbol>``; any depth variant of
    the symbol) is sent twice in a row.
  - ``{"fault": "reorder", "symbol": "SOL_USDC", "count": 4, "stream": "depth.SOL_USDC"}`` the next
    ``count`` frames of the stream go out in swapped pairs (2,1,4,3; an odd last one unchanged).
  - ``{"fault": "drop_connections"}`` every WebSocket connection is aborted (TCP closed, no Close
    frame). Options: ``"private_only": true`` aborts only connections with a private (``account.``)
    subscription; ``"duration": 2.0`` refuses new WebSocket connections (HTTP 503) for that many
    seconds while REST keeps working, so account events happen while a client is away.
  - ``{"fault": "silence_pings", "duration": 3.0}`` for ``duration`` s the server neither sends
    pings nor answers the clients' pings (nor enforces its own pong timeout).
  - ``{"fault": "malformed", "kind": K, "symbol": "SOL_USDC"}`` one broken frame to every
    connection, subscribed or not (``symbol`` defaults to the first market). ``K`` is
    ``truncated_json``: the first half of a ``trade.<S>`` envelope (not valid JSON);
    ``unknown_stream``: ``{"stream":"unknownStream.<S>","data":{"E":<µs>,"e":"unknownStream","s":<S>}}``;
    ``wrong_types``: ``{"stream":"trade.<S>","data":{"E":"not-a-number","T":null,"a":12345,
    "b":67890,"e":"trade","m":"false","p":101.5,"q":[1],"s":<S>,"t":"abc"}}``.
  - ``{"fault": "hostile_depth", "kind": K, "symbol": "SOL_USDC"}`` one ``depth.<S>`` frame to the
    connections subscribed to it, with ``U = u =`` the next id (which the market's own next frame
    reuses) and one bid level whose price or size is ``K``: ``nan_price``, ``snan_price``,
    ``infinite_price``, ``negative_price``, ``huge_price`` (``1E+400``), ``nan_size``, ``snan_size``,
    ``infinite_size``, ``negative_size``, ``huge_size``; or ``id_jump``: the unchanged best bid with
    ``u`` 10**9 ahead.
  - ``{"fault": "corrupt_snapshot", "count": 1}`` the next ``count`` ``/api/v1/depth`` answers carry
    ``lastUpdateId`` ``"1000000000000000000000000000000"`` (10**30), levels unchanged.
  - ``{"fault": "hostile_account", "event": E, "field": F, "value": V}`` (optional ``"symbol"``) one
    account frame of event ``E`` to each connection subscribed to its account stream, built for the
    account signed in on that connection, with key ``F`` set to ``V`` (a string, a finite number of
    any size, true/false or null). ``E``: ``orderFill`` (a filled one-lot limit buy at the mark
    price, with a fresh order id and trade id), ``orderAccepted`` (the same order, ``New``),
    ``orderUpdate`` (the same, sent as ``orderModified``), ``positionUpdate`` (``positionAdjusted``
    of the account's position, or a one-lot long; ``symbol`` defaults to the first perpetual), or
    ``balanceUpdate`` (the account's true USDC balance; no ``symbol``). With a sound ``V`` the frame
    is valid, so a test can send one as a control.
  - ``{"fault": "malformed_history_row", "path": P, "field": F, "value": V, "count": 1}`` in each of
    the next ``count`` answers of ``P`` that have rows, key ``F`` of the middle row (element
    ``len // 2``) is set to ``V``. ``P``: ``/wapi/v1/history/fills``, ``/wapi/v1/history/orders``,
    ``/api/v1/orders``, ``/api/v1/position``, or ``/api/v1/capital`` (the entry of the middle asset
    in sorted order).
  - ``{"fault": "http_status", "status": 429, "count": 2, "path": "/api/v1/depth", "retry_after": 3}``
    the next ``count`` requests (to ``path`` only, when given; WebSocket handshakes included when
    no path is given) get ``status``: 429 with header ``Retry-After: <retry_after>`` and body
    ``{"code":"TOO_MANY_REQUESTS",...}``; 451 ``FORBIDDEN``; 500/502 ``SERVER_ERROR``; 503
    ``MAINTENANCE``.
  - ``{"fault": "slow_rest", "delay": 0.5, "count": 3}`` or ``{"fault": "slow_rest", "delay": 0.5,
    "duration": 2.0}`` (optional ``path``) REST responses are held back ``delay`` s, for the next
    ``count`` requests or for ``duration`` s.

Standing limits (off by default): ``rest_rate_limit`` (per client address, public ``/api/v1/*``),
``history_rate_limit`` (historical endpoints, all clients together) and
``max_streams_per_connection``. An injected ``http_status`` fault answers before either rate
limit; a request the per-client bucket refuses is not counted by the history limit. Every 429 is
counted in ``stats()["rest_429"]``. A SUBSCRIBE past the stream limit gets
``{"id":null,"error":{"code":4005,"message":"Too many streams: at most S per connection ..."}}``
and none of its streams is subscribed (unknown streams in it still get their 4006 frames).

The same controls are Python methods: ``pause()``, ``resume()``, ``inject(fault)``,
``book(symbol)``, ``trades(symbol)``, ``list_market(symbol)``, ``delist_market(symbol)``, ``stats()``.
"""
from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import shutil
import ssl
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from aiohttp import WSMsgType, web

from cryptofeed.exchanges.backpack.simulator import wire
from cryptofeed.exchanges.backpack.simulator.faults import (
    CORRUPT_SNAPSHOT_ID, HOSTILE_ACCOUNT_EVENTS, Fault, FaultError, FaultState, HistoryRateLimit, RestRateLimit,
    hostile_depth_payload, http_error_body, malformed_payload, parse_fault,
)
from cryptofeed.exchanges.backpack.simulator.market import (
    DAY_US, DEPTH_WINDOWS_MS, KLINE_INTERVALS, DepthUpdate, MarketModel, TradePrint,
)
from cryptofeed.exchanges.backpack.simulator.markets import (
    DEFAULT_SYMBOLS, SYNTHETIC_CREATED_AT, asset_objects, generated_market, market_object, security_objects, sim_params,
    synthetic_symbols,
)
from cryptofeed.exchanges.backpack.simulator.private import AccountService
from cryptofeed.exchanges.backpack.simulator.verify import SimAuthError

__all__ = ['BackpackSimulator', 'ListingError', 'STREAM_LIMIT_CODE']

LOG = logging.getLogger('cryptofeed.backpack.simulator')

_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_MARKET_TYPES = ('SPOT', 'PERP', 'IPERP', 'DATED', 'PREDICTION', 'RFQ')
_PRIVATE_BASES = ('orderUpdate', 'positionUpdate', 'balanceUpdate')
_HIGH_WATER = 4 * 1024 * 1024
_CLOSE_PING_TIMEOUT = 1011
_CLOSE_GOING_AWAY = 1001
_REST_PREFIXES = ('/api/', '/wapi/')
_PUBLIC_PREFIX = '/api/v1/'
#: Code of the error frame refusing a SUBSCRIBE beyond ``max_streams_per_connection`` (a simulator
#: choice: the exchange documents no such frame).
STREAM_LIMIT_CODE = 4005


def _undo_limit(markets: int) -> int:
    """How many book updates per market ``/_sim/book?sequence=`` can go back: 50,000 for a few
    markets, less for many (about 500,000 over all of them, at least 2,000 each), so that memory
    stays bounded in a long whole-venue run (an update kept costs about 200 bytes)."""
    return min(50_000, max(2_000, 500_000 // max(1, markets)))


class ListingError(ValueError):
    """A listing or delisting the simulator refuses; the message says why (``/_sim/list`` and
    ``/_sim/delist`` answer it as a 400)."""


class _ApiError(Exception):
    """A REST error answered as ``{"code", "message"}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(body: Any, status: int = 200, headers: Optional[dict] = None) -> web.Response:
    return web.Response(body=wire.encode_json(body), status=status, headers=headers,
                        content_type='application/json', charset='utf-8')


def _text(body: str) -> web.Response:
    return web.Response(text=body, content_type='text/plain', charset='utf-8')


def _int_param(request: web.Request, name: str, default: Optional[int], *, low: int = 0,
               high: Optional[int] = None) -> Optional[int]:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ApiError(400, 'INVALID_CLIENT_REQUEST',
                        f'failed to parse parameter {name}: expected an integer') from None
    if value < low or (high is not None and value > high):
        bound = f'{low}..{high}' if high is not None else f'>= {low}'
        raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'parameter {name} must be {bound}')
    return value


class _Conn:
    """One WebSocket connection: its subscriptions and liveness."""
    __slots__ = ('ws', 'transport', 'subs', 'private', 'last_pong', 'last_ping', 'peer')

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, now: float, peer: str):
        self.ws = ws
        self.transport = transport
        self.subs: set[str] = set()
        self.private: dict[str, str] = {}
        self.last_pong = now
        self.last_ping = now
        self.peer = peer

    def is_open(self) -> bool:
        transport = self.transport
        return transport is not None and not transport.is_closing() and not self.ws.closed

    def write(self, data: bytes) -> None:
        if self.is_open():
            self.transport.write(data)

    def buffered(self) -> int:
        transport = self.transport
        if transport is None or transport.is_closing():
            return 0
        return transport.get_write_buffer_size()


class BackpackSimulator:
    """A local Backpack exchange on 127.0.0.1; use as ``async with BackpackSimulator(...) as sim``.

    ``markets``: symbols to list (all defaults when None, see ``markets.DEFAULT_SYMBOLS``).
    ``seed``: makes the market activity reproducible. ``tls``: serve https/wss with a
    certificate from a throw-away ``trustme`` CA (``ca_file``, ``client_ssl_context()``).
    ``rate``: order-book updates per second over all markets (0 = a still market).
    ``ping_interval`` / ``ping_timeout``: protocol keepalive, seconds. ``strict_keys``: when
    given, only these API keys may use signed endpoints and private streams.
    ``starting_balances``: asset -> amount every new account starts with. The cadences
    (``ticker_interval``, ``mark_interval``, ``open_interest_interval``, seconds) default to
    the exchange's 1 s, 1 s and 60 s. A client whose send buffer stays above 4 MiB for
    ``slow_consumer_timeout`` s is disconnected; until then the market waits for it.
    ``frames_sent`` counts the market-data frames written so far (all connections).
    ``private_undelivered`` counts account events (per stream) that no connection of their account
    was subscribed to: they exist only in the REST history, as on the exchange.
    ``clock_offset_ms``: the exchange's clock minus the host's (``/api/v1/time``, signature
    windows and event times all follow it); may be changed while running, as a drifting or
    stepped server clock would.
    ``history_s`` / ``history_updates``: at start, fill the past ``history_s`` seconds with
    ``history_updates`` engine events (about one trade per five), so ``/trades/history`` and
    ``/klines`` have history to page through. ``history_rate_limit`` = ``(requests, seconds)``
    limits the historical endpoints (``/api/v1/trades/history``, ``/api/v1/klines``,
    ``/wapi/v1/history/*``) together, answering 429 ``TOO_MANY_REQUESTS`` with ``Retry-After``
    beyond it; ``history_limit.refused`` counts those 429s.

    Whole-venue controls: ``synthetic_markets`` = N adds N generated markets to the ``markets``
    (``SYN001_USDC``, ``SYN002_USDC``, ``SYN003_USDC_PERP``, ...: every third a perpetual; see
    ``markets.synthetic_symbols``); ``list_market()`` / ``delist_market()`` list and close markets
    while running. ``rest_rate_limit`` = R answers 429 ``TOO_MANY_REQUESTS`` with ``Retry-After``
    beyond R requests per second per client address (a token bucket with a burst of R) over the
    public ``/api/v1/*`` endpoints. ``max_streams_per_connection`` = S refuses, with an error
    frame (code ``STREAM_LIMIT_CODE``), a SUBSCRIBE that would take a connection past S streams.
    ``stats()`` are the truth counters (requests, 429s, connections, subscriptions). With many
    markets, the past books ``book(symbol, sequence)`` can reach shrink to keep memory bounded
    (about 500,000 updates over all markets, at least 2,000 per market).
    """

    def __init__(self, markets: Optional[list[str]] = None, seed: int = 0, tls: bool = False, rate: float = 200.0,
                 ping_interval: float = 60.0, ping_timeout: float = 120.0, strict_keys: Optional[list[str]] = None,
                 starting_balances: Optional[dict[str, str]] = None, *, host: str = '127.0.0.1', port: int = 0,
                 ticker_interval: float = 1.0, mark_interval: float = 1.0, open_interest_interval: float = 60.0,
                 liquidation_probability: float = 0.02, slow_consumer_timeout: float = 10.0,
                 clock_offset_ms: int = 0, history_s: float = 0.0, history_updates: int = 0,
                 history_rate_limit: Optional[tuple[int, float]] = None, synthetic_markets: int = 0,
                 rest_rate_limit: Optional[float] = None, max_streams_per_connection: Optional[int] = None):
        if rate < 0:
            raise ValueError('rate must be >= 0')
        self._synthetic = synthetic_symbols(synthetic_markets)
        if max_streams_per_connection is not None and (
                isinstance(max_streams_per_connection, bool) or not isinstance(max_streams_per_connection, int)
                or max_streams_per_connection < 1):
            raise ValueError(f'max_streams_per_connection must be an integer >= 1 (or None for no limit), '
                             f'not {max_streams_per_connection!r}')
        self._max_streams = max_streams_per_connection
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError('ping_interval and ping_timeout must be > 0')
        if history_updates < 0 or (history_updates and history_s <= 0):
            raise ValueError('history_updates must be >= 0, and history_s > 0 when it is not 0')
        self._symbols = list(markets) if markets is not None else None
        self.clock_offset_ms = int(clock_offset_ms)
        self._seed = seed
        self._tls = tls
        self._rate = float(rate)
        self._ping_interval = float(ping_interval)
        self._ping_timeout = float(ping_timeout)
        self._strict_keys = set(strict_keys) if strict_keys is not None else None
        self._starting_balances = dict(starting_balances) if starting_balances is not None else None
        self._host = host
        self._port = port
        self._cadence = (ticker_interval, mark_interval, open_interest_interval)
        self._liq_prob = liquidation_probability
        self._slow_timeout = slow_consumer_timeout
        self._history = (history_s, history_updates)
        self.history_limit = (HistoryRateLimit(*history_rate_limit, time.monotonic)
                              if history_rate_limit is not None else None)
        self.rest_limit = RestRateLimit(rest_rate_limit, time.monotonic) if rest_rate_limit is not None else None
        self._model: Optional[MarketModel] = None
        self._account: Optional[AccountService] = None
        self._faults = FaultState(time.monotonic)
        self._conns: set[_Conn] = set()
        self._index: dict[str, set[_Conn]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._runner: Optional[web.AppRunner] = None
        self._ssl: Optional[ssl.SSLContext] = None
        self._tmpdir: Optional[str] = None
        self._ca_file: Optional[str] = None
        self._paused = False
        self._silenced = False
        self._bound_port = 0
        self._started = False
        self.frames_sent = 0
        self._ws_refused_until = 0.0        # drop_connections with a duration: refuse new WS connections
        self.private_undelivered: dict[str, int] = {}
        self._rest_requests = 0
        self._rest_429 = 0
        self._ws_accepted = 0
        self._streams_refused = 0

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> 'BackpackSimulator':
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    def _now_us(self) -> int:
        return time.time_ns() // 1000 + self.clock_offset_ms * 1000

    def _now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    async def start(self) -> None:
        """Build the market, bind the port and start the market and keepalive loops."""
        if self._started:
            raise RuntimeError('simulator already started')
        self._started = True
        ticker, mark, oi = self._cadence
        count = (len(self._symbols) if self._symbols is not None else len(DEFAULT_SYMBOLS)) + len(self._synthetic)
        self._model = MarketModel(self._symbols, seed=self._seed, clock=self._now_us,
                                  ticker_interval_us=int(ticker * 1e6), mark_interval_us=int(mark * 1e6),
                                  open_interest_interval_us=int(oi * 1e6),
                                  liquidation_probability=self._liq_prob,
                                  extra_markets=[generated_market(symbol, SYNTHETIC_CREATED_AT)
                                                 for symbol in self._synthetic],
                                  undo_limit=_undo_limit(count))
        if self._history[1]:
            self._model.run_history(*self._history)
        self._account = AccountService(self._model, strict_keys=self._strict_keys,
                                       starting_balances=self._starting_balances, now_ms=self._now_ms)
        self._account.event_sink = self._deliver_private
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        self._account.add_routes(app)
        if self._tls:
            self._ssl = self._make_tls()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl)
        await site.start()
        self._bound_port = self._runner.addresses[0][1]
        self._loops = [asyncio.create_task(self._market_loop(), name='backpack-sim-market'),
                       asyncio.create_task(self._keepalive_loop(), name='backpack-sim-keepalive')]
        for task in self._loops:
            task.add_done_callback(self._loop_ended)
        LOG.info('backpack simulator listening on %s (ws %s), %d markets, rate %.0f/s',
                 self.rest_url, self.ws_url, len(self._model.symbols), self._rate)

    @staticmethod
    def _loop_ended(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            LOG.error('simulator loop %s stopped', task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Close every connection (Close 1001), stop the loops and release the port and CA files."""
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # already logged by _loop_ended; shutting down must still release everything
                pass
        self._loops = []
        closing = [self._close(conn, _CLOSE_GOING_AWAY, 'server shutdown') for conn in list(self._conns)]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _make_tls(self) -> ssl.SSLContext:
        import trustme  # a test-time dependency: only TLS mode needs it
        ca = trustme.CA()
        cert = ca.issue_cert('127.0.0.1', 'localhost', '::1')
        self._tmpdir = tempfile.mkdtemp(prefix='backpack-sim-')
        self._ca_file = os.path.join(self._tmpdir, 'ca.pem')
        ca.cert_pem.write_to_path(self._ca_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context

    # ---------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        return self._bound_port

    @property
    def rest_url(self) -> str:
        return f'{"https" if self._tls else "http"}://{self._url_host()}:{self._bound_port}'

    @property
    def ws_url(self) -> str:
        return f'{"wss" if self._tls else "ws"}://{self._url_host()}:{self._bound_port}'

    def _url_host(self) -> str:
        return f'[{self._host}]' if ':' in self._host else self._host

    @property
    def ca_file(self) -> Optional[str]:
        """PEM file of the CA that signed the server certificate (None without TLS)."""
        return self._ca_file

    def client_ssl_context(self) -> ssl.SSLContext:
        """An ``SSLContext`` for clients that trusts the simulator's CA (TLS mode only)."""
        if self._ca_file is None:
            raise RuntimeError('the simulator was started without tls=True')
        return ssl.create_default_context(cafile=self._ca_file)

    @property
    def model(self) -> MarketModel:
        """The market model (for tests that need more than the HTTP truth endpoints)."""
        if self._model is None:
            raise RuntimeError('simulator not started')
        return self._model

    @property
    def account(self) -> AccountService:
        if self._account is None:
            raise RuntimeError('simulator not started')
        return self._account

    @property
    def connections(self) -> int:
        """How many WebSocket connections are open."""
        return len(self._conns)

    # ---------------------------------------------------------------- controls

    def pause(self) -> None:
        """Stop simulated market activity; pending frames are flushed first."""
        self._paused = True
        self._pump()

    def resume(self) -> None:
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def book(self, symbol: str, sequence: Optional[int] = None) -> dict:
        """The truth book (``/_sim/book``): the current one, or the one at a recent ``sequence``."""
        model = self.model
        snap = model.book_snapshot(symbol) if sequence is None else model.book_at(symbol, sequence)
        return wire.book_truth(snap)

    def trades(self, symbol: str) -> list[dict]:
        """Every trade printed in ``symbol`` (``/_sim/trades``), oldest first."""
        return [wire.trade_truth(rec) for rec in self.model.trades(symbol)]

    def list_market(self, symbol: str) -> dict:
        """List ``symbol`` now (``POST /_sim/list``): a ``_PERP`` suffix makes a perpetual, the base
        comes from the symbol, tick and step from ``markets.generated_market`` (a default market left
        out of ``markets`` keeps its own figures). A closed market opens
        again with its book, sequence and trade ids carrying on. Returns ``{"ok": True, "market":
        <the /api/v1/markets object>}``; ``ListingError`` (a ValueError) when the market is already
        listed and open, or the symbol is malformed."""
        model = self.model
        if isinstance(symbol, str) and model.has_symbol(symbol):
            if model.is_open(symbol):
                raise ListingError(f'market {symbol} is already listed and open')
            self._pump()
            info = model.reopen_market(symbol)
            LOG.info('market %s re-opened at sequence %d', symbol, model.sequence(symbol))
        else:
            created = datetime.fromtimestamp(self._now_us() / 1e6, tz=timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')
            if symbol in DEFAULT_SYMBOLS:       # a default market left out of ``markets``: its own figures
                info, params = market_object(symbol), sim_params(symbol)
                info['createdAt'] = created
            else:
                try:
                    info, params = generated_market(symbol, created)
                except ValueError as exc:
                    raise ListingError(str(exc)) from None
            self._pump()
            info = model.add_market(info, params)
            LOG.info('market %s listed (%s)', symbol, info['marketType'])
        return {'ok': True, 'market': copy.deepcopy(info)}

    def delist_market(self, symbol: str) -> dict:
        """Close ``symbol`` now (``POST /_sim/delist``): its ``orderBookState`` becomes ``Closed`` (it
        stays in ``/api/v1/markets``), its streams stop producing frames (subscriptions stay), depth
        and trades REST answer the frozen book, orders are refused. Returns ``{"ok": True, "market":
        <the object>}``; ``ListingError`` for an unknown or already closed market."""
        model = self.model
        if not isinstance(symbol, str) or not model.has_symbol(symbol):
            raise ListingError(f'unknown market {symbol!r}: only a listed market can be delisted')
        if not model.is_open(symbol):
            raise ListingError(f'market {symbol} is already closed')
        self._pump()
        info = model.close_market(symbol)
        self._pump()
        LOG.info('market %s closed at sequence %d', symbol, model.sequence(symbol))
        return {'ok': True, 'market': copy.deepcopy(info)}

    def stats(self) -> dict:
        """Truth counters (``GET /_sim/stats``): ``rest_requests`` (requests to ``/api/*`` and
        ``/wapi/*`` received, refused ones included), ``rest_429`` (every 429 sent, whatever the
        cause: ``rest_rate_limit``, ``history_rate_limit`` or an injected ``http_status`` fault, on
        WebSocket handshakes too), ``ws_connections`` (open now), ``subscriptions`` (streams
        subscribed now, summed over connections), ``ws_connections_total`` (accepted since start),
        ``subscribe_refused`` (SUBSCRIBE frames refused by ``max_streams_per_connection``)."""
        return {
            'rest_requests': self._rest_requests,
            'rest_429': self._rest_429,
            'ws_connections': len(self._conns),
            'subscriptions': sum(len(conn.subs) for conn in self._conns),
            'ws_connections_total': self._ws_accepted,
            'subscribe_refused': self._streams_refused,
        }

    def inject(self, fault: dict) -> dict:
        """Inject a fault (see the module docstring); returns the normalised request."""
        parsed = parse_fault(fault, self.model.symbols)
        self._apply_fault(parsed)
        return parsed.as_dict()

    def _apply_fault(self, fault: Fault) -> None:
        LOG.info('fault injected: %s', fault.as_dict())
        name = fault.fault
        if name == 'skip_sequence':
            self._pump()
            self.model.skip_sequence(fault.symbol, fault.count)
        elif name == 'drop_connections':
            self._pump()
            self._ws_refused_until = time.monotonic() + fault.duration
            for conn in list(self._conns):
                if conn.transport is not None and (conn.private or not fault.private_only):
                    conn.transport.abort()
        elif name == 'malformed':
            self._pump()
            frame = wire.ws_text_frame(malformed_payload(fault.kind, fault.symbol, self._now_us()))
            for conn in list(self._conns):
                conn.write(frame)
        elif name == 'hostile_account':
            self._pump()
            self._send_hostile_account(fault)
        elif name == 'hostile_depth':
            self._pump()
            top = self.model.book_snapshot(fault.symbol, 1)
            best = top.bids[0] if top.bids else (Decimal(1), Decimal(1))
            frame = wire.ws_text_frame(hostile_depth_payload(
                fault.kind, fault.symbol, top.sequence, (wire.dstr(best[0]), wire.dstr(best[1])), self._now_us()))
            for conn in list(self._index.get(f'depth.{fault.symbol}', ())):
                conn.write(frame)
        else:
            self._faults.apply(fault)

    def _send_hostile_account(self, fault: Fault) -> None:
        """One account frame of ``fault.event`` with ``fault.field`` set to ``fault.value``, to each
        connection subscribed to that account stream, built for the account signed in on it."""
        base = HOSTILE_ACCOUNT_EVENTS[fault.event]
        for conn in list(self._conns):
            for name in (base, f'{base}.{fault.symbol}'):
                api_key = conn.private.get(name)
                if api_key is not None and conn.is_open():
                    _, data = self.account.engine.sample_frame(api_key, fault.event, fault.symbol)
                    data[fault.field] = fault.value
                    # The standard library's encoder: it writes integers of any size (say E = 10**20).
                    frame = json.dumps({'stream': name, 'data': data}, separators=(',', ':')).encode()
                    conn.write(wire.ws_text_frame(frame))
                    break

    # ---------------------------------------------------------------- market loop and fan-out

    async def _market_loop(self) -> None:
        loop = asyncio.get_running_loop()
        model = self.model
        rate = self._rate
        tick = min(0.01, max(0.001, 1.0 / rate)) if rate else 0.01
        batch = max(50, int(rate * tick * 4))   # bounds one iteration, so REST and pings stay responsive
        owed = 0.0
        last = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            if not self._paused and rate:
                owed = min(owed + (now - last) * rate, rate * 0.25 + 1.0)
                due = min(int(owed), batch)
                if due > 0:
                    owed -= model.run_updates(due)
            last = now
            model.advance()
            self._pump()
            if self._conns:
                await self._backpressure(loop)

    async def _backpressure(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = None
        while True:
            heavy = [conn for conn in self._conns if conn.buffered() > _HIGH_WATER]
            if not heavy:
                return
            if deadline is None:
                deadline = loop.time() + self._slow_timeout
            elif loop.time() > deadline:
                for conn in heavy:
                    LOG.warning('disconnecting slow consumer %s (%d bytes unsent)', conn.peer, conn.buffered())
                    if conn.transport is not None:
                        conn.transport.abort()
                return
            await asyncio.sleep(0.002)

    def _pump(self) -> None:
        """Send every event the model produced since the last call."""
        if self._model is None:
            return
        events = self._model.drain()
        if events:
            self._dispatch(events)

    def _dispatch(self, events: list) -> None:
        index = self._index
        account = self._account
        faults = self._faults
        emit = self._now_us()
        pending: dict[_Conn, list[bytes]] = {}
        stream_of, encode, frame_of = wire.stream_of, wire.encode_event, wire.ws_text_frame
        for event in events:
            kind = type(event)
            if kind is TradePrint and account is not None:
                account.on_market_trade(event.symbol, event.price, event.quantity,
                                        'Ask' if event.buyer_is_maker else 'Bid', event.trade_id, event.engine_us)
            name = stream_of(event)
            conns = index.get(name)
            if not conns:
                continue
            frame = frame_of(encode(name, event, emit))
            frames = faults.transform(name, frame) if kind is DepthUpdate and faults.frames_active else (frame,)
            for conn in conns:
                bucket = pending.get(conn)
                if bucket is None:
                    pending[conn] = list(frames)
                else:
                    bucket.extend(frames)
        sent = 0
        for conn, frames in pending.items():
            conn.write(b''.join(frames))
            sent += len(frames)
        self.frames_sent += sent

    def _deliver_private(self, api_key: str, stream_base: str, symbol: Optional[str], data: dict) -> None:
        """Event sink of the account side: one frame to each connection of ``api_key`` subscribed to it.

        An event no connection of its account is subscribed to is not sent anywhere (as on the
        exchange: the REST history keeps it); ``private_undelivered`` counts those per stream."""
        names = [stream_base] if not symbol else [stream_base, f'{stream_base}.{symbol}']
        delivered = False
        for name in names:
            conns = self._index.get(name)
            if not conns:
                continue
            frame = None
            for conn in conns:
                if conn.private.get(name) == api_key and conn.is_open():
                    if frame is None:
                        frame = wire.ws_text_frame(wire.encode_envelope(name, data))
                    conn.write(frame)
                    delivered = True
        if not delivered:
            self.private_undelivered[stream_base] = self.private_undelivered.get(stream_base, 0) + 1

    # ---------------------------------------------------------------- keepalive

    async def _keepalive_loop(self) -> None:
        period = max(0.02, min(self._ping_interval, self._ping_timeout) / 4.0)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if self._faults.pings_silenced():
                self._silenced = True
                continue
            if self._silenced:
                self._silenced = False
                for conn in self._conns:
                    conn.last_pong = now
                    conn.last_ping = now
            for conn in list(self._conns):
                if now - conn.last_pong > self._ping_timeout:
                    LOG.info('closing %s: no pong for %.1f s', conn.peer, now - conn.last_pong)
                    self._conns.discard(conn)
                    self._spawn(self._close(conn, _CLOSE_PING_TIMEOUT, 'ping timeout'))
                elif now - conn.last_ping >= self._ping_interval:
                    conn.last_ping = now
                    conn.write(wire.WS_PING_FRAME)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, conn: _Conn, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=reason.encode()), 2.0)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.abort()

    # ---------------------------------------------------------------- WebSocket

    async def _root(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False, timeout=1.0, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            raise _ApiError(426, 'INVALID_CLIENT_REQUEST', 'This endpoint only accepts WebSocket connections')
        if time.monotonic() < self._ws_refused_until:
            raise _ApiError(503, 'MAINTENANCE', 'Service unavailable')
        await ws.prepare(request)
        self._ws_accepted += 1
        peer = request.remote or '?'
        conn = _Conn(ws, request.transport, time.monotonic(), peer)
        self._conns.add(conn)
        try:
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is WSMsgType.TEXT:
                    self._on_request(conn, msg.data)
                elif kind is WSMsgType.BINARY:
                    self._on_request(conn, msg.data.decode('utf-8', 'replace'))
                elif kind is WSMsgType.PING:
                    if not self._faults.pings_silenced():
                        await ws.pong(msg.data)
                elif kind is WSMsgType.PONG:
                    if not self._faults.pings_silenced():
                        conn.last_pong = time.monotonic()
                else:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._forget(conn)
        return ws

    def _forget(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        for name in conn.subs:
            members = self._index.get(name)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self._index[name]
        conn.subs.clear()

    def _error(self, conn: _Conn, code: int, message: str) -> None:
        conn.write(wire.ws_text_frame(wire.error_frame(code, message)))

    def _on_request(self, conn: _Conn, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        method = request.get('method') if isinstance(request, dict) else None
        params = request.get('params') if isinstance(request, dict) else None
        if not isinstance(method, str) or method.upper() not in ('SUBSCRIBE', 'UNSUBSCRIBE') \
                or not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self._error(conn, 4000, 'Invalid request')
            return
        if method.upper() == 'UNSUBSCRIBE':
            for name in params:
                if name in conn.subs:
                    conn.subs.discard(name)
                    conn.private.pop(name, None)
                    members = self._index.get(name)
                    if members is not None:
                        members.discard(conn)
                        if not members:
                            del self._index[name]
            return
        public, private = [], []
        for name in params:
            kind = self._classify(name)
            if kind is None:
                self._error(conn, 4006, 'Invalid stream')
            elif kind == 'private':
                private.append(name)
            else:
                public.append(name)
        limit = self._max_streams
        if limit is not None:
            new = [name for name in dict.fromkeys(public + private) if name not in conn.subs]
            if new and len(conn.subs) + len(new) > limit:
                self._streams_refused += 1
                self._error(conn, STREAM_LIMIT_CODE,
                            f'Too many streams: at most {limit} per connection (max_streams_per_connection); '
                            f'{len(conn.subs)} subscribed, {len(new)} more requested, none subscribed')
                return
        for name in public:
            self._subscribe(conn, name)
        if private:
            try:
                api_key = self.account.authorize_ws(request.get('signature'))
            except SimAuthError as exc:
                self._error(conn, exc.code, exc.message)
                return
            for name in private:
                self._subscribe(conn, name)
                conn.private[name] = api_key
                for data in self.account.snapshot_frames(api_key, name):
                    conn.write(wire.ws_text_frame(wire.encode_envelope(name, data)))

    def _subscribe(self, conn: _Conn, name: str) -> None:
        model = self.model
        channel, _, rest = name.partition('.')
        if channel == 'kline':
            interval, _, symbol = rest.partition('.')
            model.watch_kline(symbol, interval)
        elif channel == 'depth' and not model.has_symbol(rest):
            window, _, symbol = rest.partition('.')
            model.watch_depth_window(symbol, int(window[:-2]))
        conn.subs.add(name)
        self._index.setdefault(name, set()).add(conn)

    def _classify(self, name: str) -> Optional[str]:
        """``public``, ``private`` or None (invalid) for a stream name."""
        model = self.model
        if name == 'liquidation':
            return 'public'
        channel, _, rest = name.partition('.')
        if channel in ('bookTicker', 'trade', 'ticker'):
            return 'public' if model.has_symbol(rest) else None
        if channel == 'depth':
            if model.has_symbol(rest):
                return 'public'
            window, _, symbol = rest.partition('.')
            ok = window in tuple(f'{w}ms' for w in DEPTH_WINDOWS_MS) and model.has_symbol(symbol)
            return 'public' if ok else None
        if channel == 'kline':
            interval, _, symbol = rest.partition('.')
            return 'public' if interval in KLINE_INTERVALS and model.has_symbol(symbol) else None
        if channel in ('markPrice', 'openInterest'):
            return 'public' if model.has_symbol(rest) and model.is_perp(rest) else None
        if channel == 'account':
            base, _, symbol = rest.partition('.')
            if base not in _PRIVATE_BASES:
                return None
            if symbol and (base == 'balanceUpdate' or not model.has_symbol(symbol)):
                return None
            return 'private'
        return None

    # ---------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        path = request.path
        if not path.startswith('/_sim/'):
            if path.startswith(_REST_PREFIXES):
                self._rest_requests += 1
            fault = self._faults.take_http_fault(path)
            if fault is not None:
                headers = None
                if fault.status == 429:
                    self._rest_429 += 1
                    headers = {'Retry-After': str(fault.retry_after)}
                return web.Response(body=http_error_body(fault.status), status=fault.status, headers=headers,
                                    content_type='application/json', charset='utf-8')
            # An injected fault answers first; then the per-client bucket, then the history budget.
            # A request refused by one limit spends nothing of the next.
            retry_after = None
            if self.rest_limit is not None and path.startswith(_PUBLIC_PREFIX) \
                    and path not in AccountService.SIGNED_API_PATHS:
                retry_after = self.rest_limit.take(request.remote or '?')
            if retry_after is None and self.history_limit is not None:
                retry_after = self.history_limit.take(path)
            if retry_after is not None:
                self._rest_429 += 1
                return web.Response(body=http_error_body(429), status=429, headers={'Retry-After': str(retry_after)},
                                    content_type='application/json', charset='utf-8')
            if request.headers.get('Upgrade', '').lower() != 'websocket':
                delay = self._faults.take_delay(path)
                if delay:
                    await asyncio.sleep(delay)
        try:
            response = await handler(request)
            if self._faults.damages(path) and response.status == 200 and isinstance(response, web.Response):
                body = json.loads(response.body)
                if self._faults.damage_answer(path, body):
                    response.body = json.dumps(body, separators=(',', ':')).encode()
            return response
        except _ApiError as exc:
            return _json({'code': exc.code, 'message': exc.message}, status=exc.status)
        except web.HTTPNotFound:
            return _json({'code': 'RESOURCE_NOT_FOUND', 'message': 'Not found'}, status=404)
        except web.HTTPMethodNotAllowed as exc:
            return _json({'code': 'INVALID_CLIENT_REQUEST', 'message': f'Method {request.method} not allowed'},
                         status=405, headers={'Allow': ', '.join(sorted(exc.allowed_methods))})
        finally:
            self._pump()

    def _add_routes(self, app: web.Application) -> None:
        get = app.router.add_get
        get('/', self._root)
        get('/api/v1/markets', self._markets)
        get('/api/v1/market', self._market)
        get('/api/v1/assets', self._assets)
        get('/api/v1/securities', self._securities)
        get('/api/v1/ticker', self._ticker)
        get('/api/v1/tickers', self._tickers)
        get('/api/v1/depth', self._depth)
        get('/api/v1/trades', self._trades)
        get('/api/v1/trades/history', self._trades_history)
        get('/api/v1/klines', self._klines)
        get('/api/v1/markPrices', self._mark_prices)
        get('/api/v1/fundingRates', self._funding_rates)
        get('/api/v1/openInterest', self._open_interest)
        get('/api/v1/status', self._status)
        get('/api/v1/ping', self._ping)
        get('/api/v1/time', self._time)
        get('/_sim/book', self._sim_book)
        get('/_sim/trades', self._sim_trades)
        app.router.add_post('/_sim/pause', self._sim_pause)
        app.router.add_post('/_sim/resume', self._sim_resume)
        app.router.add_post('/_sim/faults', self._sim_faults)
        app.router.add_post('/_sim/list', self._sim_list)
        app.router.add_post('/_sim/delist', self._sim_delist)
        get('/_sim/stats', self._sim_stats)

    def _symbol(self, request: web.Request, *, required: bool = True) -> Optional[str]:
        symbol = request.query.get('symbol')
        if symbol is None:
            if required:
                raise _ApiError(400, 'INVALID_CLIENT_REQUEST', 'Missing required parameter symbol')
            return None
        if not self.model.has_symbol(symbol):
            raise _ApiError(400, 'INVALID_SYMBOL', 'Invalid symbol')
        return symbol

    # ---------------------------------------------------------------- public REST

    async def _markets(self, request: web.Request) -> web.Response:
        wanted = request.query.getall('marketType', [])
        for value in wanted:
            if value not in _MARKET_TYPES:
                raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'failed to parse parameter marketType: {value}')
        types = set(wanted) if wanted else {'SPOT', 'PERP'}
        return _json([m for m in self.model.markets() if m['marketType'] in types])

    async def _market(self, request: web.Request) -> web.Response:
        return _json(self.model.market(self._symbol(request)))

    async def _assets(self, request: web.Request) -> web.Response:
        return _json(asset_objects(self.model.markets()))

    async def _securities(self, request: web.Request) -> web.Response:
        return _json(security_objects(self.model.markets()))

    def _window(self, request: web.Request) -> int:
        interval = request.query.get('interval', '1d')
        if interval not in ('1d', '1w'):
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'failed to parse parameter interval: {interval}')
        return DAY_US if interval == '1d' else 7 * DAY_US

    async def _ticker(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        return _json(wire.ticker_rest(symbol, self.model.ticker_stats(symbol, self._window(request))))

    async def _tickers(self, request: web.Request) -> web.Response:
        window = self._window(request)
        model = self.model
        return _json([wire.ticker_rest(s, model.ticker_stats(s, window)) for s in model.symbols])

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        limit = _int_param(request, 'limit', 1000, low=1)
        if limit not in _DEPTH_LIMITS:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'limit must be one of {_DEPTH_LIMITS}')
        body = wire.depth_rest(self.model.book_snapshot(symbol, limit))
        if self._faults.take_corrupt_snapshot():
            body['lastUpdateId'] = str(CORRUPT_SNAPSHOT_ID)
        return _json(body)

    async def _trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        limit = _int_param(request, 'limit', 100, low=1, high=1000)
        return _json([wire.trade_rest(r) for r in self.model.recent_trades(symbol, limit)])

    async def _trades_history(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        limit = _int_param(request, 'limit', 100, low=1, high=1000)
        offset = _int_param(request, 'offset', 0, low=0)
        return _json([wire.trade_rest(r) for r in self.model.recent_trades(symbol, limit, offset)])

    async def _klines(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        interval = request.query.get('interval')
        if interval not in KLINE_INTERVALS:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'failed to parse parameter interval: {interval}')
        start = _int_param(request, 'startTime', None)
        if start is None:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', 'Missing required parameter startTime')
        end = _int_param(request, 'endTime', self._now_us() // 1_000_000 + 1)
        price_type = request.query.get('priceType', 'Last')
        if price_type not in ('Last', 'Mark', 'Index'):
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'failed to parse parameter priceType: {price_type}')
        rows = self.model.kline_rows(symbol, interval, start, end, price_type)
        return _json([wire.kline_rest(row) for row in rows])

    async def _mark_prices(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request, required=False)
        market_type = request.query.get('marketType', 'PERP')
        if market_type not in _MARKET_TYPES:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', f'failed to parse parameter marketType: {market_type}')
        model = self.model
        out = []
        for s in ([symbol] if symbol else model.symbols):
            if model.market(s)['marketType'] != market_type:
                continue
            if model.is_perp(s):
                out.append(wire.mark_price_rest(s, model.mark_price(s), model.index_price(s), model.funding_rate(s),
                                                 model.next_funding_ms(s)))
            else:
                mid = model.mark_price(s)
                out.append({'symbol': s, 'markPrice': wire.rstr(mid), 'indexPrice': wire.rstr(mid)})
        return _json(out)

    async def _funding_rates(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        limit = _int_param(request, 'limit', 100, low=1, high=10000)
        offset = _int_param(request, 'offset', 0, low=0)
        history = self.model.funding_history(symbol) if self.model.is_perp(symbol) else []
        page = history[offset:offset + limit]
        total = len(history)
        headers = {'X-PAGE-COUNT': str(max(1, -(-total // limit))), 'X-CURRENT-PAGE': str(offset // limit + 1),
                   'X-PAGE-SIZE': str(limit), 'X-TOTAL': str(total)}
        return _json([wire.funding_rate_rest(symbol, end, rate) for end, rate in page], headers=headers)

    async def _open_interest(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request, required=False)
        model = self.model
        now = self._now_us()
        chosen = [symbol] if symbol else [s for s in model.symbols if model.is_perp(s)]
        return _json([wire.open_interest_rest(s, model.open_interest(s), now) for s in chosen])

    async def _status(self, request: web.Request) -> web.Response:
        return _json({'message': None, 'status': 'Ok'})

    async def _ping(self, request: web.Request) -> web.Response:
        return _text('pong')

    async def _time(self, request: web.Request) -> web.Response:
        return _text(str(self._now_ms()))

    # ---------------------------------------------------------------- truth and control

    async def _sim_book(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        sequence = _int_param(request, 'sequence', None)
        try:
            return _json(self.book(symbol, sequence))
        except ValueError as exc:
            raise _ApiError(404, 'RESOURCE_NOT_FOUND', str(exc)) from None

    async def _sim_trades(self, request: web.Request) -> web.Response:
        return _json(self.trades(self._symbol(request)))

    async def _sim_pause(self, request: web.Request) -> web.Response:
        self.pause()
        return _json({'paused': True})

    async def _sim_resume(self, request: web.Request) -> web.Response:
        self.resume()
        return _json({'paused': False})

    async def _sim_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', 'the body must be JSON') from None
        try:
            normalised = self.inject(body)
        except FaultError as exc:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', str(exc)) from None
        return _json({'ok': True, 'fault': normalised})

    async def _listing_body(self, request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST',
                            'the body must be JSON: {"symbol": "NEWCOIN_USDC"}') from None
        if not isinstance(body, dict) or 'symbol' not in body:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', 'the body must be {"symbol": "<SYMBOL>"}')
        return body['symbol']

    async def _sim_list(self, request: web.Request) -> web.Response:
        symbol = await self._listing_body(request)
        try:
            return _json(self.list_market(symbol))
        except ListingError as exc:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', str(exc)) from None

    async def _sim_delist(self, request: web.Request) -> web.Response:
        symbol = await self._listing_body(request)
        try:
            return _json(self.delist_market(symbol))
        except ListingError as exc:
            raise _ApiError(400, 'INVALID_CLIENT_REQUEST', str(exc)) from None

    async def _sim_stats(self, request: web.Request) -> web.Response:
        return _json(self.stats())
