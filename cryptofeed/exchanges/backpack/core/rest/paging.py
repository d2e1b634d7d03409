"""Paging through Backpack's history endpoints, and the pacer that keeps them under the rate limit.

Use these from the REST API methods (``rest_api.py``); they take the HTTP calls as arguments,
so they are tested without a network and know nothing of cryptofeed types.

``RequestPacer``
    At most ``max_requests`` in any sliding window of ``period_s`` (Backpack's historical
    endpoints allow 30 a minute), counted from when each request finished. A caller waits for a
    free slot instead of provoking 429s; a 429 that still happens is waited out by the REST
    client (Retry-After).

``trade_pages(fetch, start_ms, end_ms)``
    Every trade with ``start_ms <= timestamp <= end_ms``, oldest first, exactly once, from
    ``/api/v1/trades/history`` whose only handles are ``limit`` (<= 1000) and ``offset``
    counted back from the newest trade (backpack-api.md section 3.4). The rules:

    1. Locate: read pages at offsets 0, L, 2L, 4L, ... (L = page size) until one is not
       entirely after ``start_ms``, then halve the bracket until it is narrower than L/2; from
       the oldest trade of the last page found entirely after ``start_ms``, step back one
       overlapping page at a time (as in rule 2) until a page reaches past ``start_ms`` or
       holds the oldest trade there is.
    2. Walk forward (towards offset 0). New trades keep arriving and push every offset back,
       so each page is aimed to start at the newest trade taken so far *where it will be* once
       the expected number of new trades (the drift) has arrived, with slack of half the drift.
       The drift is measured, not guessed: where that trade shows up in the answer tells how
       far it moved. A page must contain that trade: one entirely newer would have skipped
       trades (more arrived than expected: the estimate is raised to what the page proves and
       the page read again), one entirely older is read again with a lower estimate. Trades at
       or below the newest id taken are dropped: nothing is taken twice and, because every
       accepted page overlaps the previous one, nothing is skipped.
    3. Stop at the first trade newer than ``end_ms``, or after the page at offset 0.

    Rows are ordered by ``id`` (the server's order is not relied on), and ids are only compared,
    never used to compute offsets, so holes in the id sequence do no harm.

``kline_windows(start_s, end_s, interval_s)``
    The ``[startTime, endTime)`` requests of at most ``MAX_KLINES`` candles each covering a
    time range; ``/api/v1/klines`` takes seconds. A 1-month interval has no fixed length and is
    asked for in one request. ``kline_request_count`` says how many requests that is, without
    making the list, so that a window too long for the rate limit is refused up front.
"""
from __future__ import annotations

import asyncio
import bisect
import threading
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, Dict, Iterator, List, Optional, Tuple

__all__ = [
    'HISTORY_PAGE_LIMIT', 'MAX_KLINES', 'RequestPacer', 'trade_pages', 'kline_windows', 'kline_request_count',
    'INTERVAL_SECONDS',
]

#: Most rows ``/api/v1/trades/history`` and ``/wapi/v1/history/*`` return per request.
HISTORY_PAGE_LIMIT = 1000
#: Candles asked for per ``/api/v1/klines`` request (no documented limit; ccxt windows by 1000).
MAX_KLINES = 1000

#: Backpack kline interval -> length in seconds (``1month`` has none).
INTERVAL_SECONDS: Dict[str, int] = {
    '1s': 1, '1m': 60, '3m': 180, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '2h': 7200, '4h': 14400,
    '6h': 21600, '8h': 28800, '12h': 43200, '1d': 86400, '3d': 259200, '1w': 604800,
}

Fetch = Callable[[int, int], Awaitable[List[dict]]]


