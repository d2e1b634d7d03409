"""Trade continuity: every trade delivered exactly once, in id order, across gaps and reconnects.

Backpack trade ids are sequential per symbol (backpack-api.md section 3.4). ``TradeSequencer`` is
the pure per-symbol state machine: it passes live trades through, drops duplicates, and when
ids go missing (a dropped frame, or a reconnect) it holds live trades back until the missing
ones have been fetched from REST, then releases everything in order. ``fetch_trade_range`` is
the one I/O helper: it pages ``/api/v1/trades`` and ``/api/v1/trades/history`` for an id range.

Implausible ids. On one connection the server sends a symbol's trades in order, so ids go
missing only when frames are lost: a handful at a time, never a leap of millions. A live id
more than ``max_jump`` away from where the stream is (ahead or behind) is therefore held as a
*suspect* and judged by the next trade: if that one continues from the suspect, the stream
really moved and is followed there (the skipped ids handled as any gap: backfilled when within
``max_gap``, else counted unrecovered); if it continues the old sequence, the suspect was
corrupt and is dropped and counted in ``implausible``. Without this, one id 10^9 ahead froze the
stream (every real trade after it looked like an old duplicate). A suspect never waits longer
than the next trade or the next reconnect (which drops it and backfills from ``last_id``).
The default ``max_jump`` (1000) is far above any loss a live connection shows and far below
what a corrupt id looks like; a real jump costs one trade of latency, never data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, List, Optional, Sequence, Tuple, TypeVar

from cryptofeed.exchanges.backpack.core.wire.parse import rest_trade_id

__all__ = ['TradeGap', 'TradeSequencer', 'fetch_trade_range', 'REST_PAGE_LIMIT', 'DEFAULT_MAX_JUMP']

T = TypeVar('T')
REST_PAGE_LIMIT = 1000
DEFAULT_MAX_JUMP = 1000


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
    A live id more than ``max_jump`` from the stream's position waits for the next trade to
    confirm it (see the module docstring); ``implausible`` counts the ones found corrupt.
    """

    __slots__ = ('max_gap', 'hold_limit', 'max_jump', 'last_id', 'backfilling', '_held', '_suspect', '_next',
                 'duplicates', 'backfilled', 'unrecovered', 'gaps', 'implausible')

    def __init__(self, max_gap: int = 10_000, hold_limit: int = 50_000, max_jump: int = DEFAULT_MAX_JUMP):
        if max_jump < 1:
            raise ValueError(f'max_jump must be >= 1, got {max_jump}')
        self.max_gap = max_gap
        self.hold_limit = hold_limit
        self.max_jump = max_jump
        self.last_id: Optional[int] = None
        self.backfilling = False
        self._held: dict[int, T] = {}
        self._suspect: Optional[Tuple[int, T]] = None
        self._next = -1  # the id accept_next takes, or -1 (no trade id) while only on_live may decide
        self.duplicates = 0
        self.backfilled = 0
        self.unrecovered = 0
        self.gaps = 0
        self.implausible = 0

    @property
    def suspect_id(self) -> Optional[int]:
        """The id of the live trade waiting for confirmation, if any."""
        return None if self._suspect is None else self._suspect[0]

    def accept_next(self, trade_id: int) -> bool:
        """The common case, without allocations: True (and recorded) when ``trade_id`` directly
        follows the last delivered id and nothing is held back; otherwise call ``on_live``."""
        if trade_id != self._next:
            return False
        self._next = trade_id + 1
        self.last_id = trade_id
        return True

    def _refresh(self) -> None:
        """Recompute the id ``accept_next`` may take after any change of state."""
        last = self.last_id
        self._next = -1 if self.backfilling or self._suspect is not None or last is None else last + 1

    def on_live(self, trade_id: int, item: T) -> Tuple[List[T], Optional[TradeGap]]:
        """A trade from the stream: returns (items to deliver now, gap to fetch or None)."""
        result = self._on_live(trade_id, item)
        self._refresh()
        return result

    def _on_live(self, trade_id: int, item: T) -> Tuple[List[T], Optional[TradeGap]]:
        if self.backfilling:
            last = self.last_id
            if (last is None or trade_id > last) and trade_id not in self._held:
                self._held[trade_id] = item
                if len(self._held) > self.hold_limit:
                    return self.abandon_backfill(), None
            else:
                self.duplicates += 1
            return [], None
        suspect = self._suspect
        if suspect is not None:
            suspect_id, suspect_item = suspect
            if trade_id == suspect_id:
                self.duplicates += 1
                return [], None
            self._suspect = None
            if suspect_id < trade_id <= suspect_id + self.max_jump:
                # The stream did move there: follow it, then place this trade after it.
                ready, gap = self._follow(suspect_id, suspect_item)
                if self.backfilling:
                    self._held[trade_id] = item
                    return ready, gap
                more, later_gap = self._advance(trade_id, item)
                return ready + more, later_gap or gap
            self.implausible += 1  # the stream carried on where it was: the suspect was corrupt
        return self._advance(trade_id, item)

    def _advance(self, trade_id: int, item: T) -> Tuple[List[T], Optional[TradeGap]]:
        last = self.last_id
        if last is None or trade_id == last + 1:
            self.last_id = trade_id
            return [item], None
        if abs(trade_id - last - 1) > self.max_jump:
            self._suspect = (trade_id, item)
            return [], None
        if trade_id <= last:
            self.duplicates += 1
            return [], None
        return self._gap_to(trade_id, item)

    def _follow(self, trade_id: int, item: T) -> Tuple[List[T], Optional[TradeGap]]:
        """A confirmed leap to ``trade_id``: backwards means ``last_id`` itself was corrupt."""
        last = self.last_id
        if last is None or trade_id <= last:
            self.implausible += 1
            self.last_id = trade_id
            return [item], None
        return self._gap_to(trade_id, item)

    def _gap_to(self, trade_id: int, item: T) -> Tuple[List[T], Optional[TradeGap]]:
        last = self.last_id
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
        """The stream was interrupted: anything after ``last_id`` may have been missed. A suspect
        id is dropped unjudged: the backfill from ``last_id`` fetches whatever really happened."""
        self._suspect = None
        if self.last_id is None or self.backfilling:
            return None
        self.backfilling = True
        self._held = {}
        self._next = -1
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
        self._refresh()
        return out

    def reset(self) -> None:
        """Forget everything (the symbol was unsubscribed)."""
        self.last_id = None
        self.backfilling = False
        self._held = {}
        self._suspect = None
        self._next = -1


