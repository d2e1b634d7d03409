"""Per-symbol L2 book synchronisation for Backpack depth streams, free of I/O.

Use ``BookSync`` wherever ``depth.<symbol>`` frames and ``/api/v1/depth`` snapshots meet: the
feed hands it every decoded depth frame and, when it asks for one, a REST snapshot; it answers
with what to emit (a cryptofeed ``OrderBook`` ready for ``book_callback``, plus the delta,
sequence number and timestamp), or ``None``. No asyncio, no callbacks, no network: the caller
owns the socket, the HTTP request and the clock.

The procedure is backpack-api.md section 9:

* **buffering** - no usable book. Frames are kept in a bounded buffer. Once a frame has arrived
  and no request is outstanding, ``needs_snapshot`` is true; the caller calls
  ``snapshot_requested()``, fetches ``/depth`` and hands it to ``apply_snapshot``
  (``snapshot_failed()`` if the request failed, so that ``needs_snapshot`` turns true again).
* **primed** - a snapshot with id ``L`` is loaded, no frame bridging it has been seen yet.
  Buffered frames are replayed in ``u`` order: frames with ``u <= L`` are dropped; the first one
  applied must satisfy ``U <= L + 1 <= u``. If the earliest remaining frame has ``U > L + 1`` the
  snapshot is too old: it is discarded and a new one is wanted (frames stay buffered). If no frame
  reaches ``L + 1`` yet, the snapshot is kept and the next live frame decides.
* **synced** - frames are applied in order. Quantities are absolute; a quantity that is zero
  numerically (``"0"``, ``"0.00"`` decoded to ``Decimal``) deletes the level. ``u <= lastId``
  is a stale duplicate (ignored, counted). ``U > lastId + 1`` is a gap: the book is discarded,
  buffering restarts with that frame and a new snapshot is wanted. Only this symbol is affected.

Decisions worth knowing:

* **Overlap.** A frame with ``U <= lastId < u`` is applied whole. Its quantities are the final
  values at ``u`` for every price touched in ``U..u``, and prices it does not name did not change
  in ``lastId+1..u``; so re-setting the already-seen part is harmless and the result is the book
  at ``u``.
* **Emissions.** Nothing is emitted while out of sync. The first emission after a (re)sync is the
  full book (``delta`` is ``None``); after that each applied frame yields
  ``{BID: [(price, size), ...], ASK: [...]}`` in cryptofeed's delta format, size ``0`` meaning
  delete, with ``sequence_number = u``. Each price appears at most once per delta, and a delete
  only names a level the previous emission held. A frame that changes nothing visible (it only
  deletes unknown levels, or only touches levels below ``max_depth``) yields ``None``.
* **max_depth.** The full book is kept (deep levels move up when the top empties); the emitted
  ``OrderBook`` holds exactly the top ``max_depth`` levels per side. Ranks are tracked
  incrementally with one sorted price list per side, so the delta is exact and cheap: a change
  inside the window is reported, an insert inside a full window also reports the level pushed
  out (size 0), and a delete inside the window also reports the level that moves in from below.
  Changes below the window report nothing. This is what cryptofeed 1.x obtained by copying and
  diffing the truncated book on every update (``previous_book``), without the copy.
* **Buffer overflow.** The oldest buffered frame is dropped and ``buffer_overflows`` counted.
  The surviving buffer then starts later, so a snapshot taken before the drop cannot bridge it:
  ``apply_snapshot`` reports it as too old and ``needs_snapshot`` turns true again. An
  outstanding request is not duplicated on overflow (that would fire one request per frame
  while the buffer is full); its answer may still be recent enough.
* **Crossed book** (section 9 step 7, on by default): if best bid >= best ask after a frame,
  the book is treated as corrupt, counted in ``crossed`` and resynchronised like a gap.

Corrupt input (never a crash, never a value in the book or a delta, never a frozen book):

* **Values.** Prices reach ``BookSync`` already validated by the decoder (``levels.py``: finite,
  ``0 < price < MAX_LEVEL_VALUE`` (1E+18); a frame with another price is refused there and counted by the router
  as ``invalid``). Sizes are checked here, for the whole frame before any level is applied: a
  size that is not a finite number with ``0 <= size < MAX_LEVEL_VALUE`` (``NaN``, ``sNaN``,
  ``Infinity``, negative, ``1E+400``) drops the frame, counted in ``invalid_levels`` and reported
  to ``on_invalid`` (the feed counts it as a parse error). A dropped frame leaves its ids
  missing, so the next frame is a gap and the usual resync follows. Frames met out of sync
  (buffered or replayed) have their prices checked too; a direct caller that hands a synced
  book a NaN price gets the frame dropped and the book resynchronised (it may hold part of it).
* **Ids.** Backpack's busiest market uses about 70 update ids a second on average (SOL_USDC:
  ``lastUpdateId`` 4324522523 to 4330360996 in 82279 s, backpack-api.md sections 3.3 and 8.1); a
  realtime frame spans 1-3 ids, an aggregated one a second's worth. ``max_id_jump`` (default
  ``MAX_ID_JUMP`` = 1,000,000 ids: hours of average flow, minutes at a hundred times the
  average rate) bounds how far apart the book, a frame and a snapshot can plausibly be while
  frames keep arriving; beyond it one of them is corrupt (or the exchange renumbered), so
  waiting would freeze the book for ever. Counted in ``implausible_ids`` and logged:

  - synced, a frame whose ``u`` is more than ``max_id_jump`` ahead of the book (``u`` 10**9
    ahead, or a gap that large) or behind it (a restarted counter): the book is discarded
    (``gaps`` and ``resyncs`` count it too) and a snapshot wanted; the frame is buffered
    (it may be the exchange's new numbering) if its ids and levels pass the out-of-sync checks;
  - buffering, a frame more than ``max_id_jump`` from the newest buffered frame: the buffer is
    discarded and the newest frame kept (a bogus frame is thus gone with the next real one);
  - a snapshot whose ``lastUpdateId`` is not an unsigned 64-bit integer (``10**30``), or more
    than ``max_id_jump`` ahead of the newest buffered frame, is refused (``needs_snapshot``
    turns true again); a primed snapshot that far ahead of the next live frame is discarded;
  - a frame out of sync whose ids are not unsigned 64-bit or whose span exceeds
    ``max_id_jump`` is dropped.
* **Object lifetime.** The emitted ``OrderBook`` is updated in place between emissions, as the
  cryptofeed exchanges do with ``self._l2_book[symbol]``; read it inside the callback. Each
  (re)sync builds a new object; after a sync loss the old one is abandoned (after a crossed
  frame it may already hold that frame's levels).
* Ids are integers (the snapshot's ``lastUpdateId`` may be a string). A frame with ``U > u``
  needs no special case: it is either stale or a gap.

``channels/book.py`` is the caller in this package: it feeds every frame to ``on_depth``, emits
what comes back, and when ``needs_snapshot`` turns true it calls ``snapshot_requested()``,
fetches ``/api/v1/depth`` in a worker task and answers with ``apply_snapshot`` (or
``snapshot_failed``); a (re)subscribe calls ``reset()``.

Leave cryptofeed's ``cross_check`` off for this feed: it reads ``SortedDict.index(0)``, which
re-sorts the whole side after every change; ``check_crossed`` does the same check in O(1).
"""
from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from decimal import Decimal
from operator import itemgetter
from typing import Any, Callable, Deque, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import ASK, BID
from cryptofeed.exchanges.backpack.core import records

