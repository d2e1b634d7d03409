"""cryptofeed 3.x's way of running a feed, for feeds whose connections and tasks are their own.

cryptofeed 3 awaits ``feed.run(stop_event)`` in the handler's task group: ``_setup``, one
supervised task per connection, backend writers in the feed's own task group, and
``shutdown()`` flushing the backends within ``shutdown_timeout``. ``Cf3Lifecycle`` keeps that
shape and its conventions (stop on the handler's event or on a failed backend writer, the same
task names, the same flush deadline); a feed using it implements ``_start(loop)``: start its
own tasks and return the connection handlers to run (each with ``run()`` and
``request_stop()``); a feed that stops itself for good sets ``_fatal_error`` and
``_stop_requested``, and ``run`` raises that error once everything is closed. Symbols need no download (``_setup`` does nothing): the feeds convert them
by Backpack's spelling rules and check the markets themselves.
"""
from __future__ import annotations

import asyncio

from cryptofeed.feed import _BackendWriters

from cryptofeed.exchanges.backpack.core import log

__all__ = ['Cf3Lifecycle']

LOG = log.get()


class Cf3Lifecycle:
    async def _setup(self):
        """The subscription was built from the spelling rules at construction: nothing to load."""

    async def _run(self, stop_event: asyncio.Event):
        await self._setup()
        self._handler_stop = stop_event
        self._fatal_error = None
        self.connection_handlers = []
        self._spawned = set()
        self._poller_tasks = []
        self._backend_error = None
        self._stop_requested = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            writers = _BackendWriters(self, tg)
            writer_tasks = []
            for callbacks in self.callbacks.values():
                for callback in callbacks:
                    if hasattr(callback, 'start_writer'):
                        name = f'feed.{self.id}.backend.{self.backend_name(callback)}'
                        task = callback.start_writer(writers, name=name, owner=self)
                        if task is not None:
                            writer_tasks.append((callback, task))
            error = None
            try:
                async with asyncio.TaskGroup() as conn_tg:
                    self._conn_tg = conn_tg
                    self.connection_handlers = list(self._start(asyncio.get_running_loop()))
                    for handler in self.connection_handlers:
                        conn_tg.create_task(handler.run(), name=f'feed.{self.id}.conn.{handler.conn.id}')
                    conn_tg.create_task(self._stop_on_event(stop_event), name=f'feed.{self.id}.stop-watch')
            except Exception as exc:
                error = exc
            finally:
                self._conn_tg = None
            await self._flush_backends(writer_tasks)
        error = error or self._backend_error or self._fatal_error
        if error is not None:
            raise error

    async def _flush_backends(self, writer_tasks: list) -> None:
        """``shutdown()`` and wait for the writers of the backends it released, within the deadline."""
        waiting = []
        try:
            async with asyncio.timeout(self.shutdown_timeout):
                released = await self.shutdown()
                waiting = [task for backend, task in writer_tasks if backend in (released or ())]
                if waiting:
                    await asyncio.wait(waiting)
        except TimeoutError:
            LOG.warning('%s: backends not flushed within shutdown_timeout=%.1f s; cancelling their writers',
                        self.id, self.shutdown_timeout)
            for task in waiting:
                task.cancel()
