"""The simulator's market model: order books, trades and every public market event, without I/O.

Use ``MarketModel`` wherever a deterministic fake Backpack market is needed. It is pure: no
asyncio, no sockets, no wall clock. Time comes from the injected ``clock`` (µs since the epoch);
the market moves only when ``step()``, ``run_updates()`` or ``execute_taker()`` is called, and
the periodic streams (ticker, markPrice, openInterest, klines, aggregated depth) are produced
when ``advance()`` is called. Every call appends events to an outbox that the owner empties
with ``drain()``. The same seed, the same calls and the same clock readings give the same
events, byte for byte once rendered.

The book follows the emulator contract of backpack-api.md §9: one gap-free integer sequence per
market; each level mutation takes the next id and yields a realtime ``DepthUpdate`` with
``first_id == last_id`` and the level's new absolute quantity (zero deletes it); the 200/600/
1000 ms variants coalesce a window into one update (first id, last id, one entry per price with
its final quantity); trades consume resting liquidity level by level, so trades and depth always
agree; a ``BookTop`` carries the id of the update that changed the top of book.

The truth log keeps every trade printed (``trades()``) and enough undo history to rebuild the
book at a recent sequence (``book_at()``); ``book_snapshot()`` is the book at the current id.

Markets beyond the default ones come in through ``extra_markets`` (object and parameters, see
``markets.generated_market``) or, while running, ``add_market()``. ``close_market()`` takes a
market out of trading (state ``Closed``: no more events, a frozen book and log that still answer)
and ``reopen_market()`` brings it back with its sequence carrying on.
"""
from __future__ import annotations

import bisect
import calendar
import random
from collections import deque
from datetime import datetime, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import Callable, Iterable, NamedTuple, Optional, Union

from cryptofeed.exchanges.backpack.simulator import markets as _markets

__all__ = [
    'KLINE_INTERVALS', 'DEPTH_WINDOWS_MS', 'DAY_US', 'DepthUpdate', 'TradePrint', 'BookTop', 'TickerStats',
    'TickerUpdate', 'KlineUpdate', 'KlineRow', 'MarkPriceUpdate', 'OpenInterestUpdate', 'LiquidationEvent',
    'Fill', 'TradeRecord', 'BookSnapshot', 'Event', 'MarketModel', 'kline_bucket', 'format_naive',
]

#: Kline intervals of backpack-api.md §3.5, in the exchange's spelling.
KLINE_INTERVALS: tuple[str, ...] = (
    '1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1month',
)
#: Windows of the aggregated depth streams ``depth.<ms>ms.<symbol>``.
DEPTH_WINDOWS_MS: tuple[int, ...] = (200, 600, 1000)
DAY_US = 86_400_000_000

_FIXED_SECONDS = {
    '1s': 1, '1m': 60, '3m': 180, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '2h': 7200, '4h': 14400,
    '6h': 21600, '8h': 28800, '12h': 43200, '1d': 86400, '3d': 259200,
}
_WEEK = 604800
_MONDAY_OFFSET = 4 * 86400          # 1970-01-05 was a Monday; weeks start on Monday 00:00 UTC
_ZERO = Decimal(0)
_MIN_LEVELS = 20                    # per side; below this the market maker adds depth
_MAX_LEVELS = 60                    # per side; above this the farthest level is cancelled
_INITIAL_LEVELS = 30


# --------------------------------------------------------------------------------------------
# Events (what the server renders to the wire). Prices and sizes are Decimal, times are µs.
# Named tuples: they are built on the hot path; dispatch on ``type(event)``.
# --------------------------------------------------------------------------------------------

class DepthUpdate(NamedTuple):
    """A depth frame: levels with absolute quantities. ``window_ms`` 0 = realtime ``depth.<S>``."""
    symbol: str
    first_id: int
    last_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    engine_us: int
    window_ms: int = 0


class TradePrint(NamedTuple):
    """One trade. ``origin`` is ``market`` (simulated flow), ``liquidation`` or ``account``."""
    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    buyer_is_maker: bool
    buy_order_id: str
    sell_order_id: str
    engine_us: int
    origin: str = 'market'


class BookTop(NamedTuple):
    """Best bid/ask after the update ``update_id`` changed them."""
    symbol: str
    update_id: int
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal
    engine_us: int


class TickerStats(NamedTuple):
    """Rolling statistics over a window (24 h unless asked otherwise)."""
    first_price: Decimal
    last_price: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int


class TickerUpdate(NamedTuple):
    symbol: str
    stats: TickerStats
    engine_us: int


class KlineRow(NamedTuple):
    """One candle; ``open``..``close`` are None when no trade happened in it."""
    start_s: int
    end_s: int
    open: Optional[Decimal]
    high: Optional[Decimal]
    low: Optional[Decimal]
    close: Optional[Decimal]
    volume: Decimal
    quote_volume: Decimal
    trades: int


class KlineUpdate(NamedTuple):
    symbol: str
    interval: str
    row: KlineRow
    closed: bool
    engine_us: int


class MarkPriceUpdate(NamedTuple):
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    funding_rate: Decimal
    next_funding_ms: int
    engine_us: int


class OpenInterestUpdate(NamedTuple):
    symbol: str
    open_interest: Decimal
    engine_us: int


class LiquidationEvent(NamedTuple):
    """A liquidation order that traded; ``side`` is the liquidation order's side, Bid or Ask."""
    symbol: str
    price: Decimal
    quantity: Decimal
    side: str
    engine_us: int


