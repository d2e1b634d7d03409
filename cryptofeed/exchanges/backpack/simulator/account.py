"""The simulator's accounts: balances, orders, fills and perp positions, without I/O.

Use ``AccountEngine`` wherever the fake exchange needs a private side. It is pure and
deterministic: time comes from the injected ``clock_us``, ids from counters, prices from the
market model it is given. Every mutation is reported to ``listener`` as ``AccountEvent``
(api key, stream base, symbol, wire ``data`` dict), already shaped as the private streams of
backpack-api.md §8.2; the REST shapes of §5 come from ``order_to_rest``, ``order_to_history``,
``position_to_rest``, ``fill_to_rest`` and ``AccountEngine.capital``.

Model (deliberately simple, documented so tests and users can rely on it):

* Each API key is one account, funded from ``starting_balances`` on first use.
* Marketable orders take liquidity from the market model, one price level per call of
  ``market.execute_taker`` so that spot market buys can stop exactly where funds run out.
  Resting limit orders are not in the public book; they fill (as maker, at their own price)
  when ``on_market_trade`` reports a public trade through their price, in price-time priority
  across all accounts. Trades caused by the accounts' own taker orders never fill resting
  orders.
* Spot limit orders lock their cost (bids: price x quantity of the quote; asks: the base);
  perp limit orders lock initial margin (notional x IMF) in USDC. Placement is refused with
  ``INSUFFICIENT_FUNDS`` / ``INSUFFICIENT_MARGIN`` when the available balance cannot cover it.
* Fees: maker/taker rates of ``FeeSchedule``; a spot buy pays in the base asset it receives,
  a spot sell and every perp fill pay in the quote (USDC).
* Perps: one net position per symbol; entry price is the volume-weighted open price,
  break-even adds the fees paid, realized PnL (fees excluded) is credited to USDC as the
  position shrinks, unrealized PnL is against the market's mark price.
* Lifecycle: ``orderAccepted`` -> ``orderFill``... -> ``Filled`` | ``orderCancelled`` |
  ``orderExpired`` with ``R``: ``ImmediateOrCancel`` (IOC remainder), ``FillOrKill``,
  ``PostOnlyTaker``, ``InsufficientFunds`` (a market buy whose funds ran out),
  ``InsufficientLiquidity`` (a market order that emptied the book), ``ReduceOnlyNotReduced``.
* Trigger, take-profit and stop-loss orders are not simulated (400 ``NOT_IMPLEMENTED``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional, Protocol, Sequence

from cryptofeed.exchanges.backpack.simulator import markets as _markets

__all__ = [
    'ORDER_UPDATE', 'POSITION_UPDATE', 'BALANCE_UPDATE', 'DEFAULT_STARTING_BALANCES', 'UINT32_MAX',
    'OrderRejected', 'FeeSchedule', 'AccountEvent', 'MarketView', 'Balance', 'Order', 'Position', 'FillRecord',
    'Account', 'MarketMeta', 'AccountEngine', 'fmt', 'naive_utc', 'order_to_rest', 'order_to_history', 'fill_to_rest',
]

ORDER_UPDATE = 'account.orderUpdate'
POSITION_UPDATE = 'account.positionUpdate'
BALANCE_UPDATE = 'account.balanceUpdate'

DEFAULT_STARTING_BALANCES: dict[str, str] = {'USDC': '100000', 'SOL': '1000', 'BTC': '10', 'ETH': '100'}
UINT32_MAX = 2 ** 32 - 1

_ZERO = Decimal(0)
_ONE = Decimal(1)
_EPOCH = datetime(1970, 1, 1)
_SIDES = ('Bid', 'Ask')
_ORDER_TYPES = ('Limit', 'Market')
_TIME_IN_FORCE = ('GTC', 'IOC', 'FOK')
_STP_MODES = ('RejectTaker', 'RejectMaker', 'RejectBoth')
_OPEN_STATUSES = ('New', 'PartiallyFilled')
_UNSUPPORTED_FIELDS = (
    'triggerPrice', 'triggerQuantity', 'triggerBy', 'takeProfitTriggerPrice', 'takeProfitLimitPrice',
    'takeProfitTriggerBy', 'stopLossTriggerPrice', 'stopLossLimitPrice', 'stopLossTriggerBy',
    'slippageTolerance', 'slippageToleranceType',
)
_DEFAULT_IMF = {'type': 'sqrt', 'base': '0.02', 'factor': '0'}
_DEFAULT_MMF = {'type': 'sqrt', 'base': '0.0125', 'factor': '0'}


class OrderRejected(Exception):
    """A request the engine refuses before it becomes an order; maps to an HTTP error body."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f'{status} {code}: {message}')
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {'code': self.code, 'message': self.message}


@dataclass(frozen=True)
class FeeSchedule:
    """Fee rates as fractions of the traded amount (2 bps maker, 5 bps taker by default)."""
    maker: Decimal = Decimal('0.0002')
    taker: Decimal = Decimal('0.0005')


class AccountEvent(NamedTuple):
    """One private stream frame: ``stream`` is the base name, ``symbol`` None for balances."""
    api_key: str
    stream: str
    symbol: Optional[str]
    data: dict


class MarketView(Protocol):
    """What the engine needs from the market model (``market.MarketModel`` provides it)."""

    def has_symbol(self, symbol: str) -> bool: ...
    def market(self, symbol: str) -> dict: ...
    def is_perp(self, symbol: str) -> bool: ...
    def tick_size(self, symbol: str) -> Decimal: ...
    def step_size(self, symbol: str) -> Decimal: ...
    def best_bid(self, symbol: str) -> Optional[Decimal]: ...
    def best_ask(self, symbol: str) -> Optional[Decimal]: ...
    def mark_price(self, symbol: str) -> Decimal: ...
    def book_snapshot(self, symbol: str, limit: Optional[int] = None) -> Any: ...
    def execute_taker(self, symbol: str, side: str, quantity: Optional[Decimal], limit_price: Optional[Decimal],
                      quote_quantity: Optional[Decimal] = None) -> list: ...


def fmt(value: Decimal) -> str:
    """Decimal -> wire string: plain notation, no exponent, no trailing zeros, never ``-0``."""
    if not value:
        return '0'
    return format(value.normalize(), 'f')


def naive_utc(ts_us: int) -> str:
    """Naive UTC text with milliseconds, as the history endpoints print it: ``2025-07-27T17:39:00.092``."""
    moment = _EPOCH + timedelta(microseconds=ts_us)
    return moment.strftime('%Y-%m-%dT%H:%M:%S') + f'.{moment.microsecond // 1000:03d}'


def _opt(value: Optional[Decimal]) -> Optional[str]:
    return None if value is None else fmt(value)


@dataclass
class Balance:
    available: Decimal = _ZERO
    locked: Decimal = _ZERO
    staked: Decimal = _ZERO


