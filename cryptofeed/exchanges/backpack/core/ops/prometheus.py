"""The feed's metrics and health for Prometheus: a collector, and the ``/metrics`` + ``/healthz`` server.

Use ``BackpackCollector`` when you already run a Prometheus exporter: register it in your
``prometheus_client`` registry and add the feeds to it::

    collector = BackpackCollector()
    collector.add(feed)                      # the label feed="BACKPACK" (or a name you give)
    registry.register(collector)

On every scrape it reads each feed's ``metrics_snapshot()`` and ``health()`` (nothing is kept
between scrapes) and turns them into metric families, every one labelled with ``feed``:

* each counter of the snapshot as ``backpack_<name>_total`` (frames per ``channel``, parse and
  server errors, gaps, resyncs, reconnects, failed or refused connection attempts, REST failures,
  callback errors, ...; a counter the snapshot gains later is exported under its own name);
* per ``symbol``: the book's state, update id, snapshot age and time out of sync, its counters,
  and the trade sequence counters; the router's drops by ``reason``; the REST client's counters;
  the account connection's catch-ups and state;
* gauges: consumer lag, age of the newest frame, uptime, events in the health window by
  ``kind``, and ``backpack_health_status`` (0 healthy, 1 degraded, 2 unhealthy).

Use ``serve_feed(feed, host, port, loop)`` (what a feed does when ``BackpackConfig.metrics_port``
is set) to serve them over HTTP on the feed's event loop: ``GET /metrics`` (the Prometheus text
format, or OpenMetrics when the scraper asks for it) and ``GET /healthz`` (JSON: the worst status
of the feeds, their reasons and the time of the check in ISO 8601; HTTP 200 while every feed is
healthy or degraded, 503 when one is unhealthy). Every feed of a process that names the same
host and port shares one ``MetricsServer`` (port 0: one server on a port the system picks,
``server.port``); the server closes when the last of them is released (``release``).
"""
from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.ops.health import DEGRADED, HEALTHY, UNHEALTHY, iso_utc

__all__ = ['BackpackCollector', 'MetricsServer', 'HEALTH_VALUES', 'serve_feed', 'release_feed', 'health_body']

LOG = log.get()

HEALTH_VALUES = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
"""``backpack_health_status`` for each status."""

# Snapshot counter -> (metric name without ``_total``, help). Counters not listed here are exported
# as ``backpack_<key>_total`` (see ``_GENERIC_SKIP``).
_COUNTERS: Dict[str, Tuple[str, str]] = {
    'dropped': ('backpack_dropped_frames', 'Frames dropped: unreadable, invalid, unknown stream or symbol, '
                                           'error frames'),
    'parse_errors': ('backpack_parse_errors', 'Frames and REST rows that could not be read'),
    'server_errors': ('backpack_server_errors', 'Error frames and error answers from the exchange'),
    'unknown_streams': ('backpack_unknown_streams', 'Frames of a stream the feed did not subscribe to'),
    'reconnects': ('backpack_reconnects', 'WebSocket reconnects'),
    'gaps': ('backpack_sequence_gaps', 'Breaks in a depth stream\'s update ids'),
    'resyncs': ('backpack_book_resyncs', 'Books rebuilt from a REST snapshot after a break'),
    'backfilled_trades': ('backpack_backfilled_trades', 'Trades recovered from REST after a gap'),
    'trade_gaps_unrecovered': ('backpack_trade_gaps_unrecovered', 'Trade-id gaps that REST could not fill'),
    'rest_failures': ('backpack_rest_failures', 'Failed REST calls of the feed (book snapshots, trade backfill, '
                                                'account catch-up, balance reconciliation)'),
    'auth_failures': ('backpack_auth_failures', 'Signatures the exchange refused'),
    'backfilled_fills': ('backpack_backfilled_fills', 'Fills recovered from REST after a reconnect'),
    'reconciliation_corrections': ('backpack_reconciliation_corrections',
                                   'Balances corrected by the REST reconciliation'),
    'callback_errors': ('backpack_callback_errors', 'Exceptions raised by user callbacks'),
    'connect_failures': ('backpack_connect_failures', 'Connection attempts that failed or were refused before '
                                                      'the connection was established'),
}
# Snapshot gauges in seconds -> (metric name, help).
_GAUGES: Dict[str, Tuple[str, str]] = {
    'consumer_lag_s': ('backpack_consumer_lag_seconds', 'Receipt time minus exchange time of the newest event '
                                                        'delivered to callbacks'),
    'last_message_age_s': ('backpack_last_message_age_seconds', 'Seconds since the newest frame was received'),
    'last_private_message_age_s': ('backpack_last_private_message_age_seconds',
                                   'Seconds since the newest frame of the private connection'),
    'uptime_s': ('backpack_uptime_seconds', 'Seconds since the feed started'),
}
# Top-level keys that are not counters, or are exported otherwise.
_GENERIC_SKIP = frozenset({'messages_total', 'taken_at', 'window_s'})
_BOOK_GAUGES = frozenset({'last_update_id'})
_REST_COUNTERS = ('requests', 'retries', 'failures', 'breaker_opens', 'fail_fast')


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Families:
    """Metric families by name, created on first use; one family holds the samples of every feed."""

    def __init__(self):
        self._families: Dict[str, Any] = {}

    def _family(self, kind, name: str, help_text: str, labels: Sequence[str]):
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = kind(name, help_text, labels=list(labels))
        return family

    def counter(self, name: str, help_text: str, labels: Sequence[str], values: Sequence[str], value) -> None:
        self._family(CounterMetricFamily, name, help_text, labels).add_metric(list(values), value)

    def gauge(self, name: str, help_text: str, labels: Sequence[str], values: Sequence[str], value) -> None:
        self._family(GaugeMetricFamily, name, help_text, labels).add_metric(list(values), value)

    def __iter__(self):
        return iter(self._families.values())