class Fill(NamedTuple):
    """One match of a taker order sent through ``execute_taker``."""
    price: Decimal
    quantity: Decimal
    trade_id: int
    ts_us: int


class TradeRecord(NamedTuple):
    """A trade in the truth log."""
    trade_id: int
    price: Decimal
    quantity: Decimal
    buyer_is_maker: bool
    ts_us: int


class BookSnapshot(NamedTuple):
    """The book as of ``sequence``; both sides best first."""
    symbol: str
    sequence: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    engine_us: int


Event = Union[DepthUpdate, TradePrint, BookTop, TickerUpdate, KlineUpdate, MarkPriceUpdate, OpenInterestUpdate,
              LiquidationEvent]


# --------------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------------

def kline_bucket(interval: str, ts_s: int) -> tuple[int, int]:
    """(start, end) in epoch seconds of the ``interval`` candle containing ``ts_s`` (UTC)."""
    size = _FIXED_SECONDS.get(interval)
    if size is not None:
        start = ts_s - ts_s % size
        return start, start + size
    if interval == '1w':
        start = ts_s - (ts_s - _MONDAY_OFFSET) % _WEEK
        return start, start + _WEEK
    if interval == '1month':
        dt = datetime.fromtimestamp(ts_s, tz=timezone.utc)
        start = calendar.timegm((dt.year, dt.month, 1, 0, 0, 0))
        year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
        return start, calendar.timegm((year, month, 1, 0, 0, 0))
    raise ValueError(f'unknown kline interval {interval!r}')


def format_naive(ts_s: int, sep: str = 'T') -> str:
    """Naive UTC datetime text, ``2025-08-06T22:00:00`` (or with a space for ``sep=' '``)."""
    return datetime.fromtimestamp(ts_s, tz=timezone.utc).strftime(f'%Y-%m-%d{sep}%H:%M:%S')


_tuple_new = tuple.__new__


def _trade_ts(rec: TradeRecord) -> int:
    return rec.ts_us


def _sample_ts(sample: tuple) -> int:
    return sample[0]


# --------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------

class _AggWindow:
    __slots__ = ('window_ms', 'size_us', 'first', 'last', 'end_us', 'bids', 'asks', 'engine_us')

    def __init__(self, window_ms: int):
        self.window_ms = window_ms
        self.size_us = window_ms * 1000
        self.first = 0
        self.last = 0
        self.end_us = 0
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.engine_us = 0


class _Rolling:
    """Volume, count, first/high/low over the trades of the last ``window_us``."""
    __slots__ = ('window_us', 'start', 'volume', 'quote_volume', 'count', 'maxq', 'minq')

    def __init__(self, window_us: int):
        self.window_us = window_us
        self.start = 0
        self.volume = _ZERO
        self.quote_volume = _ZERO
        self.count = 0
        self.maxq: deque[tuple[int, Decimal]] = deque()
        self.minq: deque[tuple[int, Decimal]] = deque()

    def add(self, idx: int, price: Decimal, qty: Decimal) -> None:
        self.volume += qty
        self.quote_volume += price * qty
        self.count += 1
        maxq, minq = self.maxq, self.minq
        while maxq and maxq[-1][1] <= price:
            maxq.pop()
        maxq.append((idx, price))
        while minq and minq[-1][1] >= price:
            minq.pop()
        minq.append((idx, price))

    def evict(self, trades: list[TradeRecord], now_us: int) -> None:
        cutoff = now_us - self.window_us
        start = self.start
        while start < len(trades) and trades[start].ts_us <= cutoff:
            rec = trades[start]
            self.volume -= rec.quantity
            self.quote_volume -= rec.price * rec.quantity
            self.count -= 1
            start += 1
        self.start = start
        while self.maxq and self.maxq[0][0] < start:
            self.maxq.popleft()
        while self.minq and self.minq[0][0] < start:
            self.minq.popleft()


_MAX_QUIET_CLOSES = 60  # closes of trade-less intervals emitted per advance() before skipping ahead


