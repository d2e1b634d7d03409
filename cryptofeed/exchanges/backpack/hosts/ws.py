"""WebSocket transport for Backpack under cryptofeed's connection machinery, on every line.

``BackpackWSConn`` is cryptofeed's ``WSAsyncConn`` with Backpack's needs: ``ws://`` for
loopback hosts (the simulator), a CA bundle, an HTTP-CONNECT or SOCKS5 proxy, and keepalive
pings with a pong timeout. ``BackpackConnectionHandler`` is cryptofeed's ``ConnectionHandler``
with a capped, jittered reconnect backoff (the base class doubles its delay without bound),
unlimited retries by default, and handles on every task it starts so shutdown can cancel them.

Liveness: the client sends a protocol ping every ``ping_interval`` seconds (default 10) and
drops the connection when its pong has not arrived ``ping_timeout`` seconds later (default 10);
the close handshake with a dead peer is abandoned after ``CLOSE_TIMEOUT_S`` (1 s). So a silent
dead connection (no data, no pong) is detected within ``ping_interval + ping_timeout + 1`` seconds
(21 s by default) and reconnected after the backoff. A connection that
answers pings but delivers no data for cryptofeed's ``timeout`` (the feed argument, default
120 s) is restarted by cryptofeed's own watcher.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterator, Optional
from urllib.parse import urlsplit

from cryptofeed.connection import AsyncConnection, WSAsyncConn
from cryptofeed.connection_handler import ConnectionHandler
from cryptofeed.exceptions import ExhaustedRetries

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays
from cryptofeed.exchanges.backpack.core.errors import BackpackError
from cryptofeed.exchanges.backpack.core.transport.net import is_loopback_host

__all__ = ['BackpackWSConn', 'BackpackConnectionHandler', 'MAX_FRAME_BYTES', 'MAX_QUEUED_FRAMES']

LOG = log.get()

#: Largest WebSocket frame accepted; Backpack's real frames are a few kB (depth deltas of a busy book).
MAX_FRAME_BYTES = 4 * 1024 * 1024
#: Frames received but not yet handled before websockets stops reading the socket (high-water mark).
MAX_QUEUED_FRAMES = 4096
CLOSE_TIMEOUT_S = 1.0


class BackpackWSConn(WSAsyncConn):
    """A cryptofeed WebSocket connection that also accepts ``ws://`` on loopback."""

    def __init__(self, address: str, conn_id: str, *, subscription: dict, ssl=None, proxy: Optional[str] = None,
                 ping_interval: float = 10.0, ping_timeout: float = 10.0, open_timeout: float = 10.0,
                 max_frame_bytes: int = MAX_FRAME_BYTES, max_queue: int = MAX_QUEUED_FRAMES):
        self.conn = None  # read by the base class's __del__, even when validation below fails
        if not (address.startswith('wss://') or (address.startswith('ws://') and is_loopback_host(urlsplit(address).hostname))):
            raise ValueError(f'Backpack WebSocket address must be wss:// (ws:// only on loopback), got {address!r}')
        options: dict[str, Any] = {
            'ping_interval': ping_interval, 'ping_timeout': ping_timeout, 'open_timeout': open_timeout,
            # Bounded memory: an oversized frame closes the connection (1009, then a reconnect), and
            # past max_queue unread frames websockets stops reading the socket, so a slow consumer
            # pushes back on TCP instead of growing the heap (the lag shows in health()).
            'max_size': max_frame_bytes, 'max_queue': max_queue, 'compression': None,
            # A dead peer cannot answer the close handshake: give up on it after a second.
            'close_timeout': CLOSE_TIMEOUT_S,
            # An explicit proxy (or None) rather than websockets' own environment lookup: the
            # environment fallback is resolved once, in BackpackConfig, for REST and WS alike.
            'proxy': proxy,
        }
        if address.startswith('wss://') and ssl is not None:
            options['ssl'] = ssl
        self.address = address
        AsyncConnection.__init__(self, f'{conn_id}.ws.{self.conn_count}', subscription=subscription)
        self.ws_kwargs = options
        self.streams: list = []
        #: Called as ``on_close(closed_by_exchange)`` on every close of an open connection.
        self.on_close: Optional[Callable[[bool], None]] = None

    async def close(self):
        if self.conn is not None and self.on_close is not None:
            self.on_close(getattr(getattr(self.conn, 'protocol', None), 'close_rcvd', None) is not None)
        await super().close()


