"""``BackpackFeed`` on cryptofeed 2.x: the shared feed plus 2.x's lifecycle.

cryptofeed 2.x starts a feed with ``start(loop)`` (``cf2/lifecycle.py``), wants ``connect()``
to give (connection, subscribe, handler, authenticate) and stops it with ``shutdown()``; its
playback (``cryptofeed.raw_data_collection.playback``) hands one stand-in connection to
``subscribe``; REST answers come from the recording, from the endpoint it was made against when
the configured ``rest_url`` is not in it (logged when the playback starts). (2.x's check of authenticated channels reads ``key_id``/``key_secret``: the base
answers it from the ``BackpackConfig``.) Everything else is ``hosts/feed.py``.
"""
from __future__ import annotations

import asyncio

from cryptofeed.connection import HTTPAsyncConn
from cryptofeed.exchange import RestExchange
from cryptofeed.feed import Feed

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.hosts.cf2.lifecycle import Cf2Lifecycle
from cryptofeed.exchanges.backpack.hosts.cf2.loop import ensure_event_loop
from cryptofeed.exchanges.backpack.hosts.feed import DEPTH_WINDOWS, BackpackFeedBase
from cryptofeed.exchanges.backpack.hosts.recorded_rest import RecordedRestClient

__all__ = ['BackpackFeed', 'DEPTH_WINDOWS']

LOG = log.get()


class BackpackFeed(BackpackFeedBase, Cf2Lifecycle, RestExchange, Feed):
    __doc__ = BackpackFeedBase.__doc__

    def __init__(self, config=None, **kwargs):
        ensure_event_loop()  # FeedHandler.run() under uvloop >= 0.22 needs a current loop (loop.py)
        super().__init__(config, **kwargs)

    def connect(self) -> list:
        return [(conn, subscribe, handler, self.authenticate) for conn, subscribe, handler in self._connections()]

    def _launch(self, handler) -> None:
        """A connection opened while running: a task of the running loop, like those of ``start``."""
        handler.start(asyncio.get_running_loop())

    async def _halt_line(self, error) -> None:
        """2.x has no way for a feed to fail: stop every connection (the handler runs on, the feed
        reports ``stopped`` in its health)."""
        async def stop_all():
            await asyncio.gather(*(h.stop() for h in list(self.connection_handlers) if hasattr(h, 'stop')))

        self._ctx.spawn(stop_all())  # a task of its own: the caller may be one of the connections it stops

    async def shutdown(self):
        """Stop every connection, cancel every task this feed started, close our sessions, then
        let cryptofeed's shutdown flush the backends."""
        await self._stop_connections()
        await super().shutdown()

    def _start_replay(self) -> list:
        """Replay a recording (``cryptofeed.raw_data_collection.playback``): REST answers come from
        the recording, snapshots are fetched in line with the frames, all streams at once."""
        if self._ctx.replaying:
            return []
        # playback() patches HTTPAsyncConn.read: look it up at each call
        client = RecordedRestClient(self.backpack_config.rest_url, lambda url: HTTPAsyncConn.read(url),
                                    recorded_urls=_recorded_urls(), conn_id=f'{self.id}.http')
        LOG.log(client.playback_note[0], '%s: %s', self.id, client.playback_note[1])
        self._ctx.replay(client)
        return self._streams


def _recorded_urls():
    """The URLs 2.x's playback holds answers for (its reader's cache), or None when the reader
    in place is not one that lists them."""
    cache = getattr(getattr(HTTPAsyncConn.read, '__self__', None), 'cache', None)
    if not isinstance(cache, dict):
        return None
    return [url for url, answers in cache.items() if answers]
