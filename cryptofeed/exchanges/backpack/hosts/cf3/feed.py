"""``BackpackFeed`` on cryptofeed 3.x: the shared feed plus 3.x's lifecycle.

The lifecycle is ``cf3/lifecycle.py``: 3.x's task-group shape, with each connection under
``BackpackConnectionHandler`` (capped jittered backoff, unlimited retries by default, contained
callback errors, reconnects counted) rather than 3's own handler, whose delay doubles without
bound. cryptofeed 3 keeps callbacks only for its market channels; the account channels
(``ORDER_INFO``, ``FILLS``, ``POSITIONS``, ``BALANCES``) get their defaults here, and deliver
this package's account types. A session recorded with ``FeedHandler(record=...)`` plays back
through ``cryptofeed.capture.playback`` (frames from the capture's streams, REST answers from
its HTTP stream), self-contained: when the configured ``ws_url`` / ``rest_url`` are not the ones
the capture was made against, the captured ones are used (logged when the playback starts).
Everything else is ``hosts/feed.py``.
"""
from __future__ import annotations

from cryptofeed.callback import Callback
from cryptofeed.feed import Feed

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import ACCOUNT_CHANNELS
from cryptofeed.exchanges.backpack.hosts.cf3.lifecycle import Cf3Lifecycle
from cryptofeed.exchanges.backpack.hosts.feed import DEPTH_WINDOWS, BackpackFeedBase
from cryptofeed.exchanges.backpack.hosts.recorded_rest import RecordedRestClient, recorded_endpoint

__all__ = ['BackpackFeed', 'DEPTH_WINDOWS']

LOG = log.get()


class BackpackFeed(BackpackFeedBase, Cf3Lifecycle, Feed):
    __doc__ = BackpackFeedBase.__doc__

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        for channel in ACCOUNT_CHANNELS:
            self.callbacks.setdefault(channel, [Callback(None)])

    def connect(self) -> list:
        return self._connections()

    def _start(self, loop) -> list:
        if '_wrap_connection' in self.__dict__:  # cryptofeed.capture's playback prepared this feed
            # REST answers come from the capture (through the http_conn playback put in place);
            # channels do in line what they otherwise do in background tasks, in recorded order.
            ws_urls, rest_urls = _captured_urls(self._wrap_connection, self.id)
            ws_url, level, message = recorded_endpoint('ws_url', self.backpack_config.ws_url, ws_urls)
            LOG.log(level, '%s: %s', self.id, message)
            if ws_url != self.backpack_config.ws_url:   # connections are matched to the capture by address
                self.backpack_config = self.backpack_config.model_copy(update={'ws_url': ws_url})
            client = RecordedRestClient(self.backpack_config.rest_url, self.http_conn.read, recorded_urls=rest_urls,
                                        conn_id=f'{self.id}.http')
            LOG.log(client.playback_note[0], '%s: %s', self.id, client.playback_note[1])
            self._ctx.replay(client)
        return super()._start(loop)

    def _launch(self, handler) -> None:
        """A connection opened while running: a task of the feed's connection task group."""
        if self._conn_tg is None or self._stop_requested.is_set() or self._handler_stop.is_set():
            self.connection_handlers.remove(handler)  # stopping: the stop-watch has its list
            return
        self._conn_tg.create_task(handler.run(), name=f'feed.{self.id}.conn.{handler.conn.id}')

    async def _halt_line(self, error) -> None:
        """Stop this feed the way 3.x stops a feed whose backend failed; ``run`` then raises ``error``
        (the FeedHandler's ``on_feed_error`` decides what that means for the other feeds)."""
        self._fatal_error = error
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def shutdown(self):
        """Stop every connection, cancel every task this feed started, close our sessions, then
        let cryptofeed stop the backends; returns the backends it released."""
        await self._stop_connections()
        return await super().shutdown()


def _captured_urls(wrap_connection, exchange: str):
    """(WebSocket addresses, REST URLs) of ``exchange`` in the capture being played back, each None
    when the playback does not say (``capture`` is the parsed capture of the replayer whose
    ``wrap_connection`` playback put on the feed)."""
    capture = getattr(getattr(wrap_connection, '__self__', None), 'capture', None)
    if capture is None:
        return None, None
    ws = [s.address for s in getattr(capture, 'ws', ()) if s.exchange == exchange and isinstance(s.address, str)]
    rest = [request[2] for s in getattr(capture, 'http', ()) if s.exchange == exchange for request in s.requests]
    return ws, rest
