"""cryptofeed 2.x's way of running a feed, for feeds whose connections and tasks are their own.

2.x calls ``feed.start(loop)`` and later ``await feed.shutdown()``. A feed using
``Cf2Lifecycle`` implements ``_start(loop)``: start its own tasks and return the connection
handlers to run; this mixin starts them, then the backends, as 2.x's ``Feed.start`` does.
"""
from __future__ import annotations

import asyncio

from cryptofeed.exchanges.backpack.core import log

__all__ = ['Cf2Lifecycle']

LOG = log.get()


class Cf2Lifecycle:
    def start(self, loop: asyncio.AbstractEventLoop):
        for handler in self._start(loop):
            self.connection_handlers.append(handler)
            handler.start(loop)
        for callbacks in self.callbacks.values():
            for callback in callbacks:
                if hasattr(callback, 'start'):
                    LOG.info('%s: starting backend task %s', self.id, self.backend_name(callback))
                    callback.start(loop, multiprocess=self.config.backend_multiprocessing)
