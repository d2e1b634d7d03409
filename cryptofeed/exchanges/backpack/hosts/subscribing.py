"""The feed's public WebSocket connections and the streams each one carries, while running.

``BackpackSubscribingMixin`` is a part of ``BackpackFeedBase`` (``hosts/feed.py``): it builds the
connections (``streams_per_connection`` streams each, plus the private one), runs the SUBSCRIBE
of every (re)connect, and changes the streams of a running feed:

* ``_open_streams(streams)`` puts new streams on the connections that have room
  (``core/subscriptions.place``) and sends SUBSCRIBE for them alone, so the other streams of the
  connection are not touched (their books keep their sequence, no resync); when no connection
  has room, a new one is opened while running (the line's ``_launch``).
* ``_close_streams(symbols)`` sends UNSUBSCRIBE for the streams of ``symbols`` and closes a
  connection left with none.

Each connection remembers its streams (``conn.streams``), so a reconnect subscribes exactly what
it carries at that moment. A lock per connection keeps a change from interleaving with the
SUBSCRIBE of a (re)connect; a change made while a connection is down is picked up by its next
connect.
"""
from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Iterable, List

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.subscriptions import Stream, place
from cryptofeed.exchanges.backpack.hosts.ws import BackpackWSConn

__all__ = ['BackpackSubscribingMixin', 'SUBSCRIBE_BATCH']

LOG = log.get()

#: Streams per SUBSCRIBE / UNSUBSCRIBE frame.
SUBSCRIBE_BATCH = 50


def _lock(conn) -> asyncio.Lock:
    lock = conn.__dict__.get('_backpack_subscribe_lock')
    if lock is None:
        lock = conn.__dict__['_backpack_subscribe_lock'] = asyncio.Lock()
    return lock


def _live(conn) -> bool:
    """The connection is open and its SUBSCRIBE for this socket has been sent."""
    socket = getattr(conn, 'conn', None)
    return socket is not None and conn.__dict__.get('_backpack_subscribed_on') is socket and conn.is_open


async def _send(conn, method: str, names: List[str]) -> None:
    for start in range(0, len(names), SUBSCRIBE_BATCH):
        await conn.write(json.dumps({'method': method, 'params': names[start:start + SUBSCRIBE_BATCH]}))


async def _send_running(conn, method: str, names: List[str]) -> None:
    """``_send`` on a running connection: if it drops meanwhile, its reconnect subscribes what
    ``conn.streams`` holds by then, so a failed write needs nothing more."""
    try:
        await _send(conn, method, names)
    except Exception as exc:  # noqa: BLE001 - any transport failure; the reconnect takes over
        LOG.info('%s: %s of %d streams not sent (%s: %s); the reconnect subscribes the connection\'s streams',
                 conn.uuid, method, len(names), type(exc).__name__, exc)


class BackpackSubscribingMixin:
    """Connections and subscriptions of ``BackpackFeedBase`` (see the module docstring)."""

    def _public_conn(self, streams: List[Stream]) -> BackpackWSConn:
        cfg = self.backpack_config
        subscription = defaultdict(list)
        for stream in streams:
            subscription[stream.kind].append(stream.symbol)
        conn = BackpackWSConn(cfg.ws_url, self.id, subscription=dict(subscription),
                              ssl=cfg.ssl_context() if cfg.ws_url.startswith('wss://') else None,
                              proxy=cfg.ws_proxy, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
                              max_frame_bytes=self.max_frame_bytes)
        conn.streams = list(streams)
        self._public.append(conn)
        return conn

    def _private_connection(self) -> tuple:
        cfg = self.backpack_config
        conn = BackpackWSConn(cfg.ws_url, f'{self.id}.private', subscription=self._account.subscription(),
                              ssl=cfg.ssl_context() if cfg.ws_url.startswith('wss://') else None,
                              proxy=cfg.ws_proxy, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout)
        conn.on_close = self._account.on_close
        return conn, self._account.subscribe, self._private_router.handle

    def _connections(self) -> list:
        """(connection, subscribe, handler) of every connection known before the feed runs: one
        ``BackpackWSConn`` per ``streams_per_connection`` streams, and the private one when account
        channels are asked (with ``symbols='all'`` both come once the markets are known)."""
        step = self.streams_per_connection
        connections = [(self._public_conn(self._streams[start:start + step]), self.subscribe, self.message_handler)
                       for start in range(0, len(self._streams), step)]
        if self._account is not None and self._selection is None:
            connections.append(self._private_connection())
        return connections

    def _launch_connection(self, conn, subscribe, handler) -> None:
        """Run one more connection on the running feed (unless it is stopping)."""
        if self._closing:
            return
        connection_handler = self._connection_handler(conn, subscribe, handler, getattr(self, 'authenticate', None))
        self.connection_handlers.append(connection_handler)
        self._launch(connection_handler)

    async def subscribe(self, conn: BackpackWSConn):
        """Runs on every (re)connect: reset this connection's books and trade sequences, then
        SUBSCRIBE in batches. Symbols the exchange does not list are left out (logged once)."""
        if getattr(conn, 'streams', None) is None:  # cryptofeed's playback hands its stand-in connection
            await self._subscribe_streams(conn, self._start_replay())
            return
        async with _lock(conn):
            await self._subscribe_streams(conn, conn.streams)
            conn.__dict__['_backpack_subscribed_on'] = conn.conn

    async def _subscribe_streams(self, conn, streams: Iterable[Stream]) -> None:
        known = await self._known_symbols()
        if self._closing:
            return
        names = []
        for stream in list(streams):
            if known is not None and stream.symbol is not None and stream.symbol not in known:
                continue  # not listed: reported once by _known_symbols
            reset = self._on_subscribe.get(stream.kind)
            if reset is not None:
                reset(stream.symbol)
            names.append(stream.name)
        await _send(conn, 'SUBSCRIBE', names)

    async def _open_streams(self, streams: List[Stream]) -> None:
        """Subscribe ``streams`` on a running feed: on connections with room, else on new ones."""
        conns = list(self._public)
        for index, chunk in place(streams, [len(c.streams) for c in conns], self.streams_per_connection):
            if index >= len(conns):
                self._launch_connection(self._public_conn(chunk), self.subscribe, self.message_handler)
                continue
            conn = conns[index]
            async with _lock(conn):
                conn.streams.extend(chunk)
                if _live(conn):
                    for stream in chunk:
                        reset = self._on_subscribe.get(stream.kind)
                        if reset is not None:
                            reset(stream.symbol)
                    await _send_running(conn, 'SUBSCRIBE', [s.name for s in chunk])

    async def _close_streams(self, symbols: set) -> None:
        """UNSUBSCRIBE the streams of ``symbols``; a connection left without streams is closed."""
        for conn in list(self._public):
            async with _lock(conn):
                gone = [s.name for s in conn.streams if s.symbol in symbols]
                if not gone:
                    continue
                conn.streams[:] = [s for s in conn.streams if s.symbol not in symbols]
                if conn.streams and _live(conn):
                    await _send_running(conn, 'UNSUBSCRIBE', gone)
            if not conn.streams:
                self._public.remove(conn)
                for handler in [h for h in self.connection_handlers if h.conn is conn]:
                    self.connection_handlers.remove(handler)
                    await handler.stop()
