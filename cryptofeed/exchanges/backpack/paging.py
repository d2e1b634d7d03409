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

    1. Locate: read pages at offsets 0, L, 2L, 4L, ... (L = page size) until one holds a trade
       older than ``start_ms`` or history ends, then halve the bracket until it is narrower than
       L/2: the page at its old end then straddles ``start_ms`` and is the first page.
    2. Walk forward (towards offset 0) by ``L - margin`` per page. New trades keep arriving and
       push every offset back, so consecutive pages must overlap: a page whose oldest trade is
       newer than the newest trade already taken would have skipped some, and is read again
       further back. Trades at or below the newest id taken are dropped; nothing is taken
       twice and, because of the overlap check, nothing is skipped. ``margin`` grows with the
       drift observed, so a busy market costs a few re-reads, not a gap.
    3. Stop at the first trade newer than ``end_ms``, or after the page at offset 0.

    Rows are ordered by ``id`` (the server's order is not relied on), and ids are only compared,
    never used to compute offsets, so holes in the id sequence do no harm.

``kline_windows(start_s, end_s, interval_s)``
    The ``[startTime, endTime)`` requests of at most ``MAX_KLINES`` candles each covering a
    time range; ``/api/v1/klines`` takes seconds. A 1-month interval has no fixed length and is
    asked for in one request.
"""
from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, Dict, Iterator, List, Optional, Tuple

__all__ = [
    'HISTORY_PAGE_LIMIT', 'MAX_KLINES', 'RequestPacer', 'trade_pages', 'kline_windows', 'INTERVAL_SECONDS',
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


async def _locate(fetch: Fetch, start_ms: int, limit: int) -> Tuple[int, List[dict]]:
    """(offset, ascending rows) of a page that holds a trade older than ``start_ms`` or the
    oldest trade there is, and no newer than needed (see the module docstring, rule 1)."""
    def straddles(rows: List[dict]) -> bool:
        return len(rows) < limit or int(rows[0]['timestamp']) < start_ms

    first = _sorted(await fetch(limit, 0))
    if straddles(first):
        return 0, first
    lo, hi, hi_rows = 0, limit, None     # lo: a page entirely >= start_ms; hi: to be probed
    while True:
        rows = _sorted(await fetch(limit, hi))
        if straddles(rows):
            hi_rows = rows
            break
        lo, hi = hi, hi * 2
    while hi - lo > limit // 2:
        mid = (lo + hi) // 2
        rows = _sorted(await fetch(limit, mid))
        if straddles(rows):
            hi, hi_rows = mid, rows
        else:
            lo = mid
    return hi, hi_rows


async def trade_pages(fetch: Fetch, start_ms: int, end_ms: int,
                      limit: int = HISTORY_PAGE_LIMIT) -> AsyncIterator[List[dict]]:
    """Pages (ascending lists) of the raw trade rows in ``[start_ms, end_ms]``; see the module
    docstring for the rules. ``fetch(limit, offset)`` wraps ``/api/v1/trades/history``."""
    if limit < 4:
        raise ValueError('limit must be >= 4')
    offset, rows = await _locate(fetch, start_ms, limit)
    last_id: Optional[int] = None
    margin = 1
    while True:
        if last_id is not None:
            oldest = int(rows[0]['id']) if rows else None
            if oldest is not None and oldest > last_id and len(rows) == limit:
                # Trades arrived since the previous page and pushed it out of reach: read further back.
                # With gap-free ids the distance is the number of trades skipped; with holes it
                # overestimates, which only widens the overlap.
                shift = min(limit // 2, max(margin, oldest - last_id))
                margin = min(limit // 2, 2 * shift)
                offset += shift
                rows = _sorted(await fetch(limit, offset))
                continue
        page = []
        done = False
        for row in rows:
            trade_id = int(row['id'])
            if last_id is not None and trade_id <= last_id:
                continue
            ts = int(row['timestamp'])
            if ts > end_ms:
                done = True
                break
            last_id = trade_id
            if ts >= start_ms:
                page.append(row)
        if page:
            yield page
        if done or offset == 0:
            return
        offset = max(0, offset - (limit - margin))
        rows = _sorted(await fetch(limit, offset))


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