class BackpackCollector:
    """A ``prometheus_client`` collector of one or more feeds (see the module docstring).

    A feed is anything with ``metrics_snapshot()`` and ``health()`` (``BackpackFeed``, the ccxt
    feed). Each gets a distinct ``feed`` label: the name given to ``add``, else the feed's ``id``,
    made unique with ``-2``, ``-3``, ... when several feeds share it.
    """

    def __init__(self, feeds: Sequence[Any] = ()):
        self._feeds: Dict[str, Any] = {}
        for feed in feeds:
            self.add(feed)

    def add(self, feed: Any, name: Optional[str] = None) -> str:
        """Collect ``feed`` from now on; returns its ``feed`` label."""
        for label, known in self._feeds.items():
            if known is feed:
                return label
        if name is None:
            base = str(getattr(feed, 'id', 'feed'))
            name, n = base, 1
            while name in self._feeds:
                n += 1
                name = f'{base}-{n}'
        elif name in self._feeds:
            raise ValueError(f'a feed is already collected as {name!r}; give another name')
        self._feeds[name] = feed
        return name

    def remove(self, feed: Any) -> None:
        """Stop collecting ``feed`` (nothing happens when it is not collected)."""
        for label, known in list(self._feeds.items()):
            if known is feed:
                del self._feeds[label]

    @property
    def feeds(self) -> Dict[str, Any]:
        """``feed`` label -> feed."""
        return dict(self._feeds)

    def describe(self) -> List[Any]:
        # The families depend on the feeds collected at scrape time: nothing to declare up front
        # (a registry then does not call collect() when this collector is registered).
        return []

    def collect(self) -> Iterator[Any]:
        families = _Families()
        for label, feed in self._feeds.items():
            snapshot = feed.metrics_snapshot()
            report = feed.health()
            _add_feed(families, label, snapshot, report)
        return iter(families)

    def health(self) -> Tuple[int, Dict[str, Any]]:
        """``(HTTP status, JSON body)`` of ``/healthz`` for the feeds collected now."""
        return health_body({label: feed.health() for label, feed in self._feeds.items()})


def health_body(reports: Mapping[str, Any]) -> Tuple[int, Dict[str, Any]]:
    """``/healthz`` from ``feed label -> BackpackHealthReport``: 503 when one is unhealthy, else 200.

    The body: ``status`` (the worst), ``reasons`` (each prefixed with its feed), ``checked_at`` (ISO
    8601, UTC) and, under ``feeds``, each feed's own status, reasons and time of check.
    """
    worst = HEALTHY
    reasons: List[str] = []
    feeds: Dict[str, Any] = {}
    latest = None
    for label, report in reports.items():
        if HEALTH_VALUES[report.status] > HEALTH_VALUES[worst]:
            worst = report.status
        reasons.extend(f'{label}: {reason}' for reason in report.reasons)
        feeds[label] = {'status': report.status, 'reasons': list(report.reasons),
                        'checked_at': iso_utc(report.checked_at)}
        latest = report.checked_at if latest is None else max(latest, report.checked_at)
    body = {'status': worst, 'reasons': reasons,
            'checked_at': iso_utc(latest if latest is not None else time.time()),
            'feeds': feeds}
    return (503 if worst == UNHEALTHY else 200), body


