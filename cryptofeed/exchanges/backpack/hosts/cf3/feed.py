"""``BackpackFeed`` on cryptofeed 3.x: the shared feed plus 3.x's lifecycle.

cryptofeed 3 runs a feed as ``await feed.run(stop_event)`` inside the handler's task group:
``_setup`` (symbols), ``connect()`` giving (connection, subscribe, handler), one supervised task
per connection, backend writers in the feed's own task group, and ``shutdown()`` flushing the
backends within ``shutdown_timeout``. This host keeps that shape and its conventions (stop on
the handler's event or a failed backend writer, the same task names, the same flush deadline)
with two differences that make it this feed:

* symbols are converted by Backpack's spelling rules when the feed is built, so ``_setup``
  downloads nothing; the markets are checked when a connection subscribes, as on 2.x;
* each connection runs under ``BackpackConnectionHandler`` (capped jittered backoff, unlimited
  retries by default, contained callback errors, reconnects counted), not 3's own handler,
  whose delay doubles without bound.

cryptofeed 3 keeps callbacks only for its market channels; the account channels
(``ORDER_INFO``, ``FILLS``, ``POSITIONS``, ``BALANCES``) get their defaults here, and deliver
this package's account types.
"""
from __future__ import annotations

import asyncio
import logging

from cryptofeed.callback import Callback
from cryptofeed.feed import Feed, _BackendWriters

from cryptofeed.exchanges.backpack.core.defines import ACCOUNT_CHANNELS
from cryptofeed.exchanges.backpack.hosts.feed import DEPTH_WINDOWS, BackpackFeedBase

__all__ = ['BackpackFeed', 'DEPTH_WINDOWS']

LOG = logging.getLogger('feedhandler')


class BackpackFeed(BackpackFeedBase, Feed):
    __doc__ = BackpackFeedBase.__doc__

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        for channel in ACCOUNT_CHANNELS:
            self.callbacks.setdefault(channel, [Callback(None)])

    def connect(self) -> list:
        return self._connections()

    async def _setup(self):
        """The subscription was built from the spelling rules at construction: nothing to load."""

    async def _run(self, stop_event: asyncio.Event):
        await self._setup()
        self.metrics.mark_started()
        self.connection_handlers = [self._connection_handler(conn, subscribe, handler)
                                    for conn, subscribe, handler in self.connect()]
        self._spawned = set()
        self._poller_tasks = []
        self._backend_error = None
        self._stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            writers = _BackendWriters(self, tg)
            writer_tasks = []
            for callbacks in self.callbacks.values():
                for callback in callbacks:
                    if hasattr(callback, 'start_writer'):
                        task = callback.start_writer(writers, name=f'feed.{self.id}.backend.{self.backend_name(callback)}',
                                                     owner=self)
                        if task is not None:
                            writer_tasks.append((callback, task))
            error = None
            try:
                async with asyncio.TaskGroup() as conn_tg:
                    self._conn_tg = conn_tg
                    self._book.start(loop)
                    if self._account is not None:
                        self._account.start(loop)
                    for handler in self.connection_handlers:
                        conn_tg.create_task(handler.run(), name=f'feed.{self.id}.conn.{handler.conn.id}')
                    conn_tg.create_task(self._stop_on_event(stop_event), name=f'feed.{self.id}.stop-watch')
            except Exception as exc:
                error = exc
            finally:
                self._conn_tg = None
            await self._flush_backends(writer_tasks)
        error = error or self._backend_error
        if error is not None:
            raise error

    async def _flush_backends(self, writer_tasks: list) -> None:
        """``shutdown()`` and wait for the writers of the backends it released, within the deadline."""
        waiting = []
        try:
            async with asyncio.timeout(self.shutdown_timeout):
                released = await self.shutdown()
                waiting = [task for backend, task in writer_tasks if backend in released]
                if waiting:
                    await asyncio.wait(waiting)
        except TimeoutError:
            LOG.warning('%s: backends not flushed within shutdown_timeout=%.1f s; cancelling their writers',
                        self.id, self.shutdown_timeout)
            for task in waiting:
                task.cancel()

    async def shutdown(self):
        """Stop every connection, cancel every task this feed started, close our sessions, then
        let cryptofeed stop the backends; returns the backends it released."""
        await self._stop_connections()
        return await super().shutdown()