from cryptofeed.exchanges.backpack.core.defines import BACKPACK
from cryptofeed.exchanges.backpack.core.wire.levels import MAX_LEVEL_VALUE

__all__ = ['BookSync', 'Emission', 'Level', 'BUFFERING', 'PRIMED', 'SYNCED', 'MAX_ID', 'MAX_ID_JUMP']

LOG = log.get('.backpack.book')

Level = Tuple[Decimal, Decimal]
Delta = Dict[str, List[Level]]

BUFFERING = 'buffering'
PRIMED = 'primed'
SYNCED = 'synced'

MAX_ID = 2 ** 64 - 1
"""Largest update id accepted (the engine's ids are unsigned 64-bit; a larger one is corrupt)."""
MAX_ID_JUMP = 1_000_000
"""Default ``max_id_jump``: how far apart (in update ids) the book, a frame and a snapshot may be."""

_ZERO = Decimal(0)
_LIMIT = MAX_LEVEL_VALUE
_LOG_INTERVAL_S = 10.0
_by_last_id = itemgetter(1)
_Frame = Tuple[int, int, Sequence[Level], Sequence[Level], float]


class Emission(NamedTuple):
    """What to hand to ``Feed.book_callback``: ``book`` as the book, the rest as keywords."""
    book: records.OrderBook
    delta: Optional[Delta]
    sequence_number: int
    timestamp: Optional[float]