class RequestPacer:
    """Sliding-window limiter: at most ``max_requests`` requests in any ``period_s``.

    ``async with pacer.slot(): <one request>`` waits for a free slot first. A slot counts from
    when its request *finished*, not when it was sent: the server counts a request when it
    arrives, which is somewhere in between, so counting from the send could let the next
    window start early by a request's latency and earn a 429. Safe to share between event
    loops and threads (the ``*_sync`` calls run on their own loop). ``clock`` is injectable
    for tests; ``delay()`` and ``take()``/``release()`` are the loop-free part.
    """

    def __init__(self, max_requests: int = 30, period_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_requests < 1:
            raise ValueError(f'max_requests must be >= 1, got {max_requests}')
        if period_s <= 0:
            raise ValueError(f'period_s must be > 0, got {period_s}')
        self.max_requests = int(max_requests)
        self.period_s = float(period_s)
        self.clock = clock
        self.waited_s = 0.0
        self._slots: List[List[float]] = []   # [time]: reservation or completion time of each slot
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f'RequestPacer({self.max_requests} per {self.period_s:g} s)'

    def _prune(self, now: float) -> None:
        cutoff = now - self.period_s
        self._slots = [slot for slot in self._slots if slot[0] > cutoff]

    def delay(self) -> float:
        """Seconds until a request may go out (0: now)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            if len(self._slots) < self.max_requests:
                return 0.0
            return min(slot[0] for slot in self._slots) + self.period_s - now

    def take(self) -> Optional[List[float]]:
        """Reserve a slot now, or None when none is free."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            if len(self._slots) >= self.max_requests:
                return None
            slot = [now]
            self._slots.append(slot)
            return slot

    def release(self, slot: List[float]) -> None:
        """The request of ``slot`` finished: its window starts now."""
        with self._lock:
            slot[0] = max(slot[0], self.clock())

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        while True:
            reserved = self.take()
            if reserved is not None:
                break
            wait = max(self.delay(), 0.001)
            self.waited_s += wait
            await asyncio.sleep(wait)
        try:
            yield
        finally:
            self.release(reserved)


def _sorted(rows: List[dict]) -> List[dict]:
    return sorted(rows, key=lambda row: int(row['id']))


async def _aim(fetch: Fetch, limit: int, anchor_id: int, anchor_pos: int, drift: int,
               oldest_end: bool) -> Tuple[int, List[dict], int]:
    """Read the page that has the trade ``anchor_id`` at its oldest end (``oldest_end``) or at
    its newest end, the trade having been at offset ``anchor_pos`` when last seen and about
    ``drift`` trades arriving per request. Returns (offset, ascending rows, drift measured)."""
    while True:
        slack = min(limit // 2, max(1, drift // 2))
        if oldest_end:
            offset = max(0, anchor_pos + drift + slack - (limit - 1))
        else:
            offset = max(0, anchor_pos + drift - slack)
        rows = _sorted(await fetch(limit, offset))
        ids = [int(row['id']) for row in rows]
        if ids and ids[0] <= anchor_id <= ids[-1]:
            moved = offset + len(ids) - 1 - bisect.bisect_left(ids, anchor_id) - anchor_pos
            return offset, rows, max(moved, drift // 2)   # a decaying maximum: follows bursts
        if ids and ids[0] > anchor_id:
            # Newer than aimed: more trades arrived than expected, at least this many.
            drift = max(2 * drift, offset + len(ids) - anchor_pos)
        else:
            # Older than aimed, or past the oldest trade: fewer arrived than expected.
            drift = max(0, min(drift, offset - anchor_pos - 1) // 2)


async def _locate(fetch: Fetch, start_ms: int, limit: int) -> Tuple[int, List[dict], int]:
    """(offset, ascending rows, drift) of a page holding a trade older than ``start_ms`` or the
    oldest trade there is (see the module docstring, rule 1)."""
    def after(rows: List[dict]) -> bool:   # a full page, every trade at or after start_ms
        return len(rows) == limit and int(rows[0]['timestamp']) >= start_ms

    rows = _sorted(await fetch(limit, 0))
    if not after(rows):
        return 0, rows, 0   # the newest page reaches back far enough (or there are no trades)
    lo, lo_rows, hi = 0, rows, limit
    while True:
        rows = _sorted(await fetch(limit, hi))
        if not after(rows):
            break
        lo, lo_rows, hi = hi, rows, hi * 2
    while hi - lo > limit // 2:
        mid = (lo + hi) // 2
        rows = _sorted(await fetch(limit, mid))
        if after(rows):
            lo, lo_rows = mid, rows
        else:
            hi = mid
    # Walk back from the oldest trade of the last page found entirely after start_ms, one
    # overlapping page at a time (trades arriving meanwhile move every offset).
    drift = 0
    anchor_id, anchor_pos = int(lo_rows[0]['id']), lo + limit - 1
    while True:
        offset, rows, drift = await _aim(fetch, limit, anchor_id, anchor_pos, drift, oldest_end=False)
        if len(rows) < limit or int(rows[0]['timestamp']) < start_ms:
            return offset, rows, drift
        anchor_id, anchor_pos = int(rows[0]['id']), offset + limit - 1


async def trade_pages(fetch: Fetch, start_ms: int, end_ms: int,
                      limit: int = HISTORY_PAGE_LIMIT) -> AsyncIterator[List[dict]]:
    """Pages (ascending lists) of the raw trade rows in ``[start_ms, end_ms]``; see the module
    docstring for the rules. ``fetch(limit, offset)`` wraps ``/api/v1/trades/history``."""
    if limit < 4:
        raise ValueError('limit must be >= 4')
    offset, rows, drift = await _locate(fetch, start_ms, limit)
    last_id: Optional[int] = None
    last_pos = 0   # offset of the trade ``last_id`` when ``rows`` was read
    while rows:
        page = []
        done = False
        for index, row in enumerate(rows):
            trade_id = int(row['id'])
            if last_id is not None and trade_id <= last_id:
                continue
            ts = int(row['timestamp'])
            if ts > end_ms:
                done = True
                break
            last_id, last_pos = trade_id, offset + len(rows) - 1 - index
            if ts >= start_ms:
                page.append(row)
        if page:
            yield page
        if done or offset == 0 or last_id is None:
            return
        offset, rows, drift = await _aim(fetch, limit, last_id, last_pos, drift, oldest_end=True)


def kline_windows(start_s: int, end_s: int, interval_s: Optional[int],
                  max_rows: int = MAX_KLINES) -> Iterator[Tuple[int, int]]:
    """``(startTime, endTime)`` pairs in seconds covering ``[start_s, end_s)``, each at most
    ``max_rows`` candles long; one pair when ``interval_s`` is None (1 month)."""
    if end_s <= start_s:
        return
    if interval_s is None:
        yield start_s, end_s
        return
    span = interval_s * max_rows
    cursor = start_s - start_s % interval_s
    while cursor < end_s:
        stop = min(end_s, cursor + span)
        yield cursor, stop
        cursor = stop


def kline_request_count(start_s: int, end_s: int, interval_s: Optional[int], max_rows: int = MAX_KLINES) -> int:
    """How many pairs ``kline_windows`` yields for the same arguments (computed, not listed)."""
    if end_s <= start_s:
        return 0
    if interval_s is None:
        return 1
    cursor = start_s - start_s % interval_s
    span = interval_s * max_rows
    return -(-(end_s - cursor) // span)