@dataclass
class Order:
    """An order as the engine tracks it; ``quote_quantity`` is the requested quote amount of a
    quote-based market order, else the quote value shown as ``Q`` (price x quantity, or the
    estimate of a market order at placement)."""
    id: str
    api_key: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    price: Optional[Decimal]
    quantity: Optional[Decimal]
    quote_quantity: Optional[Decimal]
    client_id: Optional[int]
    post_only: bool
    reduce_only: Optional[bool]
    self_trade_prevention: str
    created_us: int
    seq: int
    status: str = 'New'
    executed_quantity: Decimal = _ZERO
    executed_quote_quantity: Decimal = _ZERO
    expiry_reason: Optional[str] = None
    lock_asset: Optional[str] = None
    locked: Decimal = _ZERO

    @property
    def quote_based(self) -> bool:
        return self.quantity is None

    @property
    def remaining(self) -> Decimal:
        """Base quantity still to fill (quantity-based orders only)."""
        return _ZERO if self.quantity is None else self.quantity - self.executed_quantity

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_STATUSES


@dataclass
class Position:
    id: int
    symbol: str
    net_quantity: Decimal = _ZERO
    entry_price: Decimal = _ZERO
    fees: Decimal = _ZERO
    realized: Decimal = _ZERO


@dataclass(frozen=True)
class FillRecord:
    trade_id: int
    order_id: str
    client_id: Optional[int]
    symbol: str
    side: str
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_symbol: str
    is_maker: bool
    ts_us: int
    perp: bool


@dataclass
class Account:
    api_key: str
    user_id: int = 1
    balances: dict[str, Balance] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    open_orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal


@dataclass(frozen=True)
class MarketMeta:
    """What the engine reads of one market: assets, increments, filters, margin functions."""
    symbol: str
    base: str
    quote: str
    perp: bool
    tick: Decimal
    step: Decimal
    min_quantity: Decimal
    max_quantity: Optional[Decimal]
    min_price: Optional[Decimal]
    max_price: Optional[Decimal]
    max_multiplier: Optional[Decimal]
    min_multiplier: Optional[Decimal]
    imf_function: dict
    mmf_function: dict


# ------------------------------------------------------------------------------------------
# REST shapes (backpack-api.md §5)
# ------------------------------------------------------------------------------------------

_NULL_ORDER_FIELDS = (
    'relatedOrderId', 'stopLossLimitPrice', 'stopLossTriggerBy', 'stopLossTriggerPrice', 'strategyId',
    'takeProfitLimitPrice', 'takeProfitTriggerBy', 'takeProfitTriggerPrice', 'triggerBy', 'triggerPrice',
    'triggerQuantity', 'triggeredAt',
)


def order_to_rest(order: Order) -> dict:
    """The order object of ``POST/GET/DELETE /api/v1/order`` and of the ``GET /api/v1/orders``
    list (the same shape: no ``systemOrderType`` there, backpack-api.md 5). Limit orders carry
    ``postOnly``/``price``, market orders ``quoteQuantity``."""
    out: dict[str, Any] = {
        'clientId': order.client_id,
        'createdAt': order.created_us // 1000,
        'executedQuantity': fmt(order.executed_quantity),
        'executedQuoteQuantity': fmt(order.executed_quote_quantity),
        'id': order.id,
        'orderType': order.order_type,
    }
    if order.order_type == 'Limit':
        out['postOnly'] = order.post_only
        out['price'] = _opt(order.price)
    out['quantity'] = _opt(order.quantity)
    if order.order_type == 'Market':
        out['quoteQuantity'] = _opt(order.quote_quantity)
    out.update({
        'reduceOnly': order.reduce_only,
        'selfTradePrevention': order.self_trade_prevention,
        'side': order.side,
        'status': order.status,
        'symbol': order.symbol,
        'timeInForce': order.time_in_force,
    })
    for key in _NULL_ORDER_FIELDS:
        out[key] = None
    return dict(sorted(out.items()))


def order_to_history(order: Order) -> dict:
    """A row of ``GET /wapi/v1/history/orders`` (naive-UTC ``createdAt``, ``expiryReason``,
    ``slippageTolerance``/``slippageToleranceType``: null, the simulator takes no such orders)."""
    out = {
        'clientId': order.client_id,
        'createdAt': naive_utc(order.created_us),
        'executedQuantity': fmt(order.executed_quantity),
        'executedQuoteQuantity': fmt(order.executed_quote_quantity),
        'expiryReason': order.expiry_reason,
        'id': order.id,
        'orderType': order.order_type,
        'postOnly': order.post_only,
        'price': _opt(order.price),
        'quantity': _opt(order.quantity),
        'quoteQuantity': _opt(order.quote_quantity),
        'selfTradePrevention': order.self_trade_prevention,
        'side': order.side,
        'slippageTolerance': None,
        'slippageToleranceType': None,
        'status': order.status,
        'stopLossLimitPrice': None,
        'stopLossTriggerBy': None,
        'stopLossTriggerPrice': None,
        'strategyId': None,
        'symbol': order.symbol,
        'systemOrderType': None,
        'takeProfitLimitPrice': None,
        'takeProfitTriggerBy': None,
        'takeProfitTriggerPrice': None,
        'timeInForce': order.time_in_force,
        'triggerBy': None,
        'triggerPrice': None,
        'triggerQuantity': None,
    }
    return out


def fill_to_rest(fill: FillRecord) -> dict:
    """A row of ``GET /wapi/v1/history/fills``."""
    return {
        'clientId': fill.client_id,
        'fee': fmt(fill.fee),
        'feeSymbol': fill.fee_symbol,
        'isMaker': fill.is_maker,
        'orderId': fill.order_id,
        'price': fmt(fill.price),
        'quantity': fmt(fill.quantity),
        'side': fill.side,
        'symbol': fill.symbol,
        'systemOrderType': None,
        'timestamp': naive_utc(fill.ts_us),
        'tradeId': fill.trade_id,
    }


# ------------------------------------------------------------------------------------------
# Payload validation
# ------------------------------------------------------------------------------------------