_emission = tuple.__new__


class BookSync:
    """Snapshot + depth-frame synchroniser for one symbol (see the module docstring).

    ``symbol`` and ``exchange`` only label the emitted ``OrderBook``. ``max_depth`` (0 = all
    levels) bounds the emitted book and its deltas. ``buffer_limit`` bounds the frames kept
    while waiting for a snapshot. ``check_crossed`` enables the crossed-book sanity check.

    Counters (cumulative, kept across ``reset``; also as a dict from ``counters()``):
    ``applied`` frames applied to a book; ``stale_dropped`` frames already reflected in the
    book or snapshot (``u <= lastId``); ``gaps`` sequence gaps; ``crossed`` crossed books;
    ``resyncs`` times a synced book was discarded (a gap or a crossed book) and a new
    snapshot cycle began; ``snapshots_too_old`` snapshots that no frame could bridge;
    ``buffer_overflows`` buffered frames dropped; ``snapshots_ignored`` snapshots delivered
    while already synced; ``invalid_levels`` frames dropped for a size that is not a finite
    number in ``0 <= size < MAX_LEVEL_VALUE`` (or a price a direct caller passed unvalidated);
    ``implausible_ids`` frames, buffers and snapshots refused for update ids that cannot be
    real (see "Corrupt input" in the module docstring). ``snapshot_timestamp`` keeps the
    timestamp of the last snapshot.

    ``max_id_jump`` bounds how far apart the book, a frame and a snapshot may be, in update ids.
    ``on_invalid`` (optional, no arguments) is called once per frame dropped for its values, so
    that the caller counts it with its malformed frames. Corrupt input is also logged (WARNING,
    at most one line per book per 10 s, with the number of similar events suppressed).
    """

    __slots__ = (
        'symbol', 'exchange', 'max_depth', 'buffer_limit', 'check_crossed',
        '_state', '_last', '_last_ts', '_buffer', '_requested', '_wanted',
        '_book', '_bids', '_asks', '_bid_px', '_ask_px', 'snapshot_timestamp',
        'applied', 'stale_dropped', 'gaps', 'resyncs', 'snapshots_too_old', 'buffer_overflows',
        'crossed', 'snapshots_ignored', 'invalid_levels', 'implausible_ids', 'max_id_jump', 'on_invalid',
        '_logged_at', '_suppressed', 'last_break',
    )

    def __init__(self, symbol: str, max_depth: int = 0, buffer_limit: int = 10000, *,
                 exchange: str = BACKPACK, check_crossed: bool = True, max_id_jump: int = MAX_ID_JUMP,
                 on_invalid: Optional[Callable[[], Any]] = None) -> None:
        if not isinstance(max_depth, int) or max_depth < 0:
            raise ValueError(f'max_depth must be an integer >= 0 (0 = unlimited), got {max_depth!r}')
        if not isinstance(buffer_limit, int) or buffer_limit < 1:
            raise ValueError(f'buffer_limit must be an integer >= 1, got {buffer_limit!r}')
        if isinstance(max_id_jump, bool) or not isinstance(max_id_jump, int) or max_id_jump < 1:
            raise ValueError(f'max_id_jump must be an integer >= 1, got {max_id_jump!r}')
        self.max_id_jump = max_id_jump
        self.on_invalid = on_invalid
        self._logged_at: Optional[float] = None
        self._suppressed = 0
        self.symbol = symbol
        self.exchange = exchange
        self.max_depth = max_depth
        self.buffer_limit = buffer_limit
        self.check_crossed = check_crossed
        self._buffer: Deque[_Frame] = deque()
        self.applied = 0
        self.stale_dropped = 0
        self.gaps = 0
        self.resyncs = 0
        self.snapshots_too_old = 0
        self.buffer_overflows = 0
        self.crossed = 0
        self.snapshots_ignored = 0
        self.invalid_levels = 0
        self.implausible_ids = 0
        self.last_break: Optional[Tuple[Optional[int], Optional[int], Optional[int]]] = None
        self.reset()

    # ------------------------------------------------------------------ state and queries

    def reset(self) -> None:
        """Forget the book and the buffer (use on reconnect). Counters are kept.

        An outstanding snapshot request is forgotten too; if its answer is delivered anyway it
        is validated like any other snapshot.
        """
        self._state = BUFFERING
        self._last: Optional[int] = None
        self._last_ts: Optional[float] = None
        self._buffer.clear()
        self._requested = False
        self._wanted = False
        self._drop_book()
        self.snapshot_timestamp: Optional[float] = None

    @property
    def state(self) -> str:
        """``'buffering'``, ``'primed'`` or ``'synced'``."""
        return self._state

    @property
    def synced(self) -> bool:
        return self._state is SYNCED

    @property
    def needs_snapshot(self) -> bool:
        """True when the caller should fetch a REST snapshot now."""
        return self._state is BUFFERING and self._wanted and not self._requested

    @property
    def last_update_id(self) -> Optional[int]:
        """Id of the last update reflected in the book (snapshot id while primed), else None."""
        return self._last

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def book(self) -> Optional[records.OrderBook]:
        """The book as last emitted, or None while out of sync."""
        return self._book if self._state is SYNCED else None

    def counters(self) -> Dict[str, int]:
        return {
            'applied': self.applied, 'stale_dropped': self.stale_dropped, 'gaps': self.gaps,
            'resyncs': self.resyncs, 'snapshots_too_old': self.snapshots_too_old,
            'buffer_overflows': self.buffer_overflows, 'crossed': self.crossed,
            'snapshots_ignored': self.snapshots_ignored, 'invalid_levels': self.invalid_levels,
            'implausible_ids': self.implausible_ids,
        }

    def snapshot_requested(self) -> None:
        """The caller has started a snapshot request; ``needs_snapshot`` is false until it ends."""
        self._requested = True

    def snapshot_failed(self) -> None:
        """The outstanding request failed; ``needs_snapshot`` may turn true again."""
        self._requested = False

    # ------------------------------------------------------------------ inputs

    def on_depth(self, first_id: int, last_id: int, bids: Sequence[Level], asks: Sequence[Level],
                 timestamp: float) -> Optional[Emission]:
        """Feed one depth frame: ``U``, ``u``, ``b``, ``a`` as ``(price, qty)`` Decimal pairs, and
        the frame time in seconds. While buffering the sequences are kept by reference: do not
        mutate them afterwards."""
        if self._state is SYNCED:
            last = self._last
            if last_id <= last:
                if last - last_id > self.max_id_jump:
                    return self._implausible((first_id, last_id, bids, asks, timestamp),
                                             f'frame {first_id}..{last_id} is far behind the book at {last}')
                self.stale_dropped += 1
                return None
            if last_id - last > self.max_id_jump:
                return self._implausible((first_id, last_id, bids, asks, timestamp),
                                         f'frame {first_id}..{last_id} is far ahead of the book at {last}')
            try:
                for _, qty in bids:
                    if not _ZERO <= qty < _LIMIT:
                        raise ValueError
                for _, qty in asks:
                    if not _ZERO <= qty < _LIMIT:
                        raise ValueError
            except (ArithmeticError, TypeError, ValueError):
                return self._invalid(first_id, last_id, bids, asks)
            if first_id > last + 1:
                self.gaps += 1
                self._lose_sync(None)
                self.last_break = (last, first_id, last_id)
                frame = (first_id, last_id, bids, asks, timestamp)
                if self._valid_levels(frame):  # the prices too, for callers that bypass the decoder
                    self._push(frame)
                return None
            self._last = last_id
            self.applied += 1
            try:
                if self.max_depth:
                    delta, grew = self._apply_top(bids, asks)
                else:
                    # The unbounded case, inlined: this is the hot path. Only a new price level can
                    # cross the book (updates keep the price set, deletes shrink it).
                    grew = False
                    bid_delta = []
                    if bids:
                        levels = self._bids
                        prices = self._bid_px
                        for price, qty in bids:
                            if qty:
                                if price not in levels:
                                    prices.insert(bisect_left(prices, price), price)
                                    grew = True
                                levels[price] = qty
                                bid_delta.append((price, qty))
                            elif price in levels:
                                del levels[price]
                                del prices[bisect_left(prices, price)]
                                bid_delta.append((price, _ZERO))
                    ask_delta = []
                    if asks:
                        levels = self._asks
                        prices = self._ask_px
                        for price, qty in asks:
                            if qty:
                                if price not in levels:
                                    prices.insert(bisect_left(prices, price), price)
                                    grew = True
                                levels[price] = qty
                                ask_delta.append((price, qty))
                            elif price in levels:
                                del levels[price]
                                del prices[bisect_left(prices, price)]
                                ask_delta.append((price, _ZERO))
                    delta = {BID: bid_delta, ASK: ask_delta} if bid_delta or ask_delta else None
            except (ArithmeticError, TypeError):
                # A NaN or signalling-NaN price from a caller that bypassed the decoder's
                # validation (levels.py): the book may hold part of the frame, so it is dropped.
                self._lose_sync(None)
                return self._invalid(first_id, last_id, bids, asks)
            if grew and self.check_crossed:
                bid_px = self._bid_px
                ask_px = self._ask_px
                if bid_px and ask_px and bid_px[-1] >= ask_px[0]:
                    self.crossed += 1
                    self._lose_sync(None)
                    return None
            if delta is None:
                return None
            return _emission(Emission, (self._book, delta, last_id, timestamp))
        frame = (first_id, last_id, bids, asks, timestamp)
        if not self._admissible(frame):
            return None
        if self._state is PRIMED:
            if self._last - last_id > self.max_id_jump:
                self._lose_sync(frame)
                self._refused_ids(f'snapshot {self._last} is far ahead of frame {first_id}..{last_id}; '
                                  f'snapshot discarded')
                return None
            self._step(frame)
            return self._full() if self._state is SYNCED else None
        self._push(frame)
        return None

    def apply_snapshot(self, last_update_id: Union[int, str], bids: Iterable[Level],
                       asks: Iterable[Level], timestamp: Optional[float] = None) -> Optional[Emission]:
        """Load a REST snapshot (levels in any order); returns the full book if that syncs.

        While synced a snapshot is not needed and is ignored (counted in ``snapshots_ignored``):
        it is typically the late answer to a duplicate request. While primed, a new snapshot
        replaces the one held.
        """
        self._requested = False
        if self._state is SYNCED:
            self.snapshots_ignored += 1
            return None
        last = int(last_update_id)
        if not 0 <= last <= MAX_ID:
            self._refused_ids(f'snapshot lastUpdateId {last} is not a possible update id; snapshot discarded')
            return None
        if self._buffer and last - self._buffer[-1][1] > self.max_id_jump:
            self._refused_ids(f'snapshot lastUpdateId {last} is far ahead of the newest frame '
                              f'(u={self._buffer[-1][1]}); snapshot discarded')
            return None
        self._load(bids, asks)
        self._last = last
        self._last_ts = None
        self.snapshot_timestamp = timestamp
        self._state = PRIMED
        if not self._buffer:
            return None
        frames = sorted(self._buffer, key=_by_last_id)
        self._buffer.clear()
        for frame in frames:
            self._step(frame)
        return self._full() if self._state is SYNCED else None

    # ------------------------------------------------------------------ internals

    def _drop_book(self) -> None:
        self._book: Optional[records.OrderBook] = None
        self._bids = {}
        self._asks = {}
        self._bid_px: List[Decimal] = []
        self._ask_px: List[Decimal] = []

    def _push(self, frame: _Frame) -> None:
        buffer = self._buffer
        if buffer and abs(frame[1] - buffer[-1][1]) > self.max_id_jump:
            # One of them is corrupt, or the exchange renumbered: trust the newest frame. A bogus
            # frame is then gone with the next real one.
            self._refused_ids(f'frame {frame[0]}..{frame[1]} is far from the buffered frames '
                              f'(newest u={buffer[-1][1]}); {len(buffer)} buffered frames discarded')
            buffer.clear()
        if len(buffer) >= self.buffer_limit:
            buffer.popleft()
            self.buffer_overflows += 1
        buffer.append(frame)
        self._wanted = True

    def _admissible(self, frame: _Frame) -> bool:
        """Checks of a frame met out of sync (not the hot path): plausible ids, valid levels."""
        if not self._possible_ids(frame):
            self._refused_ids(f'frame {frame[0]}..{frame[1]} does not span a possible range of update ids; '
                              f'dropped')
            return False
        return self._valid_levels(frame)

    def _possible_ids(self, frame: _Frame) -> bool:
        first_id, last_id = frame[0], frame[1]
        return 0 <= first_id <= MAX_ID and 0 <= last_id <= MAX_ID and last_id - first_id <= self.max_id_jump

    def _valid_levels(self, frame: _Frame) -> bool:
        """Every price and size of the frame in range; otherwise the frame is counted as invalid."""
        first_id, last_id, bids, asks, _ = frame
        if all(_valid_level(level) for level in (*bids, *asks)):
            return True
        self._invalid(first_id, last_id, bids, asks)
        return False

    def _invalid(self, first_id: int, last_id: int, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Drop a frame whose levels are not finite numbers in range; the next frame finds the gap."""
        self.invalid_levels += 1
        if self.on_invalid is not None:
            self.on_invalid()
        bad = next((level for level in (*bids, *asks) if not _valid_level(level)), None)
        self._warn(f'depth frame {first_id}..{last_id} dropped: level {_show(bad)} is not a finite '
                   f'price > 0 and size >= 0 below {_LIMIT}')
        return None

    def _implausible(self, frame: _Frame, why: str) -> None:
        """A synced book met a frame whose ids cannot follow it: resynchronise. The frame is kept
        (it may be the exchange's new numbering) if it passes the out-of-sync checks."""
        self.gaps += 1
        last = self._last
        self._lose_sync(None)
        self.last_break = (last, frame[0], frame[1])
        possible = self._possible_ids(frame)
        self._refused_ids(f'{why}: implausible jump (more than {self.max_id_jump} ids); book discarded, '
                          f'resynchronising' + ('' if possible else '; frame dropped'))
        if possible and self._valid_levels(frame):
            self._push(frame)
        return None

    def _refused_ids(self, message: str) -> None:
        self.implausible_ids += 1
        self._wanted = True
        self._warn(message)

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < _LOG_INTERVAL_S:
            self._suppressed += 1
            return
        more = f' ({self._suppressed} more since the last report)' if self._suppressed else ''
        self._logged_at = now
        self._suppressed = 0
        LOG.warning('%s %s: %s%s', self.exchange, self.symbol, message, more)

    def _lose_sync(self, frame: Optional[_Frame]) -> None:
        """Discard the book; buffer ``frame`` (if any) and want a new snapshot.

        ``last_break`` keeps (last id applied, ``U``, ``u`` of the frame that did not follow it);
        ``U`` and ``u`` are None when the book crossed instead.
        """
        self.last_break = (self._last, None, None) if frame is None else (self._last, frame[0], frame[1])
        if self._state is SYNCED:
            self.resyncs += 1
        self._state = BUFFERING
        self._last = None
        self._last_ts = None
        self._requested = False
        self._wanted = True
        self._drop_book()
        if frame is not None:
            self._push(frame)

    def _step(self, frame: _Frame) -> None:
        """Process one frame without emitting (primed state, or replaying the buffer)."""
        state = self._state
        if state is BUFFERING:
            self._push(frame)
            return
        first_id, last_id, bids, asks, timestamp = frame
        last = self._last
        if last_id <= last:
            self.stale_dropped += 1
            return
        if first_id > last + 1:
            if state is PRIMED:
                self.snapshots_too_old += 1
            else:
                self.gaps += 1
            self._lose_sync(frame)
            return
        _set_levels(self._bids, self._bid_px, bids)
        _set_levels(self._asks, self._ask_px, asks)
        self._last = last_id
        self._last_ts = timestamp
        self.applied += 1
        self._state = SYNCED
        if self.check_crossed and self._bid_px and self._ask_px and self._bid_px[-1] >= self._ask_px[0]:
            self.crossed += 1
            self._lose_sync(None)

    def _load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        bid_levels = {}
        for price, qty in bids:
            if qty:
                bid_levels[price] = qty
            else:
                bid_levels.pop(price, None)
        ask_levels = {}
        for price, qty in asks:
            if qty:
                ask_levels[price] = qty
            else:
                ask_levels.pop(price, None)
        self._bid_px = sorted(bid_levels)
        self._ask_px = sorted(ask_levels)
        if self.max_depth:
            # Full depth in plain dicts; the emitted book (top N) is built on sync.
            self._book = None
            self._bids = bid_levels
            self._asks = ask_levels
        else:
            # The emitted book's own SortedDicts hold the levels: no second copy.
            book = records.OrderBook(self.exchange, self.symbol, bids=bid_levels, asks=ask_levels)
            self._book = book
            self._bids = book.book.bids
            self._asks = book.book.asks

    def _full(self) -> Emission:
        """The full-book emission that follows a (re)sync."""
        depth = self.max_depth
        if depth:
            bids = self._bids
            asks = self._asks
            self._book = records.OrderBook(
                self.exchange, self.symbol, max_depth=depth,
                bids={price: bids[price] for price in self._bid_px[-depth:]},
                asks={price: asks[price] for price in self._ask_px[:depth]})
        return _emission(Emission, (self._book, None, self._last, self._last_ts))

    def _apply_top(self, bids: Sequence[Level], asks: Sequence[Level]) -> Tuple[Optional[Delta], bool]:
        """Apply a frame to the full book; return (change of the visible top N, level added).

        Prices are kept ascending on both sides, so the best bid is last and the best ask first.
        Visible changes are collected per price (last one wins) and committed to the emitted
        book at the end, where "was it visible before" is still answerable.
        """
        depth = self.max_depth
        book = self._book.book
        grew = False
        bid_delta = []
        if bids:
            levels = self._bids
            prices = self._bid_px
            changes = {}
            for price, qty in bids:
                if qty:
                    if price in levels:
                        levels[price] = qty
                        if len(prices) <= depth or price >= prices[-depth]:
                            changes[price] = qty
                        continue
                    grew = True
                    i = bisect_left(prices, price)
                    prices.insert(i, price)
                    levels[price] = qty
                    size = len(prices)
                    if size - i <= depth:
                        changes[price] = qty
                        if size > depth:
                            changes[prices[size - 1 - depth]] = _ZERO
                elif price in levels:
                    i = bisect_left(prices, price)
                    size = len(prices)
                    del prices[i]
                    del levels[price]
                    if size - 1 - i < depth:
                        changes[price] = _ZERO
                        if size > depth:
                            entering = prices[size - 1 - depth]
                            changes[entering] = levels[entering]
            if changes:
                visible = book.bids
                append = bid_delta.append
                for price, qty in changes.items():
                    if qty:
                        visible[price] = qty
                        append((price, qty))
                    elif price in visible:
                        del visible[price]
                        append((price, _ZERO))
        ask_delta = []
        if asks:
            levels = self._asks
            prices = self._ask_px
            changes = {}
            for price, qty in asks:
                if qty:
                    if price in levels:
                        levels[price] = qty
                        if len(prices) <= depth or price <= prices[depth - 1]:
                            changes[price] = qty
                        continue
                    grew = True
                    i = bisect_left(prices, price)
                    prices.insert(i, price)
                    levels[price] = qty
                    if i < depth:
                        changes[price] = qty
                        if len(prices) > depth:
                            changes[prices[depth]] = _ZERO
                elif price in levels:
                    i = bisect_left(prices, price)
                    del prices[i]
                    del levels[price]
                    if i < depth:
                        changes[price] = _ZERO
                        if len(prices) >= depth:
                            entering = prices[depth - 1]
                            changes[entering] = levels[entering]
            if changes:
                visible = book.asks
                append = ask_delta.append
                for price, qty in changes.items():
                    if qty:
                        visible[price] = qty
                        append((price, qty))
                    elif price in visible:
                        del visible[price]
                        append((price, _ZERO))
        if bid_delta or ask_delta:
            return {BID: bid_delta, ASK: ask_delta}, grew
        return None, grew


def _set_levels(levels, prices: List[Decimal], updates: Iterable[Level]) -> None:
    """Apply absolute quantities to one side (no delta): used before the first emission."""
    for price, qty in updates:
        if qty:
            if price not in levels:
                prices.insert(bisect_left(prices, price), price)
            levels[price] = qty
        elif price in levels:
            del levels[price]
            del prices[bisect_left(prices, price)]


def _valid_level(level: Any) -> bool:
    try:
        price, qty = level
        return price.is_finite() and _ZERO < price < _LIMIT and _ZERO <= qty < _LIMIT
    except (ArithmeticError, AttributeError, TypeError, ValueError):
        return False


def _show(level: Any) -> str:
    """A level for a log line, bounded (a hostile value may be long)."""
    text = repr(level if not isinstance(level, tuple) else tuple(str(v) for v in level))
    return text if len(text) <= 80 else text[:77] + '...'
