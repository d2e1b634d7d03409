"""Trade continuity: every trade delivered exactly once, in id order, across gaps and reconnects.

Backpack trade ids are sequential per symbol (backpack-api.md section 3.4). ``TradeSequencer`` is
the pure per-symbol state machine: it passes live trades through, drops duplicates, and when
ids go missing (a dropped frame, or a reconnect) it holds live trades back until the missing
ones have been fetched from REST, then releases everything in order. ``fetch_trade_range`` is
the one I/O helper: it pages ``/api/v1/trades`` and ``/api/v1/trades/history`` for an id range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, List, Optional, Sequence, Tuple, TypeVar

__all__ = ['TradeGap', 'TradeSequencer', 'fetch_trade_range', 'REST_PAGE_LIMIT']

T = TypeVar('T')
REST_PAGE_LIMIT = 1000


@dataclass(frozen=True)
class TradeGap:
    """Trade ids ``first`` .. ``last`` (inclusive; ``last`` None = up to the newest) are missing."""
    first: int
    last: Optional[int]

    @property
    def size(self) -> Optional[int]:
        return None if self.last is None else self.last - self.first + 1


class TradeSequencer(Generic[T]):
    """Orders one symbol's trades by id; knows nothing about sockets or REST.

    Items are opaque to it (the feed passes cryptofeed ``Trade`` objects); only their ids matter.
    While a backfill is pending, live trades are held back (at most ``hold_limit`` of them; past
    that the backfill is abandoned and the held trades are released, counted as unrecovered).
    """

    __slots__ = ('max_gap', 'hold_limit', 'last_id', 'backfilling', '_held', 'duplicates',
                 'backfilled', 'unrecovered', 'gaps')

    def __init__(self, max_gap: int = 10_000, hold_limit: int = 50_000):
        self.max_gap = max_gap
        self.hold_limit = hold_limit
        self.last_id: Optional[int] = None
        self.backfilling = False
        self._held: dict[int, T] = {}
        self.duplicates = 0
        self.backfilled = 0
        self.unrecovered = 0
        self.gaps = 0

    def accept_next(self, trade_id: int) -> bool:
        """The common case, without allocations: True (and recorded) when ``trade_id`` directly
        follows the last delivered id and nothing is held back; otherwise call ``on_live``."""
        if self.backfilling or self.last_id is None or trade_id != self.last_id + 1:
            return False
        self.last_id = trade_id
        return True

    def on_live(self, trade_id: int, item: T) -> Tuple[List[T], Optional[TradeGap]]:
        """A trade from the stream: returns (items to deliver now, gap to fetch or None)."""
        last = self.last_id
        if self.backfilling:
            if (last is None or trade_id > last) and trade_id not in self._held:
                self._held[trade_id] = item
                if len(self._held) > self.hold_limit:
                    return self.abandon_backfill(), None
            else:
                self.duplicates += 1
            return [], None
        if last is None or trade_id == last + 1:
            self.last_id = trade_id
            return [item], None
        if trade_id <= last:
            self.duplicates += 1
            return [], None
        self.gaps += 1
        gap = TradeGap(last + 1, trade_id - 1)
        if gap.size > self.max_gap:
            self.unrecovered += gap.size
            self.last_id = trade_id
            return [item], gap
        self.backfilling = True
        self._held = {trade_id: item}
        return [], gap

    def on_reconnect(self) -> Optional[TradeGap]:
        """The stream was interrupted: anything after ``last_id`` may have been missed."""
        if self.last_id is None or self.backfilling:
            return None
        self.backfilling = True
        self._held = {}
        return TradeGap(self.last_id + 1, None)

    def on_backfill(self, fetched: Sequence[Tuple[int, T]]) -> List[T]:
        """Trades fetched from REST for the pending gap: release everything in id order."""
        merged = dict(self._held)
        for trade_id, item in fetched:
            if self.last_id is None or trade_id > self.last_id:
                if trade_id not in merged:
                    self.backfilled += 1
                merged.setdefault(trade_id, item)
        return self._release(merged)

    def abandon_backfill(self) -> List[T]:
        """REST could not fill the gap: release the held trades and count what is lost."""
        return self._release(dict(self._held))

    def _release(self, merged: dict[int, T]) -> List[T]:
        self.backfilling = False
        self._held = {}
        out: List[T] = []
        expected = None if self.last_id is None else self.last_id + 1
        for trade_id in sorted(merged):
            if expected is not None and trade_id > expected:
                self.unrecovered += trade_id - expected
            out.append(merged[trade_id])
            self.last_id = trade_id
            expected = trade_id + 1
        return out

    def reset(self) -> None:
        """Forget everything (the symbol was unsubscribed)."""
        self.last_id = None
        self.backfilling = False
        self._held = {}


async def fetch_trade_range(get_recent: Callable[[int], Awaitable[List[dict]]],
                            get_history: Callable[[int, int], Awaitable[List[dict]]],
                            first: int, last: Optional[int], max_count: int) -> List[dict]:
    """REST trade rows with ids in ``first..last`` (``last`` None: up to the newest), oldest first.

    ``get_recent(limit)`` wraps ``/api/v1/trades``; ``get_history(limit, offset)`` wraps
    ``/api/v1/trades/history`` where ``offset`` counts back from the newest trade. Rows are
    sorted by id rather than trusting the server's order. At most ``max_count`` rows are
    fetched; the caller counts the rest as unrecovered.
    """
    recent = await get_recent(REST_PAGE_LIMIT)
    if not recent:
        return []
    rows = {int(r['id']): r for r in recent}
    newest = max(rows)
    upper = newest if last is None else min(last, newest)
    if upper - first + 1 > max_count:
        first = upper - max_count + 1
    while min(rows) > first:
        oldest_known = min(rows)
        offset = newest - oldest_known + 1
        limit = min(REST_PAGE_LIMIT, oldest_known - first)
        page = await get_history(limit, offset)
        if not page:
            break
        before = len(rows)
        rows.update((int(r['id']), r) for r in page)
        if len(rows) == before:
            break
    return [rows[i] for i in sorted(rows) if first <= i <= upper]