def _decimal(value: Any, name: str, code: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise OrderRejected(400, code, f'{name} must be a decimal string, got {value!r}')
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise OrderRejected(400, code, f'{name} must be a decimal string, got {value!r}') from None
    if not number.is_finite():
        raise OrderRejected(400, code, f'{name} must be a finite decimal, got {value!r}')
    if number <= 0:
        raise OrderRejected(400, code, f'{name} must be greater than zero, got {value!r}')
    return number


def _scale(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _on_grid(value: Decimal, increment: Decimal, name: str, code: str) -> None:
    try:
        if value % increment == 0:
            return
    except InvalidOperation:
        raise OrderRejected(400, code, f'{name} {value} is out of range') from None
    label = 'Price' if code == 'INVALID_PRICE' else 'Quantity'
    if _scale(value) > _scale(increment):
        raise OrderRejected(400, code, f'{label} decimal too long: {name} {fmt(value)} has more decimals '
                                       f'than the {"tick" if label == "Price" else "step"} size {fmt(increment)}')
    raise OrderRejected(400, code, f'{name} {fmt(value)} is not a multiple of the '
                                   f'{"tick" if label == "Price" else "step"} size {fmt(increment)}')


def _flag(payload: Mapping[str, Any], name: str) -> Optional[bool]:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ('true', 'false'):
        return value == 'true'
    raise OrderRejected(400, 'INVALID_ORDER', f'{name} must be a boolean, got {value!r}')


def _floor(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(ROUND_FLOOR) * increment


def _ceil(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(ROUND_CEILING) * increment


def _dec(value: Any) -> Optional[Decimal]:
    return None if value is None else Decimal(str(value))


# ------------------------------------------------------------------------------------------
# The engine
# ------------------------------------------------------------------------------------------

class AccountEngine:
    """Every account of one simulated exchange, trading against ``market``.

    ``clock_us`` returns the engine time in µs; ``listener`` (settable later) receives each
    ``AccountEvent``. ``starting_balances`` maps asset -> decimal string for new accounts.
    """

    def __init__(self, market: MarketView, *, clock_us: Callable[[], int],
                 starting_balances: Optional[Mapping[str, str]] = None, fees: Optional[FeeSchedule] = None,
                 listener: Optional[Callable[[AccountEvent], None]] = None,
                 first_order_id: int = 7_000_000_001, first_position_id: int = 5_400_000_001):
        self.market = market
        self.clock_us = clock_us
        self.fees = fees or FeeSchedule()
        self.listener = listener
        balances = DEFAULT_STARTING_BALANCES if starting_balances is None else starting_balances
        self.starting_balances: dict[str, Decimal] = {}
        for asset, amount in balances.items():
            value = Decimal(str(amount))
            if not value.is_finite() or value < 0:
                raise ValueError(f'starting balance of {asset} must be a non-negative decimal, got {amount!r}')
            self.starting_balances[asset] = value
        self.accounts: dict[str, Account] = {}
        self._next_order_id = first_order_id
        self._next_position_id = first_position_id
        self._seq = 0
        self._meta: dict[str, MarketMeta] = {}
        self._executing = False
        self._own_trades: dict[str, set[int]] = {}
        self._last_us = 0
        self._sample_trade_id = 9 * 10 ** 12   # trade ids of hostile_account fills: far from real ones

    def now_us(self) -> int:
        """Engine time for new events: the clock, but never before an event already emitted."""
        now = self.clock_us()
        if now < self._last_us:
            return self._last_us
        self._last_us = now
        return now

    # ---------------------------------------------------------------- accounts and metadata

    def account(self, api_key: str) -> Account:
        """The account of ``api_key``, created and funded on first use."""
        acct = self.accounts.get(api_key)
        if acct is None:
            acct = self.accounts[api_key] = Account(api_key, user_id=len(self.accounts) + 1)
            for asset, amount in self.starting_balances.items():
                acct.balance(asset).available = amount
        return acct

    def meta(self, symbol: str) -> MarketMeta:
        cached = self._meta.get(symbol)
        if cached is not None:
            return cached
        market = self.market
        has = getattr(market, 'has_symbol', None)
        if not isinstance(symbol, str) or not symbol or (has is not None and not has(symbol)):
            raise OrderRejected(400, 'INVALID_SYMBOL', f'Unknown symbol {symbol!r}')
        try:
            info = market.market(symbol) if hasattr(market, 'market') else _markets.market_object(symbol)
            tick = Decimal(market.tick_size(symbol))
            step = Decimal(market.step_size(symbol))
            perp = bool(market.is_perp(symbol))
        except (KeyError, ValueError):
            raise OrderRejected(400, 'INVALID_SYMBOL', f'Unknown symbol {symbol!r}') from None
        price_filter = info.get('filters', {}).get('price', {})
        qty_filter = info.get('filters', {}).get('quantity', {})
        meta = MarketMeta(
            symbol=symbol, base=info.get('baseSymbol') or symbol.split('_')[0],
            quote=info.get('quoteSymbol') or symbol.split('_')[1], perp=perp, tick=tick, step=step,
            min_quantity=_dec(qty_filter.get('minQuantity')) or step,
            max_quantity=_dec(qty_filter.get('maxQuantity')),
            min_price=_dec(price_filter.get('minPrice')), max_price=_dec(price_filter.get('maxPrice')),
            max_multiplier=_dec(price_filter.get('maxMultiplier')),
            min_multiplier=_dec(price_filter.get('minMultiplier')),
            imf_function=dict(info.get('imfFunction') or _DEFAULT_IMF),
            mmf_function=dict(info.get('mmfFunction') or _DEFAULT_MMF),
        )
        self._meta[symbol] = meta
        return meta

    @staticmethod
    def _margin_fraction(function: dict, notional: Decimal) -> Decimal:
        base = Decimal(str(function.get('base', '0')))
        factor = Decimal(str(function.get('factor', '0')))
        return max(base, factor * abs(notional).sqrt())

    def _mark(self, meta: MarketMeta, fallback: Decimal) -> Decimal:
        mark = self.market.mark_price(meta.symbol)
        return fallback if mark is None or mark <= 0 else Decimal(mark)

    # ---------------------------------------------------------------- events

    def _emit(self, api_key: str, stream: str, symbol: Optional[str], data: dict) -> None:
        if self.listener is not None:
            self.listener(AccountEvent(api_key, stream, symbol, data))

    def order_frame(self, order: Order, event: str, ts_us: int, fill: Optional[FillRecord] = None) -> dict:
        """An ``account.orderUpdate`` data dict (§8.2 keys and types)."""
        data: dict[str, Any] = {'e': event, 'E': ts_us, 's': order.symbol, 'i': order.id}
        if order.client_id is not None:
            data['c'] = order.client_id
        data['S'] = order.side
        data['o'] = order.order_type.upper()
        data['f'] = order.time_in_force
        if order.quantity is not None:
            data['q'] = fmt(order.quantity)
        if order.quote_quantity is not None:
            data['Q'] = fmt(order.quote_quantity)
        if order.price is not None:
            data['p'] = fmt(order.price)
        data['X'] = order.status
        if event == 'orderExpired':
            data['R'] = order.expiry_reason
        data['z'] = fmt(order.executed_quantity)
        data['Z'] = fmt(order.executed_quote_quantity)
        if fill is not None:
            data['t'] = fill.trade_id
            data['l'] = fmt(fill.quantity)
            data['L'] = fmt(fill.price)
            data['m'] = fill.is_maker
            data['n'] = fmt(fill.fee)
            data['N'] = fill.fee_symbol
        else:
            data['t'] = None
        data['V'] = order.self_trade_prevention
        data['O'] = 'USER'
        data['r'] = bool(order.reduce_only)
        if order.post_only:
            data['y'] = True
        data['T'] = ts_us
        return dict(sorted(data.items()))

    def sample_frame(self, api_key: str, event: str, symbol: str) -> tuple[str, dict]:
        """``(stream base, data)`` of one plausible account frame of ``api_key`` for the
        ``hostile_account`` fault, before its field is replaced. ``event``: ``orderFill``,
        ``orderAccepted``, ``orderUpdate`` (sent as ``orderModified``: a state change of a resting
        order, no fill), ``positionUpdate`` (``positionAdjusted`` of the account's position in
        ``symbol``, or of a one-lot long when it has none), ``balanceUpdate`` (the account's real
        USDC balance, or its first asset's). Order frames describe a fresh order (and trade) id
        that the engine never uses otherwise; nothing in the account changes."""
        acct = self.account(api_key)
        ts = self.now_us()
        if event == 'balanceUpdate':
            asset = 'USDC' if 'USDC' in acct.balances or not acct.balances else sorted(acct.balances)[0]
            bal = acct.balance(asset)
            return BALANCE_UPDATE, {'A': fmt(bal.available), 'E': ts, 'L': fmt(bal.locked), 'S': fmt(bal.staked),
                                    'T': ts, 'a': asset, 'e': 'balanceUpdate'}
        meta = self.meta(symbol)
        price = max(_floor(self._mark(meta, _ONE), meta.tick), meta.tick)
        if event == 'positionUpdate':
            pos = acct.positions.get(symbol) or Position(self._next_position_id, symbol, meta.step, price)
            return POSITION_UPDATE, self.position_frame(acct, pos, 'positionAdjusted', ts)
        quantity = max(meta.min_quantity, meta.step)
        order = Order(str(self._next_order_id), api_key, symbol, 'Bid', 'Limit', 'GTC', price, quantity,
                      price * quantity, None, False, False, 'RejectTaker', ts, 0)
        self._next_order_id += 1
        if event != 'orderFill':
            return ORDER_UPDATE, self.order_frame(order, 'orderAccepted' if event == 'orderAccepted' else 'orderModified',
                                                  ts)
        self._sample_trade_id += 1
        order.status, order.executed_quantity, order.executed_quote_quantity = 'Filled', quantity, price * quantity
        fee = price * quantity * self.fees.taker
        fill = FillRecord(self._sample_trade_id, order.id, None, symbol, 'Bid', price, quantity, fee, meta.quote,
                          False, ts, meta.perp)
        return ORDER_UPDATE, self.order_frame(order, 'orderFill', ts, fill)

    def _emit_order(self, order: Order, event: str, ts_us: int, fill: Optional[FillRecord] = None) -> None:
        self._emit(order.api_key, ORDER_UPDATE, order.symbol, self.order_frame(order, event, ts_us, fill))

    def _emit_balances(self, acct: Account, assets: Iterable[str], ts_us: int) -> None:
        for asset in dict.fromkeys(assets):
            bal = acct.balance(asset)
            self._emit(acct.api_key, BALANCE_UPDATE, None, {
                'A': fmt(bal.available), 'E': ts_us, 'L': fmt(bal.locked), 'S': fmt(bal.staked), 'T': ts_us,
                'a': asset, 'e': 'balanceUpdate',
            })

    # ---------------------------------------------------------------- position views

    def _exposure(self, acct: Account, symbol: str, net: Decimal) -> Decimal:
        bids = sum((o.remaining for o in acct.open_orders.values() if o.symbol == symbol and o.side == 'Bid'), _ZERO)
        asks = sum((o.remaining for o in acct.open_orders.values() if o.symbol == symbol and o.side == 'Ask'), _ZERO)
        return max(abs(net + bids), abs(net - asks))

    def _position_values(self, acct: Account, pos: Position) -> dict[str, Decimal]:
        meta = self.meta(pos.symbol)
        mark = self._mark(meta, pos.entry_price)
        net = pos.net_quantity
        exposure = self._exposure(acct, pos.symbol, net)
        notional = exposure * mark
        if net > 0:
            break_even = pos.entry_price + pos.fees / net
        elif net < 0:
            break_even = pos.entry_price - pos.fees / -net
        else:
            break_even = pos.entry_price
        return {
            'net': net, 'exposure': exposure, 'notional': notional, 'break_even': break_even,
            'entry': pos.entry_price, 'mark': mark, 'imf': self._margin_fraction(meta.imf_function, notional),
            'mmf': self._margin_fraction(meta.mmf_function, notional), 'realized': pos.realized,
            'unrealized': (mark - pos.entry_price) * net, 'cost': pos.entry_price * net,
        }

    def position_frame(self, acct: Account, pos: Position, event: Optional[str], ts_us: int) -> dict:
        """An ``account.positionUpdate`` data dict; ``event`` None gives a subscribe snapshot (no ``e``)."""
        v = self._position_values(acct, pos)
        data: dict[str, Any] = {}
        if event is not None:
            data['e'] = event
        data.update({
            'E': ts_us, 's': pos.symbol, 'i': pos.id, 'q': fmt(v['net']), 'Q': fmt(v['exposure']),
            'n': fmt(v['notional']), 'b': fmt(v['break_even']), 'B': fmt(v['entry']), 'M': fmt(v['mark']),
            'f': fmt(v['imf']), 'm': fmt(v['mmf']), 'p': fmt(v['realized']), 'P': fmt(v['unrealized']),
            'l': '0', 'T': ts_us,
        })
        return dict(sorted(data.items()))

    def position_to_rest(self, acct: Account, pos: Position) -> dict:
        """An element of ``GET /api/v1/position``."""
        v = self._position_values(acct, pos)
        meta = self.meta(pos.symbol)
        return {
            'breakEvenPrice': fmt(v['break_even']),
            'cumulativeFundingPayment': '0',
            'cumulativeInterest': '0',  # announced as removed (2025-09-01), still sent live
            'entryPrice': fmt(v['entry']),
            'estLiquidationPrice': '0',
            'imf': fmt(v['imf']),
            'imfFunction': dict(meta.imf_function),
            'markPrice': fmt(v['mark']),
            'mmf': fmt(v['mmf']),
            'mmfFunction': dict(meta.mmf_function),
            'netCost': fmt(v['cost']),
            'netExposureNotional': fmt(v['notional']),
            'netExposureQuantity': fmt(v['exposure']),
            'netQuantity': fmt(v['net']),
            'pnlRealized': fmt(v['realized']),
            'pnlUnrealized': fmt(v['unrealized']),
            'positionId': str(pos.id),
            'subaccountId': None,
            'symbol': pos.symbol,
            'userId': acct.user_id,
        }

    def position_snapshot_frames(self, api_key: str, symbol: Optional[str] = None) -> list[dict]:
        """One snapshot frame (no ``e``) per open position of ``api_key``, optionally for one symbol."""
        acct = self.account(api_key)
        ts = self.now_us()
        return [self.position_frame(acct, pos, None, ts) for sym, pos in sorted(acct.positions.items())
                if symbol is None or sym == symbol]

    # ---------------------------------------------------------------- queries

    def capital(self, api_key: str) -> dict[str, dict[str, str]]:
        """``GET /api/v1/capital``: asset -> {available, locked, staked}."""
        acct = self.account(api_key)
        return {asset: {'available': fmt(b.available), 'locked': fmt(b.locked), 'staked': fmt(b.staked)}
                for asset, b in sorted(acct.balances.items())}

    def positions(self, api_key: str, symbol: Optional[str] = None) -> list[dict]:
        acct = self.account(api_key)
        return [self.position_to_rest(acct, pos) for sym, pos in sorted(acct.positions.items())
                if symbol is None or sym == symbol]

    def open_orders(self, api_key: str, symbol: Optional[str] = None,
                    market_type: Optional[str] = None) -> list[Order]:
        acct = self.account(api_key)
        out = []
        for order in acct.open_orders.values():
            if symbol is not None and order.symbol != symbol:
                continue
            if market_type is not None and ('PERP' if self.meta(order.symbol).perp else 'SPOT') != market_type:
                continue
            out.append(order)
        return out

    def find_open_order(self, api_key: str, symbol: str, order_id: Optional[str] = None,
                        client_id: Optional[int] = None) -> Order:
        """The open order by id or client id; ``OrderRejected`` 404 ``RESOURCE_NOT_FOUND`` otherwise."""
        if (order_id is None) == (client_id is None):
            raise OrderRejected(400, 'INVALID_CLIENT_REQUEST', 'Specify exactly one of orderId and clientId')
        acct = self.account(api_key)
        if order_id is not None:
            order = acct.open_orders.get(str(order_id))
            if order is not None and order.symbol == symbol:
                return order
        else:
            for order in reversed(acct.open_orders.values()):
                if order.client_id == client_id and order.symbol == symbol:
                    return order
        raise OrderRejected(404, 'RESOURCE_NOT_FOUND', 'Order not found')

    def order_history(self, api_key: str, *, symbol: Optional[str] = None, order_id: Optional[str] = None,
                      market_type: Optional[str] = None) -> list[Order]:
        """Every order of ``api_key`` (open and closed), newest first."""
        acct = self.account(api_key)
        out = []
        for order in reversed(acct.orders.values()):
            if symbol is not None and order.symbol != symbol:
                continue
            if order_id is not None and order.id != order_id:
                continue
            if market_type is not None and ('PERP' if self.meta(order.symbol).perp else 'SPOT') != market_type:
                continue
            out.append(order)
        return out

    def fill_history(self, api_key: str, *, symbol: Optional[str] = None, order_id: Optional[str] = None,
                     from_ms: Optional[int] = None, to_ms: Optional[int] = None,
                     market_type: Optional[str] = None, ascending: bool = False) -> list[FillRecord]:
        """Fills of ``api_key`` filtered like ``/wapi/v1/history/fills`` (``to_ms`` exclusive)."""
        acct = self.account(api_key)
        out = []
        for fill in acct.fills:
            if symbol is not None and fill.symbol != symbol:
                continue
            if order_id is not None and fill.order_id != order_id:
                continue
            if from_ms is not None and fill.ts_us < from_ms * 1000:
                continue
            if to_ms is not None and fill.ts_us >= to_ms * 1000:
                continue
            if market_type is not None and ('PERP' if fill.perp else 'SPOT') != market_type:
                continue
            out.append(fill)
        return out if ascending else out[::-1]

    # ---------------------------------------------------------------- validation

    def _validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, Mapping):
            raise OrderRejected(400, 'INVALID_CLIENT_REQUEST', 'Order payload must be a JSON object')
        if 'symbol' not in payload or payload.get('symbol') in (None, ''):
            raise OrderRejected(400, 'INVALID_CLIENT_REQUEST', 'symbol is required')
        meta = self.meta(payload['symbol'])
        state = self.market.market(meta.symbol).get('orderBookState', 'Open') if hasattr(self.market, 'market') \
            else 'Open'
        if state != 'Open':
            raise OrderRejected(400, 'INVALID_ORDER', f'Market {meta.symbol} is {state}: it accepts no orders')
        unsupported = [name for name in _UNSUPPORTED_FIELDS if payload.get(name) is not None]
        if unsupported:
            raise OrderRejected(400, 'NOT_IMPLEMENTED',
                                f'The simulator does not support trigger/TP/SL or slippage-tolerance orders '
                                f'({", ".join(unsupported)})')
        side = payload.get('side')
        if side not in _SIDES:
            raise OrderRejected(400, 'INVALID_ORDER', f'side must be Bid or Ask, got {side!r}')
        order_type = payload.get('orderType')
        if order_type not in _ORDER_TYPES:
            raise OrderRejected(400, 'INVALID_ORDER', f'orderType must be Limit or Market, got {order_type!r}')
        tif = payload.get('timeInForce')
        tif = 'GTC' if tif is None else tif
        if tif not in _TIME_IN_FORCE:
            raise OrderRejected(400, 'INVALID_ORDER', f'timeInForce must be GTC, IOC or FOK, got {tif!r}')
        stp = payload.get('selfTradePrevention')
        stp = 'RejectTaker' if stp is None else stp
        if stp not in _STP_MODES:
            raise OrderRejected(400, 'INVALID_ORDER',
                                f'selfTradePrevention must be RejectTaker, RejectMaker or RejectBoth, got {stp!r}')
        post_only = bool(_flag(payload, 'postOnly'))
        reduce_only = _flag(payload, 'reduceOnly')
        client_id = payload.get('clientId')
        if client_id is not None and (isinstance(client_id, bool) or not isinstance(client_id, int)
                                      or not 0 <= client_id <= UINT32_MAX):
            raise OrderRejected(400, 'INVALID_ORDER',
                                f'clientId must be an integer in 0..{UINT32_MAX}, got {client_id!r}')
        if post_only and order_type != 'Limit':
            raise OrderRejected(400, 'INVALID_ORDER', 'postOnly is only valid on Limit orders')
        if post_only and tif != 'GTC':
            raise OrderRejected(400, 'INVALID_ORDER', f'postOnly cannot be combined with timeInForce {tif}')
        if reduce_only and not meta.perp:
            raise OrderRejected(400, 'INVALID_ORDER', 'reduceOnly is only supported on perpetual markets')
        price = quantity = quote_quantity = None
        if payload.get('quantity') is not None:
            quantity = _decimal(payload['quantity'], 'quantity', 'INVALID_QUANTITY')
            _on_grid(quantity, meta.step, 'quantity', 'INVALID_QUANTITY')
            if quantity < meta.min_quantity:
                raise OrderRejected(400, 'INVALID_QUANTITY',
                                    f'Quantity {fmt(quantity)} is below the minimum {fmt(meta.min_quantity)}')
            if meta.max_quantity is not None and quantity > meta.max_quantity:
                raise OrderRejected(400, 'INVALID_QUANTITY',
                                    f'Quantity {fmt(quantity)} is above the maximum {fmt(meta.max_quantity)}')
        if payload.get('quoteQuantity') is not None:
            quote_quantity = _decimal(payload['quoteQuantity'], 'quoteQuantity', 'INVALID_QUANTITY')
        if order_type == 'Limit':
            if payload.get('price') is None:
                raise OrderRejected(400, 'INVALID_PRICE', 'price is required for Limit orders')
            if quantity is None:
                raise OrderRejected(400, 'INVALID_QUANTITY', 'quantity is required for Limit orders')
            if quote_quantity is not None:
                raise OrderRejected(400, 'INVALID_ORDER', 'quoteQuantity is only valid on Market orders')
            price = _decimal(payload['price'], 'price', 'INVALID_PRICE')
            _on_grid(price, meta.tick, 'price', 'INVALID_PRICE')
            self._check_price_band(meta, price)
        else:
            if (quantity is None) == (quote_quantity is None):
                raise OrderRejected(400, 'INVALID_ORDER',
                                    'Market orders need exactly one of quantity and quoteQuantity')
            touch = self.market.best_ask(meta.symbol) if side == 'Bid' else self.market.best_bid(meta.symbol)
            if quote_quantity is not None and touch is not None and _floor(quote_quantity / touch, meta.step) <= 0:
                raise OrderRejected(400, 'INVALID_QUANTITY',
                                    f'quoteQuantity {fmt(quote_quantity)} buys less than one step '
                                    f'({fmt(meta.step)}) at {fmt(Decimal(touch))}')
        return {'meta': meta, 'side': side, 'order_type': order_type, 'tif': tif, 'stp': stp,
                'post_only': post_only, 'reduce_only': reduce_only, 'client_id': client_id, 'price': price,
                'quantity': quantity, 'quote_quantity': quote_quantity}

    def _check_price_band(self, meta: MarketMeta, price: Decimal) -> None:
        if meta.min_price is not None and price < meta.min_price:
            raise OrderRejected(400, 'INVALID_PRICE',
                                f'Price {fmt(price)} is below the minimum price {fmt(meta.min_price)}')
        if meta.max_price is not None and price > meta.max_price:
            raise OrderRejected(400, 'INVALID_PRICE',
                                f'Price {fmt(price)} is above the maximum price {fmt(meta.max_price)}')
        reference = self._reference_price(meta)
        if reference is None:
            return
        if meta.max_multiplier is not None and price > reference * meta.max_multiplier:
            raise OrderRejected(400, 'INVALID_PRICE', 'Price is too far from the last active price')
        if meta.min_multiplier is not None and price < reference * meta.min_multiplier:
            raise OrderRejected(400, 'INVALID_PRICE', 'Price is too far from the last active price')

    def _reference_price(self, meta: MarketMeta) -> Optional[Decimal]:
        bid, ask = self.market.best_bid(meta.symbol), self.market.best_ask(meta.symbol)
        if bid is not None and ask is not None:
            return (Decimal(bid) + Decimal(ask)) / 2
        mark = self.market.mark_price(meta.symbol)
        return None if mark is None or mark <= 0 else Decimal(mark)

    # ---------------------------------------------------------------- placement

    def _reducible(self, acct: Account, meta: MarketMeta, side: str) -> Decimal:
        """How much an order on ``side`` can reduce the current position."""
        pos = acct.positions.get(meta.symbol)
        if pos is None:
            return _ZERO
        net = pos.net_quantity
        if side == 'Bid' and net < 0:
            return -net
        if side == 'Ask' and net > 0:
            return net
        return _ZERO

    def _check_funds(self, acct: Account, spec: dict) -> None:
        meta: MarketMeta = spec['meta']
        side, price, quantity, quote = spec['side'], spec['price'], spec['quantity'], spec['quote_quantity']
        touch = self.market.best_ask(meta.symbol) if side == 'Bid' else self.market.best_bid(meta.symbol)
        ref = price if price is not None else (Decimal(touch) if touch is not None else None)
        if meta.perp:
            if spec['reduce_only']:
                return
            if ref is None:
                return
            size = quantity if quantity is not None else quote / ref
            increasing = max(_ZERO, size - self._reducible(acct, meta, side))
            needed = increasing * ref * self._margin_fraction(meta.imf_function, increasing * ref)
            if acct.balance(meta.quote).available < needed:
                raise OrderRejected(400, 'INSUFFICIENT_MARGIN',
                                    f'Insufficient margin: {fmt(needed)} {meta.quote} needed')
            return
        if side == 'Bid':
            if quote is not None:
                needed = quote
            elif ref is not None:
                needed = quantity * ref
            else:
                return
            asset = meta.quote
        else:
            asset = meta.base
            if quantity is not None:
                needed = quantity
            elif ref is not None:
                needed = _floor(quote / ref, meta.step)
            else:
                return
        if acct.balance(asset).available < needed:
            raise OrderRejected(400, 'INSUFFICIENT_FUNDS', f'Insufficient funds: {fmt(needed)} {asset} needed')

    def _quote_estimate(self, meta: MarketMeta, side: str, quantity: Decimal) -> Optional[Decimal]:
        touch = self.market.best_ask(meta.symbol) if side == 'Bid' else self.market.best_bid(meta.symbol)
        if touch is None:
            return None
        return _ceil(quantity * Decimal(touch), meta.tick)

    def place_order(self, api_key: str, payload: Mapping[str, Any]) -> Order:
        """Validate, accept and run an order; returns it in its state after the taker phase.

        Raises ``OrderRejected`` (nothing happened) for invalid payloads and unfunded orders.
        """
        acct = self.account(api_key)
        spec = self._validate(payload)
        meta: MarketMeta = spec['meta']
        self._check_funds(acct, spec)
        ts = self.now_us()
        if spec['order_type'] == 'Limit':
            shown_quote = spec['price'] * spec['quantity']
        elif spec['quote_quantity'] is not None:
            shown_quote = spec['quote_quantity']
        else:
            shown_quote = self._quote_estimate(meta, spec['side'], spec['quantity'])
        self._seq += 1
        order = Order(
            id=str(self._next_order_id), api_key=api_key, symbol=meta.symbol, side=spec['side'],
            order_type=spec['order_type'], time_in_force=spec['tif'], price=spec['price'],
            quantity=spec['quantity'], quote_quantity=shown_quote, client_id=spec['client_id'],
            post_only=spec['post_only'], reduce_only=spec['reduce_only'], self_trade_prevention=spec['stp'],
            created_us=ts, seq=self._seq,
        )
        self._next_order_id += 1
        acct.orders[order.id] = order
        acct.open_orders[order.id] = order
        self._emit_order(order, 'orderAccepted', ts)

        if order.reduce_only and self._reducible(acct, meta, order.side) <= 0:
            self._expire(acct, order, 'ReduceOnlyNotReduced', ts)
            return order
        if order.post_only and self._would_take(order):
            self._expire(acct, order, 'PostOnlyTaker', ts)
            return order
        if order.time_in_force == 'FOK' and not self._fok_fillable(acct, order):
            self._expire(acct, order, 'FillOrKill', ts)
            return order
        self._lock(acct, order, meta, ts)
        reason = self._take(acct, order, meta)
        if not order.is_open:
            return order
        ts = self.now_us()
        if order.order_type == 'Market':
            self._expire(acct, order, reason or 'InsufficientLiquidity', ts)
        elif reason == 'ReduceOnlyNotReduced':
            self._expire(acct, order, reason, ts)
        elif order.time_in_force == 'IOC':
            self._expire(acct, order, 'ImmediateOrCancel', ts)
        elif order.time_in_force == 'FOK':
            self._expire(acct, order, 'FillOrKill', ts)
        return order

    def _would_take(self, order: Order) -> bool:
        if order.side == 'Bid':
            ask = self.market.best_ask(order.symbol)
            return ask is not None and order.price >= ask
        bid = self.market.best_bid(order.symbol)
        return bid is not None and order.price <= bid

    def _fok_fillable(self, acct: Account, order: Order) -> bool:
        snapshot = self.market.book_snapshot(order.symbol)
        levels = snapshot.asks if order.side == 'Bid' else snapshot.bids
        meta = self.meta(order.symbol)
        wanted = order.remaining if not order.quote_based else None
        budget = order.quote_quantity if order.quote_based else None
        if order.reduce_only:
            cap = self._reducible(acct, meta, order.side)
            if wanted is not None and cap < wanted:
                return False
        for price, size in levels:
            price, size = Decimal(price), Decimal(size)
            if order.price is not None and (price > order.price if order.side == 'Bid' else price < order.price):
                break
            if wanted is not None:
                wanted -= min(wanted, size)
                if wanted <= 0:
                    return True
            else:
                budget -= min(size, _floor(budget / price, meta.step)) * price
                if _floor(budget / price, meta.step) <= 0:
                    return True
        return False

    def _lock(self, acct: Account, order: Order, meta: MarketMeta, ts: int) -> None:
        if order.order_type != 'Limit':
            return
        if meta.perp:
            increasing = max(_ZERO, order.quantity - self._reducible(acct, meta, order.side))
            if order.reduce_only or not increasing:
                return
            notional = order.price * increasing
            amount, asset = notional * self._margin_fraction(meta.imf_function, notional), meta.quote
        elif order.side == 'Bid':
            amount, asset = order.price * order.quantity, meta.quote
        else:
            amount, asset = order.quantity, meta.base
        bal = acct.balance(asset)
        bal.available -= amount
        bal.locked += amount
        order.lock_asset, order.locked = asset, amount
        self._emit_balances(acct, (asset,), ts)

    def _release(self, acct: Account, order: Order) -> Optional[str]:
        if not order.locked:
            return None
        bal = acct.balance(order.lock_asset)
        bal.locked -= order.locked
        bal.available += order.locked
        order.locked = _ZERO
        return order.lock_asset

    def _close(self, acct: Account, order: Order) -> None:
        acct.open_orders.pop(order.id, None)

    def _expire(self, acct: Account, order: Order, reason: str, ts: int) -> None:
        order.status = 'Expired'
        order.expiry_reason = reason
        released = self._release(acct, order)
        self._close(acct, order)
        self._emit_order(order, 'orderExpired', ts)
        if released:
            self._emit_balances(acct, (released,), ts)

    # ---------------------------------------------------------------- taker phase

    def _take(self, acct: Account, order: Order, meta: MarketMeta) -> Optional[str]:
        """Execute the marketable part level by level; return why it stopped early, if it did."""
        market = self.market
        while order.is_open:
            touch = market.best_ask(meta.symbol) if order.side == 'Bid' else market.best_bid(meta.symbol)
            if touch is None:
                return 'InsufficientLiquidity'
            touch = Decimal(touch)
            if order.price is not None and (touch > order.price if order.side == 'Bid' else touch < order.price):
                return None
            if order.quote_based:
                wanted = _floor((order.quote_quantity - order.executed_quote_quantity) / touch, meta.step)
            else:
                wanted = order.remaining
            size, reason = wanted, None
            if not meta.perp and order.order_type == 'Market':
                if order.side == 'Bid':
                    affordable = _floor(acct.balance(meta.quote).available / touch, meta.step)
                else:
                    affordable = _floor(acct.balance(meta.base).available, meta.step)
                if affordable < size:
                    size, reason = affordable, 'InsufficientFunds'
            if order.reduce_only:
                cap = self._reducible(acct, meta, order.side)
                if cap < size:
                    size, reason = cap, 'ReduceOnlyNotReduced'
            if size <= 0:
                return reason or 'InsufficientLiquidity'
            self._executing = True
            try:
                fills = market.execute_taker(meta.symbol, order.side, size, touch, None)
            finally:
                self._executing = False
            if not fills:
                return 'InsufficientLiquidity'
            own = self._own_trades.setdefault(meta.symbol, set())
            for fill in fills:
                own.add(fill.trade_id)
            if len(own) > 10_000:
                for stale in sorted(own)[:5_000]:
                    own.discard(stale)
            for fill in fills:
                self._apply_fill(acct, order, meta, Decimal(fill.price), Decimal(fill.quantity), fill.trade_id,
                                 fill.ts_us, is_maker=False)
        return None

    # ---------------------------------------------------------------- resting fills

    def on_market_trade(self, symbol: str, price: Decimal, quantity: Decimal, taker_side: str, trade_id: int,
                        ts_us: int) -> None:
        """A public trade printed: fill resting limit orders it went through (as makers).

        Ignored while an account's own taker order is executing and for the trades those
        executions printed.
        """
        if self._executing:
            return
        own = self._own_trades.get(symbol)
        if own is not None and trade_id in own:
            own.discard(trade_id)
            return
        price, remaining = Decimal(price), Decimal(quantity)
        resting_side = 'Bid' if taker_side == 'Ask' else 'Ask'
        candidates = []
        for acct in self.accounts.values():
            for order in acct.open_orders.values():
                if order.symbol != symbol or order.side != resting_side or order.order_type != 'Limit':
                    continue
                if (order.price >= price) if resting_side == 'Bid' else (order.price <= price):
                    key = -order.price if resting_side == 'Bid' else order.price
                    candidates.append((key, order.seq, acct, order))
        candidates.sort(key=lambda c: (c[0], c[1]))
        for _, _, acct, order in candidates:
            if remaining <= 0:
                break
            if not order.is_open:
                continue
            meta = self.meta(symbol)
            size = min(remaining, order.remaining)
            if order.reduce_only:
                cap = self._reducible(acct, meta, order.side)
                if cap <= 0:
                    self._expire(acct, order, 'ReduceOnlyNotReduced', ts_us)
                    continue
                size = min(size, cap)
            remaining -= size
            self._apply_fill(acct, order, meta, order.price, size, trade_id, ts_us, is_maker=True)

    # ---------------------------------------------------------------- settlement

    def _apply_fill(self, acct: Account, order: Order, meta: MarketMeta, price: Decimal, qty: Decimal, trade_id: int,
                    ts_us: int, *, is_maker: bool) -> None:
        rate = self.fees.maker if is_maker else self.fees.taker
        self._last_us = max(self._last_us, ts_us)
        notional = price * qty
        changed: list[str] = []
        quote = acct.balance(meta.quote)
        position_event = None
        if meta.perp:
            fee, fee_asset = notional * rate, meta.quote
            if order.locked:
                share = order.locked if qty >= order.remaining else order.locked * qty / order.remaining
                order.locked -= share
                quote.locked -= share
                quote.available += share
            quote.available -= fee
            pnl, position_event = self._update_position(acct, meta, order.side, price, qty, fee)
            quote.available += pnl
            changed.append(meta.quote)
        else:
            base = acct.balance(meta.base)
            if order.side == 'Bid':
                fee, fee_asset = qty * rate, meta.base
                if order.lock_asset == meta.quote and order.locked:
                    consumed = order.price * qty
                    order.locked -= consumed
                    quote.locked -= consumed
                    quote.available += consumed - notional
                else:
                    quote.available -= notional
                base.available += qty - fee
            else:
                fee, fee_asset = notional * rate, meta.quote
                if order.lock_asset == meta.base and order.locked:
                    order.locked -= qty
                    base.locked -= qty
                else:
                    base.available -= qty
                quote.available += notional - fee
            changed.extend((meta.base, meta.quote))
        order.executed_quantity += qty
        order.executed_quote_quantity += notional
        done = self._is_done(order, meta, price)
        if done:
            order.status = 'Filled'
            released = self._release(acct, order)
            if released:
                changed.append(released)
            self._close(acct, order)
        else:
            order.status = 'PartiallyFilled'
        record = FillRecord(trade_id, order.id, order.client_id, meta.symbol, order.side, price, qty, fee, fee_asset,
                            is_maker, ts_us, meta.perp)
        acct.fills.append(record)
        self._emit_order(order, 'orderFill', ts_us, record)
        if position_event is not None:
            event, pos = position_event
            self._emit(acct.api_key, POSITION_UPDATE, meta.symbol, self.position_frame(acct, pos, event, ts_us))
        self._emit_balances(acct, changed, ts_us)

    def _is_done(self, order: Order, meta: MarketMeta, last_price: Decimal) -> bool:
        """Quantity orders: nothing left. Quote orders: the rest of the budget cannot buy one more
        step, neither at the last fill price nor at the touch the next match would use."""
        if not order.quote_based:
            return order.remaining <= 0
        left = order.quote_quantity - order.executed_quote_quantity
        if _floor(left / last_price, meta.step) <= 0:
            return True
        touch = self.market.best_ask(meta.symbol) if order.side == 'Bid' else self.market.best_bid(meta.symbol)
        return touch is not None and _floor(left / Decimal(touch), meta.step) <= 0

    def _update_position(self, acct: Account, meta: MarketMeta, side: str, price: Decimal, qty: Decimal,
                         fee: Decimal) -> tuple[Decimal, tuple[str, Position]]:
        pos = acct.positions.get(meta.symbol)
        opened = pos is None
        if pos is None:
            pos = Position(self._next_position_id, meta.symbol)
            self._next_position_id += 1
            acct.positions[meta.symbol] = pos
        signed = qty if side == 'Bid' else -qty
        old = pos.net_quantity
        new = old + signed
        pnl = _ZERO
        if old == 0 or (old > 0) == (signed > 0):
            pos.entry_price = (pos.entry_price * abs(old) + price * qty) / abs(new)
            pos.fees += fee
        else:
            closed = min(qty, abs(old))
            direction = _ONE if old > 0 else -_ONE
            pnl = (price - pos.entry_price) * closed * direction
            pos.realized += pnl
            if abs(signed) < abs(old):
                pos.fees = pos.fees * abs(new) / abs(old)
            elif new == 0:
                pos.fees = _ZERO
            else:
                pos.entry_price = price
                pos.fees = fee * abs(new) / qty
        pos.net_quantity = new
        if new == 0:
            del acct.positions[meta.symbol]
            return pnl, ('positionClosed', pos)
        return pnl, ('positionOpened' if opened else 'positionAdjusted', pos)

    # ---------------------------------------------------------------- cancellation

    def cancel_order(self, api_key: str, symbol: str, order_id: Optional[str] = None,
                     client_id: Optional[int] = None) -> Order:
        """Cancel one open order; ``OrderRejected`` 404 when there is none."""
        self.meta(symbol)
        acct = self.account(api_key)
        order = self.find_open_order(api_key, symbol, order_id, client_id)
        self._cancel(acct, order, self.now_us())
        return order

    def cancel_all(self, api_key: str, symbol: str, order_type: Optional[str] = None) -> list[Order]:
        """Cancel every open order on ``symbol``; ``ConditionalOrder`` cancels nothing (no triggers here)."""
        self.meta(symbol)
        if order_type not in (None, 'RestingLimitOrder', 'ConditionalOrder'):
            raise OrderRejected(400, 'INVALID_CLIENT_REQUEST',
                                f'orderType must be RestingLimitOrder or ConditionalOrder, got {order_type!r}')
        acct = self.account(api_key)
        if order_type == 'ConditionalOrder':
            return []
        ts = self.now_us()
        cancelled = [o for o in acct.open_orders.values() if o.symbol == symbol]
        for order in cancelled:
            self._cancel(acct, order, ts)
        return cancelled

    def _cancel(self, acct: Account, order: Order, ts: int) -> None:
        order.status = 'Cancelled'
        released = self._release(acct, order)
        self._close(acct, order)
        self._emit_order(order, 'orderCancelled', ts)
        if released:
            self._emit_balances(acct, (released,), ts)

    def place_batch(self, api_key: str, payloads: Sequence[Any]) -> list[dict]:
        """Batch placement: one entry per payload, an order object tagged ``operation: Ok`` or an
        error ``{code, message, operation: Err}``."""
        results = []
        for payload in payloads:
            try:
                order = self.place_order(api_key, payload)
            except OrderRejected as exc:
                results.append({**exc.body(), 'operation': 'Err'})
            else:
                results.append({**order_to_rest(order), 'operation': 'Ok'})
        return results
