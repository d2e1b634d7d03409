"""What the feed hands every channel family: emitting, owned tasks, the per-symbol gate, metrics
and the lazily created REST client.

A channel needs these and nothing else of the feed, so it never imports ``feed.py``:

* ``emit(channel, obj, receipt_ts, **book_fields)`` delivers one object to the user's callbacks
  and returns the awaitable to run. With a single callback that awaitable is the callback's own
  coroutine (no coroutine of ours per message: the hot path). ``book_fields`` (``timestamp``,
  ``sequence_number``, ``delta``, ``raw``) are set on an ``OrderBook`` first, as cryptofeed's
  ``Feed.book_callback`` does, with cryptofeed's ``cross_check`` when the feed enabled it.
* ``callback_failed(exc)`` reports an exception of a user callback: the traceback is logged
  (at most one every ``CALLBACK_ERROR_LOG_INTERVAL_S``, with the number suppressed meanwhile) and
  counted in ``callback_errors``, and the feed carries on. ``deliver`` is ``emit`` awaited with
  that protection, for background deliveries (snapshots, backfills) where an exception would
  otherwise lose the rest of a batch. With ``raise_callback_errors`` the exception propagates
  instead from the read path (cryptofeed's behaviour: the connection restarts); a background
  delivery cannot restart a connection, so there it is reported in the same way.
* ``spawn(coro)`` starts a task the context owns; ``close()`` cancels them all.
* ``SymbolGate``: while a symbol's catch-up (a book snapshot, a trade backfill) is delivered,
  live frames of that symbol wait behind it, so callbacks see them in order.
* ``rest``: the REST client, built on first use unless one was injected.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.wire import parse as adapters
from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics

__all__ = ['DONE', 'ChannelContext', 'SymbolGate']

LOG = log.get()

CALLBACK_ERROR_LOG_INTERVAL_S = 10.0


class _Finished:
    """An awaitable that is already finished: what a handler returns when it emits nothing."""

    __slots__ = ()

    def __await__(self):
        return iter(())


DONE = _Finished()


class SymbolGate(dict):
    """symbol -> ``asyncio.Event`` while that symbol's catch-up is being delivered.

    A dict, so the hot path's "is anything held at all?" is a plain truth test.
    """

    @contextmanager
    def hold(self, symbol: str) -> Iterator[None]:
        """Hold ``symbol`` for the duration of the block; waiting frames run afterwards, in order."""
        released = self[symbol] = asyncio.Event()
        try:
            yield
        finally:
            released.set()
            del self[symbol]

    @staticmethod
    async def behind(released: asyncio.Event, handler: Callable[..., Awaitable], *args) -> None:
        """Run ``handler(*args)`` once ``released`` is set."""
        await released.wait()
        await handler(*args)


class ChannelContext:
    """The feed's services for its channel families (see the module docstring)."""

    def __init__(self, exchange_id: str, callbacks: Dict[str, List[Callable]], metrics: FeedMetrics, *,
                 keep_raw: bool = False, cross_check: Optional[Callable[[Any], None]] = None,
                 rest_factory: Optional[Callable[[], Any]] = None, rest_client: Any = None,
                 raise_callback_errors: bool = False):
        self.exchange_id = exchange_id
        self.callbacks = callbacks
        self.metrics = metrics
        self.keep_raw = keep_raw
        self.cross_check = cross_check
        self._rest_factory = rest_factory
        self._rest = rest_client
        self._owns_rest = rest_client is None
        self.raise_callback_errors = raise_callback_errors
        self._replaying = False
        self.tasks: set = set()
        self._unexpected_seen: set = set()
        self._error_logged_at: Optional[float] = None
        self._errors_unlogged = 0

    # ---------------------------------------------------------------- emitting

    def emit(self, channel: str, obj, receipt_ts: float, **book_fields):
        """Deliver ``obj`` on ``channel``; returns the awaitable to run (see the module docstring)."""
        if book_fields:
            for name, value in book_fields.items():
                setattr(obj, name, value)
            if self.cross_check is not None:
                self.cross_check(obj)
        callbacks = self.callbacks[channel]
        if len(callbacks) == 1:
            return callbacks[0](obj, receipt_ts)
        return self._fan_out(callbacks, obj, receipt_ts)

    async def _fan_out(self, callbacks, obj, receipt_ts: float) -> None:
        for callback in callbacks:  # one failing callback does not starve the others
            try:
                await callback(obj, receipt_ts)
            except Exception as exc:
                self.callback_failed(exc)

    async def deliver(self, channel: str, obj, receipt_ts: float, **book_fields) -> None:
        """``emit`` and await it; an exception of a callback is reported, never propagated."""
        try:
            await self.emit(channel, obj, receipt_ts, **book_fields)
        except Exception as exc:
            self.report_callback_error(exc)

    def callback_failed(self, exc: BaseException) -> None:
        """An exception escaped the handling of a frame: report it, or re-raise it when asked to."""
        if self.raise_callback_errors:
            raise exc
        self.report_callback_error(exc)

    def report_callback_error(self, exc: BaseException) -> None:
        """Count the exception and log its traceback, at most once per log interval."""
        self.metrics.on_callback_error()
        now = time.monotonic()
        if self._error_logged_at is not None and now - self._error_logged_at < CALLBACK_ERROR_LOG_INTERVAL_S:
            self._errors_unlogged += 1
            return
        suppressed = f' ({self._errors_unlogged} more since the last report)' if self._errors_unlogged else ''
        self._error_logged_at, self._errors_unlogged = now, 0
        LOG.error('%s: a callback raised %s: %s%s; the feed carries on with the next message (counted in '
                  'callback_errors; raise_callback_errors=True restores the reconnect)', self.exchange_id,
                  type(exc).__name__, exc, suppressed, exc_info=(type(exc), exc, exc.__traceback__))

    def unexpected(self, kind: str, symbol: str):
        """A frame of a stream this feed did not subscribe to: counted, warned about once."""
        self.metrics.on_dropped()
        if (kind, symbol) not in self._unexpected_seen:
            self._unexpected_seen.add((kind, symbol))
            LOG.warning('%s: dropping %s frames for %s: not subscribed on this feed', self.exchange_id, kind, symbol)
        return DONE

    def raw(self, msg) -> Optional[dict]:
        """The venue payload to attach as ``raw``, when the feed keeps it."""
        return adapters.raw_payload(msg) if self.keep_raw else None

    # ---------------------------------------------------------------- tasks and REST

    def spawn(self, coro, loop: Optional[asyncio.AbstractEventLoop] = None) -> asyncio.Task:
        """Start ``coro`` as a task owned by the context (cancelled by ``close``)."""
        task = (loop or asyncio.get_running_loop()).create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @property
    def rest(self):
        """The REST client (created on first use)."""
        if self._rest is None:
            self._rest = self._rest_factory()
        return self._rest

    @property
    def replaying(self) -> bool:
        """True while a recording is played back (see ``replay``)."""
        return self._replaying

    def replay(self, rest_client) -> None:
        """Play a recording back: REST answers come from ``rest_client``, and channels do in line
        what they otherwise do in background tasks (there is no event loop of the feed's own)."""
        self._replaying = True
        self._rest, self._owns_rest = rest_client, True

    @property
    def rest_created(self):
        """The REST client if one exists yet, else None (never creates one)."""
        return self._rest

    async def close(self) -> None:
        """Cancel every owned task and close the REST client if the context created it."""
        tasks = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._rest is not None and self._owns_rest:
            await self._rest.close()