class _KlineTracker:
    """Folds new trades of one market into the current candle of one interval."""
    __slots__ = ('interval', 'idx', 'start_s', 'end_s', 'open', 'high', 'low', 'close', 'volume', 'quote_volume',
                 'count', 'dirty', 'last_emit_us')

    def __init__(self, interval: str, now_us: int, trades: list[TradeRecord]):
        self.interval = interval
        self.start_s, self.end_s = kline_bucket(interval, now_us // 1_000_000)
        self.idx = bisect.bisect_left(trades, self.start_s * 1_000_000, key=_trade_ts)
        self._reset()
        self.last_emit_us = 0

    def _reset(self) -> None:
        self.open = self.high = self.low = self.close = None
        self.volume = _ZERO
        self.quote_volume = _ZERO
        self.count = 0
        self.dirty = False

    def row(self) -> KlineRow:
        return KlineRow(self.start_s, self.end_s, self.open, self.high, self.low, self.close, self.volume,
                        self.quote_volume, self.count)

    def advance(self, symbol: str, trades: list[TradeRecord], now_us: int, out: list) -> None:
        quiet = 0
        while True:
            end_us = self.end_s * 1_000_000
            while self.idx < len(trades) and trades[self.idx].ts_us < end_us:
                rec = trades[self.idx]
                self.idx += 1
                price = rec.price
                if self.open is None:
                    self.open = self.high = self.low = price
                elif price > self.high:
                    self.high = price
                elif price < self.low:
                    self.low = price
                self.close = price
                self.volume += rec.quantity
                self.quote_volume += price * rec.quantity
                self.count += 1
                self.dirty = True
            if now_us < end_us:
                if self.dirty and now_us - self.last_emit_us >= 1_000_000:
                    out.append(KlineUpdate(symbol, self.interval, self.row(), False, now_us))
                    self.dirty = False
                    self.last_emit_us = now_us
                return
            # Every interval closes with a final frame, a quiet one too: the exchange then sends
            # o/h/l/c and v all null with n 0 (backpack-api.md 8.1).
            out.append(KlineUpdate(symbol, self.interval, self.row(), True, now_us))
            self.last_emit_us = now_us
            quiet += not self.count
            start_s = self.end_s
            if quiet >= _MAX_QUIET_CLOSES:
                # The clock leapt (a paused or fake clock): resume at the current candle rather
                # than flood subscribers with the close of every interval in between.
                nxt = trades[self.idx].ts_us if self.idx < len(trades) else now_us
                start_s = max(nxt, end_us) // 1_000_000
            self.start_s, self.end_s = kline_bucket(self.interval, start_s)
            self._reset()


class _Market:
    """Book, counters, truth log and derived state of one symbol."""
    __slots__ = (
        'symbol', 'info', 'tick', 'step', 'min_qty', 'min_price', 'is_perp', 'typical_units', 'min_units',
        'bids', 'bid_px', 'asks', 'ask_px', 'seq', 'undo', 'undo_floor', 'trade_id', 'trades', 'rolling',
        'top', 'agg', 'last_price', 'mark', 'index', 'index_exp', 'funding_rate', 'funding_bound',
        'funding_interval_ms', 'next_funding_ms', 'funding_history', 'open_interest', 'oi_floor', 'klines',
        'mark_samples', 'engine_us', 'open',
    )


class MarketModel:
    """A deterministic simulated exchange market for the symbols given (all defaults when None).

    ``clock`` returns the current time in µs; ``seed`` fixes every random choice. Cadences are in
    µs: ticker and markPrice every second and openInterest every minute by default, as the
    exchange does. ``undo_limit`` bounds how far back ``book_at()`` can go per market; the trade
    log is kept whole (roughly 200 bytes a trade), since ``/trades/history`` reaches back to the
    first trade.
    """

    def __init__(self, symbols: Optional[Iterable[str]] = None, *, seed: int = 0,
                 clock: Callable[[], int], ticker_interval_us: int = 1_000_000,
                 mark_interval_us: int = 1_000_000, open_interest_interval_us: int = 60_000_000,
                 liquidation_probability: float = 0.02, undo_limit: int = 50_000,
                 extra_markets: Iterable[tuple[dict, '_markets.SimParams']] = ()):
        self._clock = clock
        self._rng = random.Random(seed)
        self._aux = random.Random(seed * 7919 + 17)
        self._outbox: list[Event] = []
        self._order_id = 5_100_000_000 + self._rng.randrange(100_000_000)
        self._liq_prob = liquidation_probability
        self._ticker_every = ticker_interval_us
        self._mark_every = mark_interval_us
        self._oi_every = open_interest_interval_us
        self._undo_limit = undo_limit
        now = clock()
        self._next_ticker = (now // ticker_interval_us + 1) * ticker_interval_us
        self._next_mark = (now // mark_interval_us + 1) * mark_interval_us
        self._next_oi = (now // open_interest_interval_us + 1) * open_interest_interval_us
        self._markets: dict[str, _Market] = {}
        for info in _markets.market_objects(symbols):
            self._markets[info['symbol']] = self._build(info, _markets.sim_params(info['symbol']), now)
        for info, params in extra_markets:
            if info['symbol'] in self._markets:
                raise ValueError(f'market {info["symbol"]!r} given twice')
            self._markets[info['symbol']] = self._build(info, params, now)
        if not self._markets:
            raise ValueError('a market model needs at least one market')
        # The open markets, in listing order: the ones that trade and produce periodic events.
        self._order = list(self._markets.values())

    # ---------------------------------------------------------------- construction

    def _build(self, info: dict, params: '_markets.SimParams', now: int) -> _Market:
        rng = self._rng
        m = _Market()
        m.symbol = info['symbol']
        m.info = info
        m.tick = Decimal(info['filters']['price']['tickSize'])
        m.step = Decimal(info['filters']['quantity']['stepSize'])
        m.min_qty = Decimal(info['filters']['quantity']['minQuantity'])
        m.min_price = Decimal(info['filters']['price']['minPrice'])
        m.is_perp = info['marketType'] == 'PERP'
        m.typical_units = max(1, int(params.typical_quantity / m.step))
        m.min_units = max(1, int(m.min_qty / m.step))
        m.bids, m.asks = {}, {}
        m.bid_px, m.ask_px = [], []
        m.seq = 1_000_000_000 + rng.randrange(3_000_000_000)
        m.undo = deque(maxlen=self._undo_limit)
        m.undo_floor = m.seq
        m.trade_id = 100_000_000 + rng.randrange(300_000_000)
        m.trades = []
        m.rolling = _Rolling(DAY_US)
        m.agg = []
        m.engine_us = now
        m.open = True
        start = params.start_price.quantize(m.tick)
        m.last_price = start
        price = start
        for _ in range(_INITIAL_LEVELS):
            m.bids[price] = self._rand_qty(m)
            m.bid_px.append(price)
            price -= m.tick * (1 + (rng.random() < 0.2))
        m.bid_px.reverse()
        price = start + m.tick
        for _ in range(_INITIAL_LEVELS):
            m.asks[price] = self._rand_qty(m)
            m.ask_px.append(price)
            price += m.tick * (1 + (rng.random() < 0.2))
        m.top = self._top(m)
        m.klines = {}
        m.mark_samples = []
        m.funding_history = []
        if m.is_perp:
            m.index_exp = Decimal(1).scaleb(-params.index_decimals)
            m.mark = start
            m.index = start.quantize(m.index_exp)
            m.funding_rate = Decimal('0.0000125')
            m.funding_bound = Decimal(info['fundingRateUpperBound']) / 10000
            m.funding_interval_ms = info['fundingInterval']
            now_ms = now // 1000
            m.next_funding_ms = (now_ms // m.funding_interval_ms + 1) * m.funding_interval_ms
            m.open_interest = params.open_interest
            m.oi_floor = (params.open_interest / 10).quantize(m.step, rounding=ROUND_FLOOR)
            end = m.next_funding_ms - m.funding_interval_ms
            for i in range(48):
                rate = (Decimal(self._aux.randint(-40, 160)) * Decimal('0.0000001')).quantize(Decimal('1e-7'))
                m.funding_history.append((end - i * m.funding_interval_ms, rate))
            m.funding_history.reverse()
        else:
            m.index_exp = m.tick
            m.mark = m.index = start
            m.funding_rate = _ZERO
            m.funding_bound = _ZERO
            m.funding_interval_ms = 0
            m.next_funding_ms = 0
            m.open_interest = _ZERO
            m.oi_floor = _ZERO
        return m

    # ---------------------------------------------------------------- listing and delisting

    def add_market(self, info: dict, params: '_markets.SimParams') -> dict:
        """List a new market now (``info`` is its ``/api/v1/markets`` object, kept by reference and
        forced ``Open``); it trades from the next ``step()`` on. ValueError if the symbol exists."""
        symbol = info['symbol']
        if symbol in self._markets:
            raise ValueError(f'market {symbol!r} is already listed')
        info['orderBookState'] = 'Open'
        m = self._build(info, params, self._clock())
        self._markets[symbol] = m
        self._order.append(m)
        return m.info

    def close_market(self, symbol: str) -> dict:
        """Close an open market: its ``orderBookState`` becomes ``Closed``, its book and trade log
        freeze and it produces no more events (pending aggregated depth is flushed first). It stays
        listed: lookups, snapshots and history still answer. ValueError if it is already closed."""
        m = self._m(symbol)
        if not m.open:
            raise ValueError(f'market {symbol!r} is already closed')
        for w in m.agg:
            if w.first:
                self._flush_window(m, w)
        self._order.remove(m)
        m.open = False
        m.info['orderBookState'] = 'Closed'
        return m.info

    def reopen_market(self, symbol: str) -> dict:
        """Open a closed market again: it trades from the book it closed with, its sequence and
        trade ids carry on. ValueError if it is open."""
        m = self._m(symbol)
        if m.open:
            raise ValueError(f'market {symbol!r} is already open')
        m.open = True
        m.info['orderBookState'] = 'Open'
        self._order.append(m)
        return m.info

    def is_open(self, symbol: str) -> bool:
        """Whether ``symbol`` is trading (False once closed; KeyError when not listed)."""
        return self._m(symbol).open

    # ---------------------------------------------------------------- lookups

    @property
    def symbols(self) -> list[str]:
        return list(self._markets)

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._markets

    def _m(self, symbol: str) -> _Market:
        try:
            return self._markets[symbol]
        except KeyError:
            raise KeyError(f'unknown market {symbol!r}') from None

    def market(self, symbol: str) -> dict:
        """The ``/api/v1/market`` object of ``symbol`` (KeyError when not simulated)."""
        return self._m(symbol).info

    def markets(self) -> list[dict]:
        """Every listed market's object, open or closed, in listing order."""
        return [m.info for m in self._markets.values()]

    def is_perp(self, symbol: str) -> bool:
        return self._m(symbol).is_perp

    def tick_size(self, symbol: str) -> Decimal:
        return self._m(symbol).tick

    def step_size(self, symbol: str) -> Decimal:
        return self._m(symbol).step

    def min_quantity(self, symbol: str) -> Decimal:
        return self._m(symbol).min_qty

    def best_bid(self, symbol: str) -> Optional[Decimal]:
        m = self._m(symbol)
        return m.bid_px[-1] if m.bid_px else None

    def best_ask(self, symbol: str) -> Optional[Decimal]:
        m = self._m(symbol)
        return m.ask_px[0] if m.ask_px else None

    def last_price(self, symbol: str) -> Decimal:
        return self._m(symbol).last_price

    def mark_price(self, symbol: str) -> Decimal:
        """Perps: the last published mark. Spot: the mid price (last trade if a side is empty)."""
        m = self._m(symbol)
        if m.is_perp:
            return m.mark
        return self._mid(m)

    def index_price(self, symbol: str) -> Decimal:
        return self._m(symbol).index

    def funding_rate(self, symbol: str) -> Decimal:
        return self._m(symbol).funding_rate

    def next_funding_ms(self, symbol: str) -> int:
        return self._m(symbol).next_funding_ms

    def funding_history(self, symbol: str) -> list[tuple[int, Decimal]]:
        """Settled funding intervals, newest first: (interval end ms, rate)."""
        return list(reversed(self._m(symbol).funding_history))

    def open_interest(self, symbol: str) -> Decimal:
        return self._m(symbol).open_interest

    def sequence(self, symbol: str) -> int:
        return self._m(symbol).seq

    def engine_us(self, symbol: str) -> int:
        """Engine time of the last mutation of ``symbol``."""
        return self._m(symbol).engine_us

    # ---------------------------------------------------------------- truth

    def book_snapshot(self, symbol: str, limit: Optional[int] = None) -> BookSnapshot:
        """The book at the current sequence, both sides best first, at most ``limit`` levels each."""
        m = self._m(symbol)
        bid_px = m.bid_px[::-1] if limit is None else m.bid_px[:-limit - 1:-1]
        ask_px = m.ask_px if limit is None else m.ask_px[:limit]
        return BookSnapshot(symbol, m.seq, [(p, m.bids[p]) for p in bid_px], [(p, m.asks[p]) for p in ask_px],
                            m.engine_us)

    def book_at(self, symbol: str, sequence: int) -> BookSnapshot:
        """The book as it was once update ``sequence`` had been applied (ValueError if too old)."""
        m = self._m(symbol)
        if sequence > m.seq:
            raise ValueError(f'sequence {sequence} is in the future (current {m.seq})')
        undo = m.undo
        floor = undo[0][0] - 1 if len(undo) == undo.maxlen else m.undo_floor
        if sequence < floor:
            raise ValueError(f'sequence {sequence} is older than the kept history (from {floor})')
        bids, asks = dict(m.bids), dict(m.asks)
        for uid, is_bid, price, prev in reversed(m.undo):
            if uid <= sequence:
                break
            side = bids if is_bid else asks
            if prev is None:
                side.pop(price, None)
            else:
                side[price] = prev
        return BookSnapshot(symbol, sequence, sorted(bids.items(), reverse=True), sorted(asks.items()), m.engine_us)

    def trades(self, symbol: str) -> list[TradeRecord]:
        """Every trade printed in ``symbol``, oldest first."""
        return list(self._m(symbol).trades)

    def trade_count(self, symbol: str) -> int:
        return len(self._m(symbol).trades)

    def recent_trades(self, symbol: str, limit: int, offset: int = 0) -> list[TradeRecord]:
        """Newest first: skip the ``offset`` most recent trades, then return up to ``limit``."""
        trades = self._m(symbol).trades
        end = max(0, len(trades) - offset)
        return trades[max(0, end - limit):end][::-1]

    # ---------------------------------------------------------------- statistics

    def ticker_stats(self, symbol: str, window_us: int = DAY_US, now_us: Optional[int] = None) -> TickerStats:
        """Statistics over the last ``window_us`` (24 h by default) ending at ``now_us`` (the clock)."""
        m = self._m(symbol)
        now = self._clock() if now_us is None else now_us
        trades = m.trades
        if window_us == DAY_US:
            r = m.rolling
            r.evict(trades, now)
            if r.count == 0:
                return TickerStats(m.last_price, m.last_price, m.last_price, m.last_price, _ZERO, _ZERO, 0)
            return TickerStats(trades[r.start].price, trades[-1].price, r.maxq[0][1], r.minq[0][1], r.volume,
                               r.quote_volume, r.count)
        start = bisect.bisect_right(trades, now - window_us, key=_trade_ts)
        window = trades[start:]
        if not window:
            return TickerStats(m.last_price, m.last_price, m.last_price, m.last_price, _ZERO, _ZERO, 0)
        prices = [rec.price for rec in window]
        return TickerStats(prices[0], prices[-1], max(prices), min(prices), sum((r.quantity for r in window), _ZERO),
                           sum((r.price * r.quantity for r in window), _ZERO), len(window))

    def kline_rows(self, symbol: str, interval: str, start_s: int, end_s: int, price_type: str = 'Last',
                   max_rows: int = 1000) -> list[KlineRow]:
        """Candles overlapping [start_s, end_s), oldest first, from the truth log.

        ``Last`` candles come from trades; ``Mark`` and ``Index`` from the once-per-second mark
        samples of perpetuals (volume 0). Buckets before the model started are not listed.
        """
        m = self._m(symbol)
        if interval not in KLINE_INTERVALS:
            raise ValueError(f'unknown kline interval {interval!r}')
        if price_type not in ('Last', 'Mark', 'Index'):
            raise ValueError(f'unknown priceType {price_type!r}')
        now_s = self._clock() // 1_000_000
        first_s = min(now_s, self._born_s(m))
        start_s = max(start_s, kline_bucket(interval, first_s)[0])
        end_s = min(end_s, now_s + 1)
        rows: list[KlineRow] = []
        if start_s >= end_s:
            return rows
        bucket_start, bucket_end = kline_bucket(interval, start_s)
        lo_us, hi_us = bucket_start * 1_000_000, end_s * 1_000_000 + DAY_US * 31
        if price_type == 'Last':
            i, j = (bisect.bisect_left(m.trades, t, key=_trade_ts) for t in (lo_us, hi_us))
            points = [(rec.ts_us, rec.price, rec.quantity) for rec in m.trades[i:j]]
        else:
            pos = 1 if price_type == 'Mark' else 2
            i, j = (bisect.bisect_left(m.mark_samples, t, key=_sample_ts) for t in (lo_us, hi_us))
            points = [(s[0], s[pos], None) for s in m.mark_samples[i:j]]
        idx = 0
        while bucket_start < end_s and len(rows) < max_rows:
            o = h = lo = c = None
            vol = qv = _ZERO
            count = 0
            limit_us = bucket_end * 1_000_000
            while idx < len(points) and points[idx][0] < limit_us:
                _, price, qty = points[idx]
                idx += 1
                if o is None:
                    o = h = lo = price
                else:
                    h = max(h, price)
                    lo = min(lo, price)
                c = price
                if qty is not None:
                    vol += qty
                    qv += price * qty
                    count += 1
            rows.append(KlineRow(bucket_start, bucket_end, o, h, lo, c, vol, qv, count))
            bucket_start, bucket_end = kline_bucket(interval, bucket_end)
        return rows

    def _born_s(self, m: _Market) -> int:
        if m.trades:
            return m.trades[0].ts_us // 1_000_000
        if m.mark_samples:
            return m.mark_samples[0][0] // 1_000_000
        return self._clock() // 1_000_000

    def watch_depth_window(self, symbol: str, window_ms: int) -> None:
        """Start producing aggregated ``DepthUpdate`` events of ``window_ms`` for ``symbol``; idempotent.

        Aggregation starts at the next update; it does not change the market itself.
        """
        m = self._m(symbol)
        if window_ms not in DEPTH_WINDOWS_MS:
            raise ValueError(f'depth windows are {DEPTH_WINDOWS_MS}, not {window_ms}')
        if all(w.window_ms != window_ms for w in m.agg):
            m.agg.append(_AggWindow(window_ms))

    def watch_kline(self, symbol: str, interval: str) -> None:
        """Start producing ``KlineUpdate`` events for (symbol, interval); idempotent."""
        m = self._m(symbol)
        if interval not in KLINE_INTERVALS:
            raise ValueError(f'unknown kline interval {interval!r}')
        if interval not in m.klines:
            m.klines[interval] = _KlineTracker(interval, self._clock(), m.trades)

    # ---------------------------------------------------------------- market activity

    def drain(self) -> list[Event]:
        """Every event produced since the last call, in order."""
        out = self._outbox
        self._outbox = []
        return out

    def run_updates(self, count: int) -> int:
        """Run simulated activity until at least ``count`` sequence ids were used; return how many."""
        used = 0
        while used < count and self._order:
            used += self.step()
        return used

    def run_history(self, seconds: float, updates: int) -> int:
        """Fill the past: ``updates`` engine events spread evenly over the ``seconds`` before now,
        so trades, klines and the book have history with past timestamps (``/trades/history``,
        ``/klines``). Meant for start-up, before clients connect: the events are discarded, not
        streamed. Returns the number of depth ids used."""
        if seconds <= 0 or updates < 0:
            raise ValueError('seconds must be > 0 and updates >= 0')
        real_clock = self._clock
        now = real_clock()
        span = int(seconds * 1_000_000)
        cell = [now - span]
        self._clock = lambda: cell[0]
        used = 0
        try:
            for i in range(updates):
                cell[0] = now - span + span * i // max(1, updates)
                used += self.step()
        finally:
            self._clock = real_clock
        self.drain()
        return used

    def step(self) -> int:
        """One engine event on a random open market; returns the number of depth ids it used (0 when
        every market is closed)."""
        rng = self._rng
        order = self._order
        if not order:
            return 0
        m = order[int(rng.random() * len(order))]
        seq0 = m.seq
        ts = self._clock()
        m.engine_us = ts
        r = rng.random()
        if r < 0.5:
            self._maker_add(m, rng.random() < 0.5, ts)
        elif r < 0.8:
            self._cancel(m, rng.random() < 0.5, ts)
        else:
            is_buy = rng.random() < 0.5
            prices = m.ask_px if is_buy else m.bid_px
            top_units = int((m.asks[prices[0]] if is_buy else m.bids[prices[-1]]) / m.step) if prices else 1
            units = max(m.min_units, int(top_units * (rng.random() * 1.6 + 0.05)))
            origin = 'liquidation' if m.is_perp and rng.random() < self._liq_prob else 'market'
            self._take(m, is_buy, m.step * units, None, None, origin, ts)
        self._maintain(m, ts)
        return m.seq - seq0

    def skip_sequence(self, symbol: str, count: int) -> int:
        """Burn ``count`` ids without delivering them (a gap for clients); returns the new id."""
        if count < 1:
            raise ValueError('count must be >= 1')
        m = self._m(symbol)
        m.seq += count
        return m.seq

    def execute_taker(self, symbol: str, side: str, quantity: Optional[Decimal], limit_price: Optional[Decimal],
                      quote_quantity: Optional[Decimal] = None) -> list[Fill]:
        """Match an incoming taker order against the book, exactly like simulated flow does.

        ``side`` is ``Bid`` (buy, consumes asks) or ``Ask`` (sell, consumes bids). Give
        ``quantity`` (base) or ``quote_quantity`` (spend at most this much quote); an optional
        ``limit_price`` stops the walk at that price. Each matched level prints a trade
        (origin ``account``) and a depth update; the sequence stays gap-free.
        """
        m = self._m(symbol)
        if side not in ('Bid', 'Ask'):
            raise ValueError(f'side must be Bid or Ask, not {side!r}')
        if (quantity is None) == (quote_quantity is None):
            raise ValueError('give exactly one of quantity and quote_quantity')
        ts = self._clock()
        m.engine_us = ts
        prints = self._take(m, side == 'Bid', quantity, limit_price, quote_quantity, 'account', ts)
        return [Fill(p.price, p.quantity, p.trade_id, p.engine_us) for p in prints]

    def advance(self, now_us: Optional[int] = None) -> None:
        """Produce the time-driven events due at ``now_us`` (the clock when None)."""
        now = self._clock() if now_us is None else now_us
        out = self._outbox
        for m in self._order:
            for w in m.agg:
                if w.first and now >= w.end_us:
                    self._flush_window(m, w)
        if now >= self._next_mark:
            self._next_mark = (now // self._mark_every + 1) * self._mark_every
            for m in self._order:
                if m.is_perp:
                    self._update_mark(m, now)
                    out.append(MarkPriceUpdate(m.symbol, m.mark, m.index, m.funding_rate, m.next_funding_ms, now))
        for m in self._order:
            if m.is_perp and now // 1000 >= m.next_funding_ms:
                m.funding_history.append((m.next_funding_ms, m.funding_rate))
                m.next_funding_ms = (now // 1000 // m.funding_interval_ms + 1) * m.funding_interval_ms
            for tracker in m.klines.values():
                tracker.advance(m.symbol, m.trades, now, out)
        if now >= self._next_ticker:
            self._next_ticker = (now // self._ticker_every + 1) * self._ticker_every
            for m in self._order:
                out.append(TickerUpdate(m.symbol, self.ticker_stats(m.symbol, now_us=now), now))
        if now >= self._next_oi:
            self._next_oi = (now // self._oi_every + 1) * self._oi_every
            for m in self._order:
                if m.is_perp:
                    out.append(OpenInterestUpdate(m.symbol, m.open_interest, now))

    # ---------------------------------------------------------------- internals

    def _rand_qty(self, m: _Market) -> Decimal:
        units = int(m.typical_units * self._rng.expovariate(1.0)) + m.min_units
        return m.step * units

    def _next_order_id(self) -> str:
        self._order_id += 1 + (self._order_id & 3)
        return str(self._order_id)

    @staticmethod
    def _top(m: _Market) -> Optional[tuple]:
        if not m.bid_px or not m.ask_px:
            return None
        bb, ba = m.bid_px[-1], m.ask_px[0]
        return bb, m.bids[bb], ba, m.asks[ba]

    def _mid(self, m: _Market) -> Decimal:
        if m.bid_px and m.ask_px:
            return ((m.bid_px[-1] + m.ask_px[0]) / 2).quantize(m.tick)
        return m.last_price

    def _set_level(self, m: _Market, is_bid: bool, price: Decimal, qty: Decimal, ts: int) -> None:
        """The one place a level changes: book, sequence, undo log, depth/bookTicker events."""
        if is_bid:
            side, prices = m.bids, m.bid_px
        else:
            side, prices = m.asks, m.ask_px
        prev = side.get(price)
        if qty:
            if prev is None:
                bisect.insort(prices, price)
            side[price] = qty
        else:
            if prev is None:
                return
            del side[price]
            del prices[bisect.bisect_left(prices, price)]
        m.seq += 1
        uid = m.seq
        m.undo.append((uid, is_bid, price, prev))
        level = ((price, qty),)
        out = self._outbox
        # tuple.__new__ skips the named tuple's Python-level constructor on this hot path
        if is_bid:
            out.append(_tuple_new(DepthUpdate, (m.symbol, uid, uid, level, (), ts, 0)))
        else:
            out.append(_tuple_new(DepthUpdate, (m.symbol, uid, uid, (), level, ts, 0)))
        for w in m.agg:
            if w.first:
                if ts >= w.end_us:
                    self._flush_window(m, w)
            if not w.first:
                w.first = uid
                w.end_us = (ts // w.size_us + 1) * w.size_us
            w.last = uid
            w.engine_us = ts
            if is_bid:
                w.bids[price] = qty
            else:
                w.asks[price] = qty
        old = m.top
        if old is None or (price >= old[0] if is_bid else price <= old[2]):
            top = self._top(m)
            if top is not None and top != old:
                out.append(BookTop(m.symbol, uid, top[0], top[1], top[2], top[3], ts))
            m.top = top

    def _flush_window(self, m: _Market, w: _AggWindow) -> None:
        self._outbox.append(DepthUpdate(m.symbol, w.first, w.last, tuple(sorted(w.bids.items())),
                                        tuple(sorted(w.asks.items())), w.engine_us, w.window_ms))
        w.first = 0
        w.bids = {}
        w.asks = {}

    def _maker_add(self, m: _Market, is_bid: bool, ts: int) -> None:
        rng = self._rng
        tick = m.tick
        best_bid = m.bid_px[-1] if m.bid_px else None
        best_ask = m.ask_px[0] if m.ask_px else None
        if is_bid:
            ref = best_bid if best_bid is not None else (best_ask - tick if best_ask is not None else m.last_price)
        else:
            ref = best_ask if best_ask is not None else (best_bid + tick if best_bid is not None else m.last_price)
        spread_ticks = int((best_ask - best_bid) / tick) if best_bid is not None and best_ask is not None else 2
        if spread_ticks > 1 and rng.random() < 0.12 + 0.04 * min(spread_ticks, 10):
            price = ref + tick if is_bid else ref - tick
        else:
            k = min(int(rng.expovariate(0.12)), 50)
            price = ref - tick * k if is_bid else ref + tick * k
        if price < m.min_price:
            price = m.min_price
        if is_bid and best_ask is not None and price >= best_ask:
            price = best_ask - tick
        if not is_bid and best_bid is not None and price <= best_bid:
            price = best_bid + tick
        if price < m.min_price:
            return
        side = m.bids if is_bid else m.asks
        self._set_level(m, is_bid, price, side.get(price, _ZERO) + self._rand_qty(m), ts)

    def _cancel(self, m: _Market, is_bid: bool, ts: int) -> None:
        prices = m.bid_px if is_bid else m.ask_px
        if len(prices) <= _MIN_LEVELS // 2:
            self._maker_add(m, is_bid, ts)
            return
        rng = self._rng
        price = prices[int(rng.random() * len(prices))]
        qty = (m.bids if is_bid else m.asks)[price]
        if rng.random() < 0.35:
            new = qty - qty
        else:
            units = int(qty / m.step)
            new = qty - m.step * (1 + int(rng.random() * units) if units > 1 else units)
        self._set_level(m, is_bid, price, new, ts)

    def _maintain(self, m: _Market, ts: int) -> None:
        while len(m.bid_px) < _MIN_LEVELS and self._deepen(m, True, ts):
            pass
        while len(m.ask_px) < _MIN_LEVELS and self._deepen(m, False, ts):
            pass
        if len(m.bid_px) > _MAX_LEVELS:
            price = m.bid_px[0]
            self._set_level(m, True, price, m.bids[price] - m.bids[price], ts)
        if len(m.ask_px) > _MAX_LEVELS:
            price = m.ask_px[-1]
            self._set_level(m, False, price, m.asks[price] - m.asks[price], ts)

    def _deepen(self, m: _Market, is_bid: bool, ts: int) -> bool:
        """Add a level beyond the far end of a thin side (next to the touch when it is empty)."""
        tick = m.tick
        if is_bid:
            if m.bid_px:
                price = m.bid_px[0] - tick * (1 + (self._rng.random() < 0.25))
            else:
                price = (m.ask_px[0] if m.ask_px else m.last_price + tick) - tick
            if price < m.min_price:
                return False
        elif m.ask_px:
            price = m.ask_px[-1] + tick * (1 + (self._rng.random() < 0.25))
        else:
            price = (m.bid_px[-1] if m.bid_px else m.last_price - tick) + tick
        self._set_level(m, is_bid, price, self._rand_qty(m), ts)
        return True

    def _take(self, m: _Market, is_buy: bool, quantity: Optional[Decimal], limit: Optional[Decimal],
              quote: Optional[Decimal], origin: str, ts: int) -> list[TradePrint]:
        book, prices = (m.asks, m.ask_px) if is_buy else (m.bids, m.bid_px)
        taker_oid = self._next_order_id()
        prints: list[TradePrint] = []
        remaining = quantity
        remaining_quote = quote
        out = self._outbox
        step = m.step
        while prices:
            px = prices[0] if is_buy else prices[-1]
            if limit is not None and (px > limit if is_buy else px < limit):
                break
            avail = book[px]
            if remaining_quote is not None:
                take = min(avail, (remaining_quote / px / step).to_integral_value(ROUND_FLOOR) * step)
                if take <= 0:
                    break
                remaining_quote -= take * px
            else:
                if remaining <= 0:
                    break
                take = min(avail, remaining)
                remaining -= take
            m.trade_id += 1
            maker_oid = self._next_order_id()
            buy_oid, sell_oid = (taker_oid, maker_oid) if is_buy else (maker_oid, taker_oid)
            trade = TradePrint(m.symbol, m.trade_id, px, take, not is_buy, buy_oid, sell_oid, ts, origin)
            prints.append(trade)
            out.append(trade)
            rec = TradeRecord(m.trade_id, px, take, not is_buy, ts)
            m.trades.append(rec)
            m.rolling.add(len(m.trades) - 1, px, take)
            m.last_price = px
            if m.is_perp:
                if self._rng.random() < 0.5:
                    m.open_interest += take
                elif m.open_interest - take >= m.oi_floor:
                    m.open_interest -= take
            self._set_level(m, not is_buy, px, avail - take, ts)
        if origin == 'liquidation' and prints:
            total = sum((p.quantity for p in prints), _ZERO)
            out.append(LiquidationEvent(m.symbol, prints[-1].price, total, 'Bid' if is_buy else 'Ask', ts))
        return prints

    def _update_mark(self, m: _Market, now: int) -> None:
        aux = self._aux
        mark = self._mid(m)
        m.mark = mark
        noise = Decimal(int(aux.gauss(0.0, 0.0004) * 10_000_000)).scaleb(-7)
        m.index = (mark * (1 + noise)).quantize(m.index_exp)
        if m.index > 0:
            premium = (mark - m.index) / m.index
            rate = (premium / 8 + Decimal('0.0000125')).quantize(Decimal('1e-7'))
            m.funding_rate = max(-m.funding_bound, min(m.funding_bound, rate))
        m.mark_samples.append((now, m.mark, m.index))