def _add_feed(families: _Families, feed: str, snap: Mapping[str, Any], report: Any) -> None:
    """The samples of one feed's snapshot and health report."""
    f = ('feed',)
    values = (feed,)
    for channel, count in sorted(snap.get('messages', {}).items()):
        families.counter('backpack_messages', 'Frames received, by channel (stream kind for the market '
                                              'streams without a channel of their own)',
                         ('feed', 'channel'), (feed, channel), count)
    for key, value in snap.items():
        if key in _COUNTERS:
            name, help_text = _COUNTERS[key]
            families.counter(name, help_text, f, values, value)
        elif key in _GAUGES:
            if value is not None:
                name, help_text = _GAUGES[key]
                families.gauge(name, help_text, f, values, value)
        elif key not in _GENERIC_SKIP and _is_count(value):
            families.counter(f'backpack_{key}', f"metrics_snapshot()['{key}']", f, values, value)
    for kind, count in sorted(snap.get('recent_events', {}).items()):
        families.gauge('backpack_recent_events', f"Events in the health window ({snap.get('window_s', 0):g} s), "
                                                 f"by kind", ('feed', 'kind'), (feed, kind), count)
    families.gauge('backpack_connections_given_up', 'Connections that exhausted their retries', f, values,
                   len(snap.get('connections_given_up', ())))
    families.gauge('backpack_auth_error', '1 while the private channels are down because the exchange refuses '
                                          'the signature', f, values, 1 if snap.get('auth_error') else 0)
    _add_books(families, feed, snap)
    for symbol, counters in sorted(snap.get('trades', {}).items()):
        for key, value in counters.items():
            if key == 'last_id':
                if value is not None:
                    families.gauge('backpack_trade_last_id', 'Id of the newest trade delivered',
                                   ('feed', 'symbol'), (feed, symbol), value)
            elif _is_count(value):
                families.counter(f'backpack_trade_{key}', f'Trade sequence counter {key!r}, per symbol',
                                 ('feed', 'symbol'), (feed, symbol), value)
    for key, connection in (('drops', 'public'), ('drops_private', 'private')):
        for reason, count in sorted(snap.get(key, {}).items()):
            families.counter('backpack_router_drops', 'Frames dropped by the router, by connection and reason',
                             ('feed', 'connection', 'reason'), (feed, connection, reason), count)
    _add_rest(families, feed, snap.get('rest'))
    _add_account(families, feed, snap.get('account'))
    families.gauge('backpack_health_status', 'Health of the feed: 0 healthy, 1 degraded, 2 unhealthy', f, values,
                   HEALTH_VALUES[report.status])
    families.gauge('backpack_health_reasons', 'Reasons the feed is not healthy', f, values, len(report.reasons))


def _add_books(families: _Families, feed: str, snap: Mapping[str, Any]) -> None:
    labels = ('feed', 'symbol')
    ages = snap.get('snapshot_age_s', {})
    unsynced = snap.get('out_of_sync_s', {})
    for symbol, book in sorted(snap.get('books', {}).items()):
        values = (feed, symbol)
        families.gauge('backpack_book_synced', '1 while the book is in sync (snapshot applied, deltas in order)',
                       labels, values, 1 if book.get('state') == 'synced' else 0)
        families.gauge('backpack_book_out_of_sync_seconds', 'Seconds the book has been without a snapshot '
                                                            '(0 while in sync)', labels, values,
                       unsynced.get(symbol, 0.0))
        age = ages.get(symbol)
        if age is not None:
            families.gauge('backpack_book_snapshot_age_seconds', 'Seconds since the book\'s last REST snapshot',
                           labels, values, age)
        for key, value in book.items():
            if key in _BOOK_GAUGES:
                if value is not None:
                    families.gauge(f'backpack_book_{key}', 'Update id of the book (the depth stream\'s u)',
                                   labels, values, value)
            elif _is_count(value):
                families.counter(f'backpack_book_{key}', f'Book counter {key!r}, per symbol', labels, values, value)


def _add_rest(families: _Families, feed: str, rest: Optional[Mapping[str, Any]]) -> None:
    if not rest:
        return
    f, values = ('feed',), (feed,)
    for key in _REST_COUNTERS:
        if _is_count(rest.get(key)):
            families.counter(f'backpack_rest_{key}', f'REST client: {key.replace("_", " ")}', f, values, rest[key])
    for status, count in sorted(rest.get('failures_by_status', {}).items()):
        families.counter('backpack_rest_failures_by_status', 'REST client: failed attempts by HTTP status '
                                                             '(or transport error)',
                         ('feed', 'status'), (feed, str(status)), count)
    if _is_number(rest.get('last_latency_s')):
        families.gauge('backpack_rest_last_latency_seconds', 'REST client: latency of the newest request', f,
                       values, rest['last_latency_s'])


