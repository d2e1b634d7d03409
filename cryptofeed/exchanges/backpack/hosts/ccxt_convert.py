"""Pure conversions from ccxt's unified structures to cryptofeed objects, for ``CcxtBackpackFeed``.

Use these where ccxt.pro hands back a trade, a bid/ask ticker, an order book, an order, a
position or a balance and a cryptofeed callback expects ``Trade``, ``Ticker``, ``OrderBook``,
``OrderInfo``, ``Position`` or ``Balance``. Nothing here imports ccxt or awaits: the inputs are
the plain dicts ccxt documents, so the module is tested without ccxt or an event loop.

ccxt gives prices and sizes as floats parsed from the venue's decimal strings; ``to_decimal``
goes back through the shortest ``repr``, which restores the venue's value for every number
with at most 15 significant digits (all Backpack prices and sizes). ccxt timestamps are
milliseconds; cryptofeed's are float seconds. ``BookMirror`` turns ccxt's whole-book view into
cryptofeed's "full book first, then deltas" stream by diffing consecutive views.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from cryptofeed.exchanges.backpack.core.defines import (
    ASK, BID, BUY, CANCELLED, EXPIRED, FAILED, FILLED, LIMIT, LONG, MARKET, OPEN, PARTIAL, SELL, SHORT,
)
from cryptofeed.exchanges.backpack.core import records
from cryptofeed.exchanges.backpack.core.defines import BACKPACK

__all__ = [
    'to_decimal', 'ms_to_seconds', 'parse_ccxt_trade', 'parse_ccxt_ticker', 'parse_ccxt_order',
    'parse_ccxt_position', 'parse_ccxt_balances', 'BookMirror', 'BookEmission',
]

_SIDES = {'buy': BUY, 'sell': SELL}
_ORDER_TYPES = {'limit': LIMIT, 'market': MARKET}
_CLOSED_STATUSES = {'closed': FILLED, 'canceled': CANCELLED, 'cancelled': CANCELLED, 'expired': EXPIRED,
                    'rejected': FAILED}
_POSITION_SIDES = {'long': LONG, 'short': SHORT}
_ZERO = Decimal(0)


def to_decimal(value: Any) -> Optional[Decimal]:
    """A ccxt number (float, int, numeric string or None) as ``Decimal`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def ms_to_seconds(value: Any) -> Optional[float]:
    """ccxt's millisecond timestamp as float seconds (None stays None)."""
    return None if value is None else value / 1000.0


def _side(raw_side: Any, what: str) -> str:
    try:
        return _SIDES[raw_side]
    except KeyError:
        raise ValueError(f'{what}: unknown side {raw_side!r}') from None


def parse_ccxt_trade(trade: Mapping[str, Any], symbol: str, raw: bool = False) -> records.Trade:
    """ccxt trade -> ``Trade``: ``id`` as ccxt gives it (Backpack's ``t``), ``timestamp`` from ccxt's
    millisecond time (Backpack's event time ``E``; the native feed uses the trade time ``T`` in µs)."""
    return records.Trade(BACKPACK, symbol, _side(trade.get('side'), 'trade'), to_decimal(trade['amount']),
                 to_decimal(trade['price']), ms_to_seconds(trade['timestamp']), id=str(trade['id']),
                 raw=trade.get('info') if raw else None)


def parse_ccxt_ticker(ticker: Mapping[str, Any], symbol: str, raw: bool = False) -> Optional[records.Ticker]:
    """ccxt bid/ask ticker -> ``Ticker``; None while one side is missing (an empty book side)."""
    bid, ask = ticker.get('bid'), ticker.get('ask')
    if bid is None or ask is None:
        return None
    return records.Ticker(BACKPACK, symbol, to_decimal(bid), to_decimal(ask), ms_to_seconds(ticker.get('timestamp')),
                  raw=ticker.get('info') if raw else None)


def _order_status(order: Mapping[str, Any]) -> str:
    status = order.get('status')
    if status in _CLOSED_STATUSES:
        return _CLOSED_STATUSES[status]
    filled = order.get('filled')
    return PARTIAL if filled not in (None, 0, 0.0) else OPEN


def parse_ccxt_order(order: Mapping[str, Any], symbol: str, raw: bool = False) -> records.OrderInfo:
    """ccxt order -> ``OrderInfo``. ccxt folds Backpack's ``New`` and ``PartiallyFilled`` into
    ``open``; the fill amount tells them apart again (``PARTIAL`` once anything filled)."""
    order_type = order.get('type')
    return records.OrderInfo(BACKPACK, symbol, str(order['id']), _side(order.get('side'), 'order'), _order_status(order),
                     _ORDER_TYPES.get(order_type, order_type), to_decimal(order.get('price')),
                     to_decimal(order.get('amount')), to_decimal(order.get('remaining')),
                     ms_to_seconds(order.get('lastUpdateTimestamp') or order.get('timestamp')),
                     client_order_id=None if order.get('clientOrderId') is None else str(order['clientOrderId']),
                     raw=order.get('info') if raw else None)


def parse_ccxt_position(position: Mapping[str, Any], symbol: str, raw: bool = False) -> records.Position:
    """ccxt position -> ``Position``: size = ``contracts`` (signed by ``side``: shorts negative,
    as the native feed reports Backpack's signed net quantity)."""
    size = to_decimal(position.get('contracts')) or _ZERO
    side = _POSITION_SIDES.get(position.get('side'), position.get('side'))
    if side == SHORT and size > 0:
        size = -size
    return records.Position(BACKPACK, symbol, size, to_decimal(position.get('entryPrice')), side,
                    to_decimal(position.get('unrealizedPnl')), ms_to_seconds(position.get('timestamp')),
                    raw=position.get('info') if raw else None)


def parse_ccxt_balances(balance: Mapping[str, Any], assets: Optional[Iterable[str]] = None,
                        raw: bool = False) -> List[records.Balance]:
    """ccxt balance structure -> one ``Balance`` per asset (``assets`` limits which), sorted by
    asset: ``balance`` = ccxt ``total``, ``reserved`` = ccxt ``used``."""
    totals = balance.get('total') or {}
    used = balance.get('used') or {}
    wanted = sorted(totals) if assets is None else sorted(a for a in assets if a in totals)
    info = balance.get('info') if raw else None
    return [records.Balance(BACKPACK, asset, to_decimal(totals[asset]) or _ZERO, to_decimal(used.get(asset)) or _ZERO,
                    raw=info) for asset in wanted]


Levels = Dict[float, float]


class BookEmission(NamedTuple):
    """What to hand to ``Feed.book_callback``: the book, and the delta (None for a full book)."""

    book: records.OrderBook
    delta: Optional[Dict[str, List[Tuple[Decimal, Decimal]]]]
    sequence_number: int
    timestamp: Optional[float]


def _top(levels: Iterable[Any], depth: int) -> Levels:
    out: Levels = {}
    for level in levels:
        out[level[0]] = level[1]
        if depth and len(out) == depth:
            break
    return out


def _changes(old: Levels, new: Levels) -> List[Tuple[float, float]]:
    changed = [(price, size) for price, size in new.items() if old.get(price) != size]
    changed.extend((price, 0.0) for price in old if price not in new)
    return changed


class BookMirror:
    """One symbol's cryptofeed ``OrderBook`` kept equal to ccxt's book, plus what changed.

    ``update(bids, asks, nonce, timestamp_ms)`` takes ccxt's best-first ``[[price, size], ...]``
    sides and its ``nonce`` (Backpack's last applied update id ``u``). The first view (and the
    first after ``reset()``) is emitted as a full book (``delta=None``); later views as the
    levels that changed, sizes 0 for removed levels; a view whose nonce did not advance is
    not emitted. ``max_depth`` keeps only the top N levels, in the book and the deltas.
    Floats are compared as ccxt holds them; only changed levels are converted to ``Decimal``.
    """

    __slots__ = ('symbol', 'max_depth', 'book', 'nonce', '_levels')

    def __init__(self, symbol: str, max_depth: int = 0):
        self.symbol = symbol
        self.max_depth = max_depth
        self.book: Optional[records.OrderBook] = None
        self.nonce: Optional[int] = None
        self._levels: Dict[str, Levels] = {BID: {}, ASK: {}}

    def reset(self) -> None:
        """Forget the book: the next view is emitted in full."""
        self.book = None
        self.nonce = None
        self._levels = {BID: {}, ASK: {}}

    @property
    def synced(self) -> bool:
        return self.book is not None

    def update(self, bids: Iterable[Any], asks: Iterable[Any], nonce: Optional[int],
               timestamp_ms: Optional[float]) -> Optional[BookEmission]:
        if nonce is None or (self.nonce is not None and nonce <= self.nonce):
            return None
        new = {BID: _top(bids, self.max_depth), ASK: _top(asks, self.max_depth)}
        timestamp = ms_to_seconds(timestamp_ms)
        self.nonce = nonce
        if self.book is None:
            self._levels = new
            self.book = records.OrderBook(BACKPACK, self.symbol, bids={to_decimal(p): to_decimal(q) for p, q in new[BID].items()},
                                  asks={to_decimal(p): to_decimal(q) for p, q in new[ASK].items()},
                                  max_depth=self.max_depth)
            return BookEmission(self.book, None, nonce, timestamp)
        delta: Dict[str, List[Tuple[Decimal, Decimal]]] = {}
        for side in (BID, ASK):
            book_side = self.book.book[side]
            changes = []
            for price, size in _changes(self._levels[side], new[side]):
                d_price, d_size = to_decimal(price), to_decimal(size)
                if size == 0:
                    if d_price in book_side:
                        del book_side[d_price]
                else:
                    book_side[d_price] = d_size
                changes.append((d_price, d_size))
            delta[side] = changes
        self._levels = new
        return BookEmission(self.book, delta, nonce, timestamp)

    def levels(self) -> Tuple[List[Tuple[Decimal, Decimal]], List[Tuple[Decimal, Decimal]]]:
        """Both sides best first, as ``(price, size)`` Decimals (empty before the first view)."""
        if self.book is None:
            return [], []
        return list(self.book.book.bids.to_dict().items()), list(self.book.book.asks.to_dict().items())

    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask: the book is corrupt."""
        bids, asks = self._levels[BID], self._levels[ASK]  # best first, as ccxt keeps them
        return bool(bids) and bool(asks) and next(iter(bids)) >= next(iter(asks))
