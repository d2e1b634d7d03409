"""L2_BOOK: one ``BookSync`` per symbol, and the REST snapshots that (re)synchronise them.

``on_depth`` is the hot path: it feeds the frame to the symbol's ``BookSync`` and emits what that
answers. When a book needs a snapshot (first sync, a gap, a crossed book) its symbol is queued;
``snapshot_workers`` tasks fetch ``/api/v1/depth`` for queued symbols, spaced by
``snapshot_spacing_s``: a cold start of hundreds of markets has at most ``snapshot_workers``
requests out at once. A failed request is retried after a capped, jittered delay from
``backoff.py``, per symbol; a 429 that outlasts the REST client's own retries (which honour
Retry-After) pauses every worker for its Retry-After. Books are added and removed while
running (``add`` / ``remove``); a snapshot of a removed book is discarded. While a snapshot's full book is delivered, live frames of that symbol
wait behind it (``SymbolGate``).
"""
from __future__ import annotations

import asyncio
import time
from typing import Dict, Iterable, Iterator, Optional

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK

from cryptofeed.exchanges.backpack.core.wire import parse as adapters
from cryptofeed.exchanges.backpack.core.wire.parse import raw_payload
from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays
from cryptofeed.exchanges.backpack.core.sync.book import BookSync
from cryptofeed.exchanges.backpack.core.channels.context import DONE, ChannelContext, SymbolGate
from cryptofeed.exchanges.backpack.core.errors import BackpackError, BackpackRegionRestrictedError
from cryptofeed.exchanges.backpack.core.symbols import normalized_to_exchange

__all__ = ['BookChannel']

LOG = log.get()

#: Seconds before asking again after a 451 whose error does not say (``retry_in``).
REGION_RESTRICTED_RETRY_S = 60.0