class BackpackConnectionHandler(ConnectionHandler):
    """``ConnectionHandler`` with capped jittered backoff, owned tasks and contained callback errors.

    Hooks, each optional: ``on_reconnect()`` when a connection attempt follows a failure or a
    dropped connection; ``on_connect_failure()`` when an attempt fails before the connection is
    established; ``on_give_up(conn_id)`` when ``retries`` are exhausted (logged; the handler then
    stops instead of raising into a task nobody awaits); ``on_handler_error(exc)`` when handling
    one frame raised (in practice: a user callback). With that hook the frame is reported and
    the next one read; without it the exception drops the connection, as in cryptofeed. A
    ``BackpackError`` always drops it: that is the feed itself refusing the connection.
    """

    def __init__(self, conn: BackpackWSConn, subscribe, handler, authenticate=None, retries: int = -1, *,
                 timeout: float = 120, timeout_interval: float = 30, exceptions=None, log_on_error: bool = False,
                 start_delay: float = 0, backoff_base: float = 0.5, backoff_max: float = 30.0,
                 on_reconnect: Optional[Callable[[], None]] = None,
                 on_connect_failure: Optional[Callable[[], None]] = None,
                 on_give_up: Optional[Callable[[str], None]] = None,
                 on_handler_error: Optional[Callable[[BaseException], None]] = None,
                 delays: Optional[Callable[[], Iterator[float]]] = None):
        # Set here rather than by the base class, whose constructor differs between lines
        # (2.x takes ``authenticate``; 3.0 keepalive hooks this handler does not use).
        self.conn = conn
        self.subscribe = subscribe
        self.handler = handler
        self.authenticate = authenticate
        self.retries = retries
        self.timeout = timeout
        self.timeout_interval = timeout_interval
        self.exceptions = exceptions
        self.log_on_error = log_on_error
        self.start_delay = start_delay
        self.running = True
        self._delays = delays or (lambda: backoff_delays(backoff_base, backoff_max))
        self.on_reconnect = on_reconnect
        self.on_connect_failure = on_connect_failure
        self.on_give_up = on_give_up
        self.on_handler_error = on_handler_error
        self.tasks: set[asyncio.Task] = set()
        self.connects = 0

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_event_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def start(self, loop: asyncio.AbstractEventLoop):
        """cryptofeed 2.x: run in a task of the loop (``stop()`` cancels it)."""
        task = loop.create_task(self.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self):
        """Connect, subscribe and read until stopped, reconnecting after the backoff
        (cryptofeed 3.0 awaits this in its task group; 2.x's ``start`` spawns it)."""
        await asyncio.sleep(self.start_delay)
        failures = 0
        delays = self._delays()
        while self.running and (self.retries == -1 or failures <= self.retries):
            watcher = None
            established = False
            try:
                async with self.conn.connect() as connection:
                    established = True
                    if self.connects and self.on_reconnect:
                        self.on_reconnect()
                    self.connects += 1
                    if self.authenticate is not None:
                        await self.authenticate(connection)
                    await self.subscribe(connection)
                    failures = 0
                    delays = self._delays()
                    if self.timeout != -1:
                        watcher = self._spawn(self._watcher())
                    await self._handler(connection, self.handler)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.exceptions and any(isinstance(exc, ex) for ex in self.exceptions):
                    raise
                if not self.running:
                    break
                failures += 1
                if not established and self.on_connect_failure:
                    self.on_connect_failure()
                delay = next(delays)
                LOG.warning('%s: connection failed or dropped (%s: %s); reconnecting in %.2f s',
                            self.conn.uuid, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                continue
            finally:
                if watcher is not None:
                    watcher.cancel()
            if not self.running:
                break
            # The stream ended without an exception (closed by the peer or by the watcher).
            delay = next(delays)
            LOG.warning('%s: connection closed; reconnecting in %.2f s', self.conn.uuid, delay)
            await asyncio.sleep(delay)
        if self.running:
            LOG.error('%s: failed to connect after %d attempts (retries=%d) - giving up; this connection\'s '
                      'streams stay down until the feed is restarted', self.conn.uuid, failures, self.retries)
            if self.on_give_up is None:
                raise ExhaustedRetries()
            self.on_give_up(self.conn.uuid)

    async def _handler(self, connection, handler):
        """Read frames and hand each to ``handler``; see the class docstring for its exceptions."""
        on_error = self.on_handler_error
        if on_error is None:
            return await super()._handler(connection, handler)
        async for message in connection.read():
            if not self.running:
                await connection.close()
                return
            try:
                await handler(message, connection, self.conn.last_message)
            except BackpackError:
                raise  # the feed's own verdict on this connection (e.g. a refused private subscribe)
            except Exception as exc:
                on_error(exc)

    async def request_stop(self) -> None:
        """cryptofeed 3.0's name for ``stop``."""
        await self.stop()

    async def stop(self) -> None:
        """Stop reconnecting, close the socket and cancel every task this handler started."""
        self.running = False
        await self.conn.close()
        current = asyncio.current_task()
        pending = [t for t in self.tasks if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