async def fetch_trade_range(get_recent: Callable[[int], Awaitable[List[dict]]],
                            get_history: Callable[[int, int], Awaitable[List[dict]]],
                            first: int, last: Optional[int], max_count: int) -> List[dict]:
    """REST trade rows with ids in ``first..last`` (``last`` None: up to the newest), oldest first.

    ``get_recent(limit)`` wraps ``/api/v1/trades``; ``get_history(limit, offset)`` wraps
    ``/api/v1/trades/history`` where ``offset`` counts back from the newest trade. Rows are
    sorted by id rather than trusting the server's order. At most ``max_count`` rows are
    fetched; the caller counts the rest as unrecovered. Rows without a usable ``id`` are left
    out (they cannot be placed); a page made only of such rows ends the paging.
    """
    rows = _by_id(await get_recent(REST_PAGE_LIMIT))
    if not rows:
        return []
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
        rows.update(_by_id(page))
        if len(rows) == before:
            break
    return [rows[i] for i in sorted(rows) if first <= i <= upper]


def _by_id(page: Optional[List[dict]]) -> dict:
    """id -> row for the rows of a REST page that carry a usable id; the others cannot be placed
    in the sequence and are left out (their ids, if any, count as unrecovered)."""
    out = {}
    for row in page or ():
        trade_id = rest_trade_id(row)
        if trade_id is not None:
            out[trade_id] = row
    return out