class BookChannel:
    """The order books of ``symbols`` (see the module docstring)."""

    def __init__(self, ctx: ChannelContext, symbols: Iterable[str], *, max_depth: int, snapshot_limit: int,
                 snapshot_workers: int = 2, snapshot_spacing_s: float = 0.05, retry_base_s: float = 0.5,
                 retry_max_s: float = 30.0):
        self.ctx = ctx
        self._max_depth = max_depth
        self.books: Dict[str, BookSync] = {s: BookSync(s, max_depth, exchange=ctx.exchange_id,
                                                         on_invalid=self._invalid_frame) for s in symbols}
        self.gate = SymbolGate()
        self.snapshot_limit = snapshot_limit
        self.snapshot_workers = max(1, snapshot_workers)
        self.snapshot_spacing_s = snapshot_spacing_s
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._metrics = ctx.metrics
        self._callbacks = ctx.callbacks.get(L2_BOOK, ())  # the feed's own list: later additions count
        self._counts = ctx.metrics.messages
        self._counts[L2_BOOK] = 0
        self._queue: Optional[asyncio.Queue] = None
        self._not_before: Dict[str, float] = {}          # symbol -> monotonic time of the next request
        self._retry_delays: Dict[str, Iterator[float]] = {}
        self._breaks_reported: Dict[str, int] = {}
        self._paused_until = 0.0                          # monotonic: every worker waits out a 429 until then
        ctx.metrics.expect_books(self.books)

    def handlers(self):
        return {'depth': self.on_depth}

    def add(self, symbol: str) -> None:
        """Keep a book of ``symbol`` too (subscribed while running); synced like the others:
        ``on_subscribe`` asks for its snapshot."""
        if symbol not in self.books:
            self.books[symbol] = BookSync(symbol, self._max_depth, exchange=self.ctx.exchange_id,
                                          on_invalid=self._invalid_frame)
            self.ctx.metrics.expect_books([symbol])

    def remove(self, symbol: str) -> None:
        """Drop ``symbol``'s book (unsubscribed): its queued or running snapshot is discarded."""
        self.books.pop(symbol, None)
        for state in (self._not_before, self._retry_delays, self._breaks_reported):
            state.pop(symbol, None)
        self.ctx.metrics.forget_book(symbol)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the snapshot workers (before the loop runs: cryptofeed calls ``Feed.start`` then)."""
        self._queue = asyncio.Queue()
        for _ in range(self.snapshot_workers):
            self.ctx.spawn(self._snapshot_worker(), loop)

    def on_subscribe(self, symbol: str) -> None:
        """``symbol``'s connection (re)subscribes: its book starts over, from a snapshot asked for
        now rather than when the first frame arrives (a quiet market may send none for a while)."""
        sync = self.books[symbol]
        sync.reset()
        self.ctx.metrics.on_book_reset(symbol)
        self._not_before.pop(symbol, None)
        if self._queue is not None:
            sync.snapshot_requested()
            self._queue.put_nowait(symbol)

    # ---------------------------------------------------------------- the hot path

    def on_depth(self, msg, symbol: str, variant, receipt_ts: float):
        gate = self.gate
        if gate:
            released = gate.get(symbol)
            if released is not None:  # this symbol's snapshot is being delivered: queue behind it
                return gate.behind(released, self.on_depth, msg, symbol, variant, receipt_ts)
        self._counts[L2_BOOK] += 1
        sync = self.books.get(symbol)
        if sync is None:
            return self.ctx.unexpected('depth', symbol)
        emission = sync.on_depth(msg.U, msg.u, msg.b, msg.a, msg.T / 1_000_000)
        if emission is not None:
            # What Feed.book_callback does, without its two coroutine layers.
            book = emission.book
            metrics = self._metrics  # the consumer lag is measured on what reaches callbacks only
            book.timestamp = metrics.exchange_time = emission.timestamp
            metrics.delivered_at = receipt_ts
            book.sequence_number = emission.sequence_number
            book.delta = emission.delta
            book.raw = raw_payload(msg) if self.ctx.keep_raw else None
            cross_check = self.ctx.cross_check
            if cross_check is not None:
                cross_check(book)
            callbacks = self._callbacks
            if len(callbacks) == 1:  # ChannelContext.emit's fast path, inlined: one call less per frame
                return callbacks[0](book, receipt_ts)
            return self.ctx.emit(L2_BOOK, book, receipt_ts)
        if sync.needs_snapshot:
            return self._request_snapshot(symbol, sync)
        return DONE

    # ---------------------------------------------------------------- snapshots

    def _request_snapshot(self, symbol: str, sync: BookSync):
        """Queue a snapshot of ``symbol``; returns what to await (the fetch itself in a replay)."""
        breaks = sync.gaps + sync.crossed
        if breaks > self._breaks_reported.get(symbol, 0):
            self._breaks_reported[symbol] = breaks
            self.ctx.metrics.on_gap()
            self.ctx.metrics.on_resync(symbol)
            LOG.warning('%s: %s depth sequence broken (%s); resynchronising this book from a snapshot',
                        self.ctx.exchange_id, symbol, _describe_break(sync))
        if self.ctx.replaying:  # the recorded answer, read in line with the recorded frames
            sync.snapshot_requested()
            return self._snapshot(symbol)
        not_before = self._not_before.get(symbol)
        if (not_before is not None and time.monotonic() < not_before) or self._queue is None:
            return DONE
        sync.snapshot_requested()
        self._queue.put_nowait(symbol)
        return DONE

    async def _snapshot_worker(self) -> None:
        """Fetch queued snapshots, one at a time per worker, spaced out."""
        while True:
            symbol = await self._queue.get()
            if symbol not in self.books:
                continue  # unsubscribed while it waited
            pause = self._paused_until - time.monotonic()
            if pause > 0:  # the exchange said how long to wait (429 Retry-After): no worker asks before
                await asyncio.sleep(pause)
            try:
                await self._snapshot(symbol)
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception('%s: unexpected error while resynchronising %s', self.ctx.exchange_id, symbol)
                sync = self.books.get(symbol)
                if sync is not None:
                    sync.snapshot_failed()
            await asyncio.sleep(self.snapshot_spacing_s)

    async def _snapshot(self, symbol: str) -> None:
        sync = self.books[symbol]
        ctx = self.ctx
        try:
            data = await ctx.rest.depth(normalized_to_exchange(symbol), self.snapshot_limit)
            snapshot = adapters.parse_depth_snapshot(data)
        except BackpackRegionRestrictedError as exc:
            # The REST client has said so, loudly; ask again when it next sends a trial request.
            if self.books.get(symbol) is not sync:
                return
            self._retry_later(symbol, sync, getattr(exc, 'retry_in', None) or REGION_RESTRICTED_RETRY_S)
            return
        except (BackpackError, KeyError, TypeError, ValueError) as exc:
            retry_after = getattr(exc, 'retry_after', None)
            if retry_after:  # rate limited beyond the client's retries: every worker waits it out
                self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
            if self.books.get(symbol) is not sync:
                return
            ctx.metrics.on_snapshot_failure(symbol, str(exc))  # counted in rest_failures; named by health
            delays = self._retry_delays.setdefault(
                symbol, backoff_delays(self._retry_base_s, self._retry_max_s, jitter='equal'))
            delay = next(delays)
            LOG.warning('%s: depth snapshot for %s failed (%s); retrying in %.2f s', ctx.exchange_id, symbol, exc,
                        delay)
            self._retry_later(symbol, sync, delay)
            return
        if self.books.get(symbol) is not sync:
            return  # unsubscribed while the request was out
        self._retry_delays.pop(symbol, None)
        with self.gate.hold(symbol):
            emission = sync.apply_snapshot(snapshot.last_update_id, snapshot.bids, snapshot.asks, snapshot.timestamp)
            ctx.metrics.on_snapshot(symbol)
            if emission is not None:
                await ctx.deliver(L2_BOOK, emission.book, time.time(), timestamp=emission.timestamp,
                                  sequence_number=emission.sequence_number, delta=None,
                                  raw=data if ctx.keep_raw else None)
            elif sync.needs_snapshot:
                # Too old for the frames already buffered: ask again after a short pause.
                self._not_before[symbol] = time.monotonic() + self.snapshot_spacing_s

    def _retry_later(self, symbol: str, sync: BookSync, delay: float) -> None:
        self._not_before[symbol] = time.monotonic() + delay
        sync.snapshot_failed()

    def _invalid_frame(self) -> None:
        """A depth frame ``BookSync`` refused (hostile sizes): dropped and counted as unreadable."""
        self.ctx.metrics.on_dropped()
        self.ctx.metrics.on_parse_error()

    # ---------------------------------------------------------------- observability

    def state(self) -> Dict[str, dict]:
        return {symbol: {'state': sync.state, 'last_update_id': sync.last_update_id, **sync.counters()}
                for symbol, sync in self.books.items()}


def _describe_break(sync: BookSync) -> str:
    """Which ids broke the sequence, for the log."""
    if sync.last_break is None:
        return 'no snapshot yet'
    last, first_id, last_id = sync.last_break
    if first_id is None:
        return f'best bid >= best ask after update {last}'
    return f'after update {last} the next frame must have U <= {last + 1}, got U={first_id} u={last_id}'
