"""Pure conversions from typed Backpack payloads (``messages.py``) to cryptofeed's data types.

Use these from the feed's stream handlers: each ``parse_<thing>(msg, symbol, ...)`` takes one
decoded payload and the **already normalized** cryptofeed symbol (``SOL-USDC``; the router
resolved it), and returns the cryptofeed object to hand to ``Feed.callback``. No I/O, no
``await``, no symbol lookups, no logging; every function is a plain function of its arguments,
so the same input always gives an equal object.

Conventions (backpack-api.md sections 2, 8 and DESIGN.md D3):

* Prices, sizes, fees and rates are the ``Decimal`` values the decoder produced; nothing here
  goes through ``float``.
* Exchange times become float seconds: ``E``/``T`` are microseconds, markPrice ``n`` is
  milliseconds, kline ``t``/``T`` are naive-UTC datetimes. Where a payload has an engine time
  ``T`` it is the object's timestamp (it is when the event happened); ``E`` (when the WS server
  sent it) is used only when there is no ``T``. ``receipt_ts`` is the local receive time; it is
  the timestamp of last resort (position snapshot frames that carry no time), and otherwise
  belongs to the callback, not to the object.
* ``raw`` is stored on the object only when the caller passes it. cryptofeed types expect a
  ``dict`` there (``Index``, ``OpenInterest``, ``Liquidation`` and ``Balance`` reject anything
  else), so pass ``raw_payload(msg)`` or the JSON-decoded frame.
* Backpack sides are ``Bid``/``Ask`` (the side of the order): ``Bid`` -> ``BUY``,
  ``Ask`` -> ``SELL``.

Decisions worth knowing:

* ``Trade.id`` is ``str(t)``: cryptofeed declares ``id`` as ``str`` (its compiled class
  rejects an ``int``), and its own exchanges pass ``str(...)`` of integer ids.
* Trade side is the taker's: ``m`` (buyer is maker) true -> ``SELL``, else ``BUY``.
* A kline without trades has null open/high/low/close (and volume: a quiet interval closes
  with ``o``/``h``/``l``/``c``/``v`` all null and ``n`` 0, backpack-api.md 8.1). cryptofeed's
  ``Candle`` needs ``Decimal`` prices and inventing them (zeros, a previous close) would publish
  prices that never traded, so ``parse_kline`` returns ``None`` and the feed emits nothing for
  it: a valid frame, not an error. A consumer sees no candle for an interval without trades.
* ``Candle.stop`` is the exchange's ``T``: the (exclusive) end of the candle, i.e. the start
  of the next one; ``Candle.timestamp`` is ``E``.
* ``Funding.rate`` is ``f``, the estimated rate of the current interval, which is what the
  next funding settles (as cryptofeed's Binance feed does with its ``r``);
  ``predicted_rate`` stays ``None`` since Backpack publishes no separate forecast.
  ``next_funding_time`` is ``n`` in seconds, ``None`` when absent (prediction markets).
* Liquidation ``S`` is the side of the liquidation order (``Bid``: a short was closed by
  buying -> ``BUY``; ``Ask``: a long was sold -> ``SELL``), the same meaning cryptofeed's
  Binance feed gives its ``S``. The stream reports executed liquidations, so ``status`` is
  ``FILLED``; the payload has no id, so ``id`` is ``None``. Its timestamp is ``T`` when that is
  a plausible microsecond time (2015..2100; the docs' example carries a placeholder ``T``),
  else ``E``, else ``receipt_ts``: never 1970.
* REST values are checked with the same bounds as the stream's (``messages.is_price``,
  ``is_size``): ``parse_depth_snapshot`` and ``parse_rest_trade`` raise ``ValueError`` for a
  ``NaN``/``Infinity``/negative/absurd value, so a corrupt snapshot is re-requested rather
  than becoming a book, and a corrupt trade row is skipped (``parse_rest_trades``).
* Positions are one-way and netted on Backpack: ``position`` is the signed ``q`` (+ long,
  - short) and ``side`` is ``LONG`` or ``SHORT`` from its sign. A flat position (``q`` = 0,
  ``positionClosed``) keeps the side of the position it closed when the caller passes it as
  ``previous_side`` (the account channel remembers it), so a consumer keyed on (symbol, side)
  sees that entry go to zero; without one it is ``BOTH``.
* ``OrderInfo.price`` is the limit price ``p``; orders without one (market, trigger-market)
  report the average executed price ``Z / z``, or 0 before any fill. ``amount`` is ``q``, or
  the executed ``z`` for quote-quantity orders that have no ``q``; ``remaining`` is
  ``q - z`` when ``q`` is known, else ``None``. An order with a trigger price ``P`` is
  ``TRIGGER_LIMIT`` / ``TRIGGER_MARKET``.
* ``Fill`` has no field for the fee asset: ``Fill.raw`` is always a dict holding it as
  ``fee_asset`` (plus the venue payload when the feed keeps raw payloads).
* ``Balance.balance`` is the whole amount of the asset on the account, available + locked
  (``A + L``; REST ``available + locked``), and ``reserved`` the locked part ``L``; staked
  ``S`` is in neither (it is not spendable until unstaked) and stays in ``raw``.
* REST rows (``/api/v1/orders``, ``/wapi/v1/history/orders``, ``/wapi/v1/history/fills``,
  ``/api/v1/position``, ``/api/v1/capital``) give the same objects as the streams, so that a
  snapshot or a backfill is indistinguishable from live data. They are held to the bounds of the
  account streams (``messages.py``: prices positive, sizes and balances non-negative, PnL, fees and
  position sizes signed, all finite and below ``1E+18``; an order's executed quantity at most its
  quantity; history times 2015..2100): ``parse_rest_fill``, ``parse_rest_order``,
  ``parse_rest_position`` and ``parse_capital_entry`` raise ``ValueError`` naming the row's ids
  (``row_ids``) for one that breaks them, and the account channel skips that row. An order row carries no time of
  its current state, so its ``OrderInfo.timestamp`` is the receipt time; a history fill's
  ``timestamp`` is its naive-UTC millisecond string.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import msgspec

from cryptofeed.exchanges.backpack.core.defines import (
    BOTH, BUY, CANCELLED, EXPIRED, FAILED, FILLED, LIMIT, LONG, MAKER, MARKET, OPEN, PARTIAL, PENDING,
    SELL, SHORT, TAKER, TRIGGER_LIMIT, TRIGGER_MARKET,
)
from cryptofeed.exchanges.backpack.core import records

from cryptofeed.exchanges.backpack.core.wire import messages as bp
from cryptofeed.exchanges.backpack.core.defines import BACKPACK

__all__ = [
    'EXCHANGE', 'SIDES', 'ORDER_STATUSES', 'parse_trade', 'parse_book_ticker', 'parse_kline',
    'parse_funding', 'parse_index', 'parse_open_interest', 'parse_liquidation',
    'parse_order_update', 'parse_fill', 'parse_position', 'parse_balance', 'parse_balance_update',
    'parse_depth_snapshot', 'parse_rest_trade', 'parse_rest_trades', 'rest_trade_id', 'DepthSnapshot',
    'parse_rest_order', 'parse_rest_fill', 'parse_rest_position', 'parse_capital', 'parse_capital_entry',
    'position_side', 'history_seconds', 'history_time', 'row_ids', 'order_type', 'ORDER_EVENTS',
    'raw_payload', 'micros_to_seconds', 'utc_seconds',
]

EXCHANGE = BACKPACK
"""The feed id written into every object; equal to ``cryptofeed.exchanges.backpack.BACKPACK``."""

SIDES: Dict[str, str] = {'Bid': BUY, 'Ask': SELL}
"""Backpack order side -> cryptofeed side."""

ORDER_STATUSES: Dict[str, str] = {
    'New': OPEN,
    'PartiallyFilled': PARTIAL,
    'Filled': FILLED,
    'Cancelled': CANCELLED,
    'Expired': EXPIRED,
    'TriggerPending': PENDING,
    'TriggerFailed': FAILED,
    'Triggered': OPEN,
}
"""Backpack order status ``X`` -> cryptofeed status; an unknown status is passed through."""

ORDER_EVENTS: Dict[str, str] = {
    'orderAccepted': 'the order rests or starts matching; X = New (a fired trigger order starts here)',
    'orderFill': 'one execution; X = PartiallyFilled or Filled; also gives a Fill',
    'orderCancelled': 'cancelled by the user or the system; X = Cancelled',
    'orderExpired': 'ended by a rule (IOC/FOK remainder, post-only would take, ...); X = Expired, R = reason',
    'orderModified': 'a resting reduce-only order was shrunk; X unchanged (New/PartiallyFilled), q smaller',
    'triggerPlaced': 'a trigger order waits for its price; X = TriggerPending',
    'triggerFailed': 'a trigger fired but the order could not be placed; X = TriggerFailed',
}
"""Every ``account.orderUpdate`` event ``e`` and what it means; each becomes one ``OrderInfo``
whose status comes from ``X`` through ``ORDER_STATUSES``."""

_ORDER_TYPES = {'LIMIT': LIMIT, 'MARKET': MARKET, 'Limit': LIMIT, 'Market': MARKET}
_TRIGGER_TYPES = {'LIMIT': TRIGGER_LIMIT, 'MARKET': TRIGGER_MARKET, 'Limit': TRIGGER_LIMIT,
                  'Market': TRIGGER_MARKET}
_ZERO = Decimal(0)
# Unit divisors are written as literals below: a constant is cheaper than a global lookup on
# the hot path (microseconds: 1_000_000, milliseconds: 1_000).


def micros_to_seconds(value: int) -> float:
    """Microseconds since the epoch -> float seconds (correctly rounded)."""
    return value / 1_000_000


def utc_seconds(value: datetime) -> float:
    """Seconds since the epoch of a datetime; a naive one is taken as UTC (kline ``t``/``T``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def raw_payload(msg: msgspec.Struct) -> Dict[str, Any]:
    """The payload as a plain dict with the venue's keys (``e`` included, decimals as strings),
    suitable for the ``raw`` argument of the parsers."""
    return msgspec.to_builtins(msg)


def parse_trade(msg: bp.Trade, symbol: str, receipt_ts: float, raw: Optional[dict] = None) -> records.Trade:
    """``trade`` -> ``Trade``: side of the taker, ``id`` = ``str(t)``, timestamp = ``T``."""
    return records.Trade(EXCHANGE, symbol, SELL if msg.m else BUY, msg.q, msg.p, msg.T / 1_000_000, str(msg.t),
                 None, raw)


def parse_book_ticker(msg: bp.BookTicker, symbol: str, receipt_ts: float,
                      raw: Optional[dict] = None) -> records.Ticker:
    """``bookTicker`` -> ``Ticker`` with the best bid ``b`` and best ask ``a``; timestamp = ``T``."""
    return records.Ticker(EXCHANGE, symbol, msg.b, msg.a, msg.T / 1_000_000, raw)


def parse_kline(msg: bp.Kline, symbol: str, interval: str, receipt_ts: float,
                raw: Optional[dict] = None) -> Optional[records.Candle]:
    """``kline`` -> ``Candle``, or ``None`` while the candle has no trades (null o/h/l/c).

    ``interval`` is the cryptofeed interval the caller subscribed with (the payload has none).
    """
    o, h, l, c = msg.o, msg.h, msg.l, msg.c  # noqa: E741
    if o is None or h is None or l is None or c is None:
        return None
    return records.Candle(EXCHANGE, symbol, utc_seconds(msg.t), utc_seconds(msg.T), interval, msg.n,
                  o, c, h, l, msg.v, msg.X, msg.E / 1_000_000, raw)


def parse_funding(msg: bp.MarkPrice, symbol: str, receipt_ts: float,
                  raw: Optional[dict] = None) -> records.Funding:
    """``markPrice`` -> ``Funding``: mark ``p``, rate ``f``, next funding ``n`` (ms -> s)."""
    n = msg.n
    return records.Funding(EXCHANGE, symbol, msg.p, msg.f, None if n is None else n / 1_000, msg.T / 1_000_000,
                   None, raw)


def parse_index(msg: bp.MarkPrice, symbol: str, receipt_ts: float,
                raw: Optional[dict] = None) -> Optional[records.Index]:
    """``markPrice`` -> ``Index`` from the index price ``i``; ``None`` when the market has none."""
    if msg.i is None:
        return None
    return records.Index(EXCHANGE, symbol, msg.i, msg.T / 1_000_000, raw)


def parse_open_interest(msg: bp.OpenInterest, symbol: str, receipt_ts: float,
                        raw: Optional[dict] = None) -> records.OpenInterest:
    """``openInterest`` -> ``OpenInterest`` (``o`` contracts); timestamp = ``E`` (no ``T``)."""
    return records.OpenInterest(EXCHANGE, symbol, msg.o, msg.E / 1_000_000, raw)


# Plausible exchange times in microseconds: 2015-01-01 .. 2100-01-01 UTC. A value in
# milliseconds (or a placeholder) falls below and would otherwise read as January 1970.
_MIN_MICROS = 1_420_070_400_000_000
_MAX_MICROS = 4_102_444_800_000_000


def _plausible_micros(value: Optional[int]) -> bool:
    return value is not None and _MIN_MICROS <= value < _MAX_MICROS


def parse_liquidation(msg: bp.Liquidation, symbol: str, receipt_ts: float,
                      raw: Optional[dict] = None) -> records.Liquidation:
    """``liquidation`` -> ``Liquidation``: side of the liquidation order, status ``FILLED``;
    timestamp ``T``, else ``E``, else ``receipt_ts`` (the first that is a plausible time)."""
    if _plausible_micros(msg.T):
        ts = msg.T / 1_000_000
    elif _plausible_micros(msg.E):
        ts = msg.E / 1_000_000
    else:
        ts = receipt_ts
    return records.Liquidation(EXCHANGE, symbol, SIDES[msg.S], msg.q, msg.p, None, FILLED, ts, raw)


def order_type(kind: str, trigger_price: Any = None) -> str:
    """Backpack order type (``LIMIT`` on the stream, ``Limit`` on REST, ...) -> cryptofeed type;
    with a trigger price it is ``TRIGGER_LIMIT`` / ``TRIGGER_MARKET``."""
    table = _ORDER_TYPES if trigger_price is None else _TRIGGER_TYPES
    return table.get(kind) or kind.lower()


def _finite(*values: Optional[Decimal]) -> bool:
    for value in values:
        if value is None or not value.is_finite():
            return False
    return True


def _order_info(symbol: str, order_id: str, side: str, status: str, order_type: str, price: Optional[Decimal],
                quantity: Optional[Decimal], executed: Optional[Decimal], executed_quote: Optional[Decimal],
                client_id: Any, timestamp: float, raw: Optional[dict]) -> records.OrderInfo:
    """The one place an ``OrderInfo`` is built, for stream frames and REST rows alike."""
    if price is None:
        price = executed_quote / executed if _finite(executed_quote, executed) and executed else _ZERO
    if quantity is None:
        amount = _ZERO if executed is None else executed
        remaining = None
    else:
        amount = quantity
        if executed is None:
            remaining = quantity
        else:
            remaining = quantity - executed if _finite(quantity, executed) else None
    return records.OrderInfo(EXCHANGE, symbol, str(order_id), SIDES[side], ORDER_STATUSES.get(status, status), order_type,
                     price, amount, remaining, timestamp, None if client_id is None else str(client_id), None, raw)


def parse_order_update(msg: bp.OrderUpdate, symbol: str, receipt_ts: float,
                       raw: Optional[dict] = None) -> records.OrderInfo:
    """Any ``account.orderUpdate`` event -> ``OrderInfo`` (status from ``X``, timestamp ``T``)."""
    return _order_info(symbol, msg.i, msg.S, msg.X, order_type(msg.o, msg.P), msg.p, msg.q, msg.z, msg.Z, msg.c,
                       msg.T / 1_000_000, raw)


def _dec(value: Any) -> Optional[Decimal]:
    return None if value is None else Decimal(str(value))


# -- REST rows of the account: the bounds of the account streams (see the module docstring) ---

_ROW_IDS = (('orderId', 'order'), ('id', 'order'), ('tradeId', 'trade'), ('symbol', 'symbol'),
            ('positionId', 'position'))


def row_ids(row: Any) -> str:
    """The ids of a REST row, for a log line: ``order 123, trade 45, symbol SOL_USDC`` (the ids the
    row has that are plain values), or ``a <type>`` for a row that is not an object."""
    if not isinstance(row, dict):
        return f'a {type(row).__name__}'
    parts = [f'{label} {str(row[key])[:40]}' for key, label in _ROW_IDS
             if isinstance(row.get(key), (str, int)) and not isinstance(row.get(key), bool)]
    return ', '.join(parts) or 'no ids'


def _row_number(row: Dict[str, Any], key: str, check, what: str, optional: bool = False) -> Optional[Decimal]:
    """``row[key]`` as a ``Decimal`` that passes ``check`` (``messages.is_price`` ...); ``None`` when
    ``optional`` and null or absent; else ``ValueError`` saying what is wrong."""
    value = row.get(key)
    if value is None:
        if optional:
            return None
        raise ValueError(f'{key} is missing')
    if isinstance(value, float):
        value = repr(value)   # a JSON number read as a float: its shortest text
    number = _decimal(value, key)
    if not check(number):
        raise ValueError(f'{key}={str(number)[:40]} is not {what}')
    return number


def _row_id(row: Dict[str, Any], key: str) -> Any:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == '':
        raise ValueError(f'{key} is {str(value)[:40]!r}, not an id')
    return value


def _row_side(row: Dict[str, Any]) -> str:
    side = row.get('side')
    if side not in SIDES:
        raise ValueError(f'side is {str(side)[:40]!r}, not Bid or Ask')
    return side


def _row_text(row: Dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f'{key} is {str(value)[:40]!r}, not a name')
    return value


_MIN_SECONDS = 1_420_070_400   # 2015-01-01, the bounds of _plausible_micros below
_MAX_SECONDS = 4_102_444_800   # 2100-01-01


def history_time(value: Any, what: str = 'timestamp') -> float:
    """``history_seconds`` of a REST time that must be a plausible exchange time (2015..2100);
    ``ValueError`` otherwise (garbage, null, ``-1``, ``10**20``)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f'{what} is {value!r}, not a time')
    try:
        seconds = history_seconds(value)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        raise ValueError(f'{what} is {str(value)[:40]!r}, not a time') from None
    if not _MIN_SECONDS <= seconds < _MAX_SECONDS:   # NaN fails too
        raise ValueError(f'{what} {str(value)[:40]!r} is not a time between 2015 and 2100')
    return seconds


def _rest_order_values(row: Dict[str, Any]) -> Tuple[Any, ...]:
    if not isinstance(row, dict):
        raise ValueError('the row is not an object')
    order_id = _row_id(row, 'id')
    side = _row_side(row)
    status = _row_text(row, 'status')
    kind = _row_text(row, 'orderType')
    price = _row_number(row, 'price', bp.is_price, 'a positive price', optional=True)
    _row_number(row, 'triggerPrice', bp.is_price, 'a positive price', optional=True)
    quantity = _row_number(row, 'quantity', bp.is_size, 'a non-negative quantity', optional=True)
    executed = _row_number(row, 'executedQuantity', bp.is_size, 'a non-negative quantity', optional=True)
    executed_quote = _row_number(row, 'executedQuoteQuantity', bp.is_size, 'a non-negative quantity', optional=True)
    if quantity is not None and executed is not None and executed > quantity:
        raise ValueError(f'executedQuantity {executed} is above quantity {quantity}')
    return order_id, side, status, kind, price, quantity, executed, executed_quote


def parse_rest_order(row: Dict[str, Any], symbol: str, receipt_ts: float, raw: Optional[dict] = None) -> records.OrderInfo:
    """An order object of ``/api/v1/order(s)`` or a ``/wapi/v1/history/orders`` row -> ``OrderInfo``,
    equal to what the stream gives for the same state; timestamp = ``receipt_ts`` (the row has
    no time of its current state). ``ValueError`` (naming the order) for a row out of bounds."""
    try:
        order_id, side, status, kind, price, quantity, executed, executed_quote = _rest_order_values(row)
    except ValueError as exc:
        raise ValueError(f'order row ({row_ids(row)}): {exc}') from None
    return _order_info(symbol, order_id, side, status, order_type(kind, row.get('triggerPrice')), price,
                       quantity, executed, executed_quote, row.get('clientId'), receipt_ts, raw)


def _fill_raw(fee_asset: Optional[str], raw: Optional[dict]) -> dict:
    out = dict(raw) if raw else {}
    out['fee_asset'] = fee_asset
    return out


def parse_fill(msg: bp.OrderUpdate, symbol: str, receipt_ts: float,
               raw: Optional[dict] = None) -> Optional[records.Fill]:
    """An ``orderFill`` event -> ``Fill`` for that one execution (``l`` at ``L``, fee ``n``,
    trade id ``t``, maker flag ``m``); ``None`` for an update that carries no fill. The fee
    asset ``N`` goes to ``raw['fee_asset']``."""
    t, l, L = msg.t, msg.l, msg.L  # noqa: E741
    if t is None or l is None or L is None:
        return None
    m = msg.m
    liquidity = MAKER if m else (TAKER if m is not None else None)
    return records.Fill(EXCHANGE, symbol, SIDES[msg.S], l, L, msg.n, str(t), msg.i, order_type(msg.o, msg.P),
                liquidity, msg.T / 1_000_000, None, _fill_raw(msg.N, raw))


def parse_rest_fill(row: Dict[str, Any], symbol: str, order_type: Optional[str] = None,
                    raw: Optional[dict] = None) -> records.Fill:
    """A ``/wapi/v1/history/fills`` row -> ``Fill``, the same fill the stream gives. The row does
    not name the order's type: pass it as ``order_type`` (a cryptofeed type) when known.
    ``ValueError`` (naming the trade and order) for a row out of bounds: a trade id that is not a
    non-negative integer, a side other than Bid/Ask, a price or quantity that is not positive, a
    fee that is not finite, a time outside 2015..2100."""
    try:
        if not isinstance(row, dict):
            raise ValueError('the row is not an object')
        trade_id = rest_trade_id({'id': row.get('tradeId')})
        if trade_id is None:
            raise ValueError(f'tradeId is {str(row.get("tradeId"))[:40]!r}, not a non-negative integer')
        order_id = _row_id(row, 'orderId')
        side = _row_side(row)
        quantity = _row_number(row, 'quantity', bp.is_price, 'a positive quantity')
        price = _row_number(row, 'price', bp.is_price, 'a positive price')
        fee = _row_number(row, 'fee', bp.is_signed, 'a finite fee', optional=True)
        timestamp = history_time(row.get('timestamp'))
    except ValueError as exc:
        raise ValueError(f'fill row ({row_ids(row)}): {exc}') from None
    return records.Fill(EXCHANGE, symbol, SIDES[side], quantity, price, fee, str(trade_id), str(order_id), order_type,
                MAKER if row.get('isMaker') else TAKER, timestamp, None, _fill_raw(row.get('feeSymbol'), raw))


def history_seconds(value: Any) -> float:
    """A history ``timestamp``/``createdAt`` (naive-UTC ``2025-07-27T17:39:00.092``, or ms) -> seconds."""
    if isinstance(value, (int, float)):
        return value / 1_000
    return utc_seconds(datetime.fromisoformat(str(value).replace(' ', 'T')))


def position_side(quantity: Decimal, previous_side: Optional[str] = None) -> str:
    """``LONG`` / ``SHORT`` from the sign of a net quantity; a flat one keeps ``previous_side``
    (the side it closed), else ``BOTH``."""
    if quantity > 0:
        return LONG
    if quantity < 0:
        return SHORT
    return previous_side or BOTH


def parse_position(msg: bp.PositionUpdate, symbol: str, receipt_ts: float,
                   raw: Optional[dict] = None, previous_side: Optional[str] = None) -> records.Position:
    """``account.positionUpdate`` (events and snapshot frames) -> ``Position``: signed ``q``,
    entry price ``B``, unrealized PnL ``P``, side from the sign (``position_side``); timestamp
    ``T``, else ``E``, else ``receipt_ts``."""
    ts = msg.T if msg.T is not None else msg.E
    return records.Position(EXCHANGE, symbol, msg.q, msg.B, position_side(msg.q, previous_side), msg.P,
                    receipt_ts if ts is None else ts / 1_000_000, raw)


def parse_rest_position(row: Dict[str, Any], symbol: str, receipt_ts: float, raw: Optional[dict] = None,
                        previous_side: Optional[str] = None) -> records.Position:
    """A ``/api/v1/position`` row -> ``Position`` (``netQuantity``, ``entryPrice``,
    ``pnlUnrealized``); timestamp = ``receipt_ts``. ``ValueError`` (naming the symbol) for a row out
    of bounds: the signed quantity and PnL must be finite, the entry price non-negative."""
    try:
        if not isinstance(row, dict):
            raise ValueError('the row is not an object')
        quantity = _row_number(row, 'netQuantity', bp.is_signed, 'a finite quantity')
        entry = _row_number(row, 'entryPrice', bp.is_size, 'a non-negative price')
        pnl = _row_number(row, 'pnlUnrealized', bp.is_signed, 'a finite PnL', optional=True)
        for key in ('markPrice', 'breakEvenPrice', 'estLiquidationPrice'):
            _row_number(row, key, bp.is_size, 'a non-negative price', optional=True)
        for key in ('pnlRealized', 'netExposureQuantity', 'netExposureNotional', 'netCost'):
            _row_number(row, key, bp.is_signed, 'a finite number', optional=True)
    except ValueError as exc:
        raise ValueError(f'position row ({row_ids(row)}): {exc}') from None
    return records.Position(EXCHANGE, symbol, quantity, entry, position_side(quantity, previous_side), pnl, receipt_ts,
                            raw)


def parse_balance(asset: str, available: Decimal, locked: Optional[Decimal],
                  raw: Optional[dict] = None) -> records.Balance:
    """One asset -> ``Balance(balance=available + locked, reserved=locked)``."""
    locked = _ZERO if locked is None else locked
    return records.Balance(EXCHANGE, asset, available + locked, locked, raw)


def parse_balance_update(msg: bp.BalanceUpdate, receipt_ts: float,
                         raw: Optional[dict] = None) -> records.Balance:
    """``account.balanceUpdate`` -> ``Balance`` (absolute values of asset ``a``)."""
    return parse_balance(msg.a, msg.A, msg.L, raw)


def parse_capital_entry(asset: str, entry: Any, keep_raw: bool = False) -> records.Balance:
    """One asset of ``GET /api/v1/capital`` -> ``Balance``; ``ValueError`` (naming the asset) unless
    ``available``, ``locked`` and ``staked`` are finite, non-negative and below ``1E+18``."""
    try:
        if not isinstance(entry, dict):
            raise ValueError('the entry is not an object')
        available = _row_number(entry, 'available', bp.is_size, 'a non-negative amount')
        locked = _row_number(entry, 'locked', bp.is_size, 'a non-negative amount', optional=True)
        _row_number(entry, 'staked', bp.is_size, 'a non-negative amount', optional=True)
    except ValueError as exc:
        raise ValueError(f'capital entry (asset {str(asset)[:40]}): {exc}') from None
    return parse_balance(asset, available, locked, dict(entry, asset=asset) if keep_raw else None)


def parse_capital(data: Dict[str, Any], keep_raw: bool = False) -> List[records.Balance]:
    """``GET /api/v1/capital`` (asset -> ``{available, locked, staked}``) -> one ``Balance`` per
    asset, in asset order; ``ValueError`` when an entry is out of bounds (``parse_capital_entry``)."""
    return [parse_capital_entry(asset, entry, keep_raw) for asset, entry in sorted(data.items())]


class DepthSnapshot(NamedTuple):
    """``GET /api/v1/depth`` as ``BookSync.apply_snapshot`` takes it."""
    last_update_id: int
    bids: List[Tuple[Decimal, Decimal]]
    asks: List[Tuple[Decimal, Decimal]]
    timestamp: Optional[float]


def _decimal(value: Any, what: str) -> Decimal:
    """A REST decimal (a string, or a JSON number as int) -> ``Decimal``; ``ValueError`` if it is
    not one (``Decimal('abc')`` raises ``InvalidOperation``, which is not a ``ValueError``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError(f'{what} is {value!r}, not a decimal string')
    try:
        return Decimal(value)
    except ArithmeticError:
        raise ValueError(f'{what} is {value!r}, not a decimal') from None


def _snapshot_side(levels: Any, side: str) -> List[Tuple[Decimal, Decimal]]:
    if not isinstance(levels, list):
        raise ValueError(f'depth snapshot: {side} is {type(levels).__name__}, not a list of levels')
    out = []
    for level in levels:
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise ValueError(f'depth snapshot: {side} level {level!r} is not [price, quantity]')
        price = _decimal(level[0], f'depth snapshot {side} price')
        qty = _decimal(level[1], f'depth snapshot {side} quantity')
        if not bp.is_price(price) or not bp.is_size(qty):
            raise ValueError(f'depth snapshot: {side} level [{price!s}, {qty!s}] is not a plausible price and size')
        if qty:  # a zero level means "no level": never put it in a book
            out.append((price, qty))
    return out


def parse_depth_snapshot(data: Dict[str, Any]) -> DepthSnapshot:
    """REST depth (section 3.3): ``lastUpdateId`` string or int, levels ``[price, qty]`` strings,
    ``timestamp`` in microseconds (optional). Level order is left to the book.

    Raises ``ValueError`` (or ``KeyError``/``TypeError`` for a wrong shape) when any level has
    a price or quantity that is not a plausible decimal (``NaN``, ``Infinity``, negative,
    ``1E+400``, not a number): the whole snapshot is refused, so the feed asks again (with
    backoff) rather than building a book that holds it. Zero-quantity levels are left out.
    """
    timestamp = data.get('timestamp')
    return DepthSnapshot(
        int(data['lastUpdateId']),
        _snapshot_side(data['bids'], 'bids'),
        _snapshot_side(data['asks'], 'asks'),
        None if timestamp is None else int(timestamp) / 1_000_000,
    )


def rest_trade_id(row: Any) -> Optional[int]:
    """The ``id`` of a REST trade row as an ``int`` (integers and digit strings accepted), or
    None when the row has none usable (absent, null, not a non-negative integer)."""
    value = row.get('id') if isinstance(row, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def parse_rest_trade(row: Dict[str, Any], symbol: str, receipt_ts: float, raw: Optional[dict] = None) -> records.Trade:
    """A ``/api/v1/trades`` row (section 3.4) -> ``Trade``, the same object the stream gives:
    ``isBuyerMaker`` means the taker sold; ``timestamp`` is in milliseconds. ``ValueError`` (or
    ``KeyError``) for a row without an integer ``id`` or with an implausible price or quantity."""
    trade_id = rest_trade_id(row)
    if trade_id is None:
        raise ValueError(f'trade row without an integer id: {str(row)[:200]}')
    price = _decimal(row['price'], 'trade price')
    qty = _decimal(row['quantity'], 'trade quantity')
    if not bp.is_price(price) or not bp.is_price(qty):
        raise ValueError(f'trade {trade_id}: price {price!s} / quantity {qty!s} is not plausible')
    return records.Trade(EXCHANGE, symbol, SELL if row['isBuyerMaker'] else BUY, qty, price,
                 int(row['timestamp']) / 1_000, str(trade_id), None, raw)


def parse_rest_trades(rows: List[Dict[str, Any]], symbol: str, receipt_ts: float,
                      keep_raw: bool = False) -> Tuple[List[Tuple[int, records.Trade]], int]:
    """REST trade rows -> ``([(id, Trade), ...], rows skipped)``. A row that ``parse_rest_trade``
    refuses is skipped, not fatal: its id then counts as a trade that could not be recovered."""
    out: List[Tuple[int, records.Trade]] = []
    skipped = 0
    for row in rows:
        try:
            trade = parse_rest_trade(row, symbol, receipt_ts, row if keep_raw else None)
        except (KeyError, TypeError, ValueError):
            skipped += 1
            continue
        out.append((int(trade.id), trade))
    return out, skipped