def _add_account(families: _Families, feed: str, account: Optional[Mapping[str, Any]]) -> None:
    if not account:
        return
    f, values = ('feed',), (feed,)
    families.counter('backpack_account_catchups', 'Signed subscribes of the private connection, each followed '
                                                  'by a REST catch-up', f, values, account.get('subscribes', 0))
    families.counter('backpack_account_duplicate_fills', 'Fills seen again (live and history) and not '
                                                         'delivered twice', f, values,
                     account.get('duplicate_fills', 0))
    for key, help_text in (('open_orders', 'Open orders tracked'), ('positions', 'Open positions tracked'),
                           ('fills_seen', 'Fills remembered for de-duplication')):
        if _is_count(account.get(key)):
            families.gauge(f'backpack_account_{key}', help_text, f, values, account[key])
    if _is_number(account.get('clock_offset_ms')):
        families.gauge('backpack_account_clock_offset_seconds', 'Exchange clock minus this machine\'s, as '
                                                                'used for signing', f, values,
                       account['clock_offset_ms'] / 1000)


# ------------------------------------------------------------------------------------------------
# The HTTP server
# ------------------------------------------------------------------------------------------------

class MetricsServer:
    """``/metrics`` and ``/healthz`` for the feeds of one process on one host:port (module docstring).

    The listening socket is bound when the server is made (so the port, ``port``, is known and a
    port in use fails the feed's start at once); aiohttp serves it from a task of the loop,
    cancelled and cleaned up by ``close()``.
    """

    def __init__(self, host: str, port: int, loop: asyncio.AbstractEventLoop):
        self.host = host
        self.requested_port = port
        self.loop = loop
        self.collector = BackpackCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._runner: Optional[web.AppRunner] = None
        self._task = loop.create_task(self._serve(), name=f'backpack.metrics.{host}:{self.port}')

    @property
    def url(self) -> str:
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'http://{host}:{self.port}'

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get('/metrics', self._metrics)
        app.router.add_get('/healthz', self._healthz)
        runner = self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        try:
            await runner.setup()
            await web.SockSite(runner, self._sock).start()
        except Exception:
            LOG.exception('cannot serve metrics at %s', self.url)
            raise
        LOG.info('serving Prometheus metrics at %s/metrics and health at %s/healthz', self.url, self.url)
        await asyncio.Event().wait()  # until close() cancels it

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get('Accept', ''))
        return web.Response(body=encoder(self.registry), headers={'Content-Type': content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        status, body = self.collector.health()
        return web.Response(text=json.dumps(body), status=status, content_type='application/json')

    async def close(self) -> None:
        """Stop serving: cancel the serving task, close the site and the socket."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:  # it failed to start: logged then
            pass
        if self._runner is not None:
            await self._runner.cleanup()
        self._sock.close()
        LOG.info('metrics server at %s closed', self.url)


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f'metrics_host {host!r} cannot be resolved ({exc.strerror}); give an address such as '
                         f'127.0.0.1 or 0.0.0.0') from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f'cannot serve metrics on {host}:{port}: {exc.strerror}; choose another '
                                 f'metrics_port (0 lets the system pick one)') from None
    sock.setblocking(False)
    return sock


# (host, requested port) -> the server every feed naming them shares.
_SERVERS: Dict[Tuple[str, int], MetricsServer] = {}


def serve_feed(feed: Any, host: str, port: int, loop: asyncio.AbstractEventLoop,
               name: Optional[str] = None) -> MetricsServer:
    """Serve ``feed``'s metrics on ``host:port`` (see the module docstring); returns the server.

    A server already serving that host and port for other feeds of this process is shared; one
    serving it from another, still running, event loop is an error.
    """
    key = (host, int(port))
    server = _SERVERS.get(key)
    if server is not None and server.loop is not loop:
        if not server.loop.is_closed() and server.loop.is_running():
            raise RuntimeError(f'metrics on {host}:{port} are served from another event loop; run the feeds '
                               f'that share metrics_port on one loop, or give them different ports')
        _SERVERS.pop(key, None)
        server = None
    if server is None:
        server = _SERVERS[key] = MetricsServer(host, port, loop)
    server.collector.add(feed, name)
    return server


async def release_feed(feed: Any, server: Optional[MetricsServer]) -> None:
    """``feed`` stops: leave ``server``; the last feed to leave closes it."""
    if server is None:
        return
    server.collector.remove(feed)
    if server.collector.feeds:
        return
    key = (server.host, server.requested_port)
    if _SERVERS.get(key) is server:
        del _SERVERS[key]
    await server.close()
