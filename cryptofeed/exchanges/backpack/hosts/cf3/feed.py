"""``BackpackFeed`` on cryptofeed 3.x: the shared feed plus 3.x's lifecycle.

The lifecycle is ``cf3/lifecycle.py``: 3.x's task-group shape, with each connection under
``BackpackConnectionHandler`` (capped jittered backoff, unlimited retries by default, contained
callback errors, reconnects counted) rather than 3's own handler, whose delay doubles without
bound. cryptofeed 3 keeps callbacks only for its market channels; the account channels
(``ORDER_INFO``, ``FILLS``, ``POSITIONS``, ``BALANCES``) get their defaults here, and deliver
this package's account types. Everything else is ``hosts/feed.py``.
"""
from __future__ import annotations

from cryptofeed.callback import Callback
from cryptofeed.feed import Feed

from cryptofeed.exchanges.backpack.core.defines import ACCOUNT_CHANNELS
from cryptofeed.exchanges.backpack.hosts.cf3.lifecycle import Cf3Lifecycle
from cryptofeed.exchanges.backpack.hosts.feed import DEPTH_WINDOWS, BackpackFeedBase

__all__ = ['BackpackFeed', 'DEPTH_WINDOWS']


class BackpackFeed(BackpackFeedBase, Cf3Lifecycle, Feed):
    __doc__ = BackpackFeedBase.__doc__

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        for channel in ACCOUNT_CHANNELS:
            self.callbacks.setdefault(channel, [Callback(None)])

    def connect(self) -> list:
        return self._connections()

    async def shutdown(self):
        """Stop every connection, cancel every task this feed started, close our sessions, then
        let cryptofeed stop the backends; returns the backends it released."""
        await self._stop_connections()
        return await super().shutdown()
