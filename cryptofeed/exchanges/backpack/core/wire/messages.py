"""Typed Backpack WebSocket frames, and the decoders that read them in one pass.

Use this module when you hold a raw frame from ``wss://ws.backpack.exchange`` and want typed
data: every payload of backpack-api.md section 8 has one frozen ``msgspec.Struct`` here whose
attribute names are the venue's own single-letter keys (``p`` price, ``q`` quantity, ``E``
event time, ...), so a field can be checked against the API notes at a glance. Prices,
quantities, fees and rates decode straight from their JSON strings (or JSON numbers) to
``Decimal``; nothing goes through ``float``.

How a frame is decoded (section 7): every data frame is ``{"stream": <name>, "data": {...}}``
and every payload carries its event type in ``data.e``. ``ENVELOPE_DECODER`` decodes the
envelope and the payload in a single pass, choosing the payload struct from ``e`` (a msgspec
tagged union). Frames it cannot read go to the slower, more tolerant decoders below; the
router (``router.py``) decides which and counts what it drops:

* ``ENVELOPE_DECODER_LAX`` - the same union in msgspec's lax mode, which also accepts numbers
  sent as JSON strings. Section 11 records ``E``/``T`` (and bookTicker ``u``) arriving as
  numeric strings in some captures; lax mode converts them in C, so ``E``/``T`` are always
  ``int`` on every struct, whichever way the exchange spelled them.
* ``PROBE_DECODER`` - reads only the outline of a frame (``stream``, raw ``data``, ``error``),
  to classify error frames, payloads without ``e`` and unknown event types.
* ``PAYLOAD_DECODERS`` - one lax decoder per stream kind for the raw ``data`` of a frame the
  union rejected, e.g. the position snapshot pushed on subscribe, which has no ``e`` (8.2).
* ``ERROR_DECODER`` - the server's error frame ``{"id": null, "error": {code, message}}``.

Units (section 2): ``E``/``T`` are microseconds since the epoch (``int``); kline ``t``/``T`` are
naive-UTC ISO strings, decoded to ``datetime`` (timezone-naive means UTC); markPrice ``n`` is
milliseconds. Converting units is the adapters' job (``adapters.py``), not this module's.

Hostile values (prices or sizes ``NaN``, ``Infinity``, ``sNaN``, ``1E+400``, negative) are refused
here, at the boundary, by each public payload's ``__post_init__``: msgspec turns the ``ValueError``
into a ``ValidationError``, so the router counts and drops the frame as ``invalid`` like any
other malformed payload and no handler, book or callback ever sees such a value. The bounds
(``is_price``, ``is_size``, ``is_rate``) are shared with the REST parsers of ``adapters.py``:

* a price is finite and in ``[1E-18, 1E+18)``; a size is that or exactly zero; a funding rate is
  a fraction of notional strictly between -1 and 1;
* ``1E+18`` is more than a thousand times the largest real Backpack figure (the biggest token
  supplies are ~1E+15 units; BTC trades near 1E+5) and keeps every accepted value exact as an
  int64 and finite as a float (cryptofeed backends convert to float); ``1E-18`` is nine orders of
  magnitude below Backpack's finest tick or step (about 1E-9), so a real value never trips it,
  while values that would round to ``0.0`` as floats do.

Depth levels are checked by the book (``book.py``), not here.

The private payloads are held to the same bounds, field by field, in their ``__post_init__``
(a refused frame is counted and dropped by the router like a public one, so no account callback
or account state ever sees it; the error names the order, trade, position or asset):

* ``OrderUpdate`` (every ``account.orderUpdate`` event): prices ``p`` (limit), ``P`` (trigger) and
  the fill's ``L`` price and ``l`` quantity are prices (positive); quantities ``q``, ``Q``, ``z``,
  ``Z`` are sizes (``q`` is ``"0"`` on pending triggers); the executed ``z`` is at most ``q``; the
  fee ``n`` is signed (a maker rebate is negative) but finite and below ``1E+18``; the trade id
  ``t`` is non-negative; the client id ``c`` is a uint32.
* ``PositionUpdate``: the net quantity ``q``, net exposure ``Q``/``n``, break-even ``b`` and the
  PnL ``P``/``p`` are signed (``is_signed``); entry ``B``, mark ``M``, liquidation ``l`` prices and
  the margin fractions ``f``/``m`` are sizes (zero allowed: a closed position, the ``l``
  placeholder).
* ``BalanceUpdate``: available ``A``, locked ``L`` and staked ``S`` are sizes.
* Times ``E``/``T`` (when present) are plausible microseconds: ``MICROS_FLOOR`` (2015-01-01) up to
  ``MICROS_CEILING`` (2100-01-01), so ``-1``, a time in ms and ``10**20`` are refused.

Private order and position events share one payload shape per stream, so ``OrderUpdate`` and
``PositionUpdate`` are untagged base classes with one tagged subclass per event type;
``msg.event`` gives the ``e`` value, or None for a payload that had none (position snapshot)
or an event type not listed in section 8.2 (decoded through ``PAYLOAD_DECODERS``, which read
such payloads into the base class rather than lose an order update).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Dict, List, Literal, Optional, Tuple, Union

import msgspec

from cryptofeed.exchanges.backpack.core.wire.levels import MAX_LEVEL_VALUE, BookPrice, dec_hook

__all__ = [
    'Level', 'Side', 'Trade', 'Depth', 'BookTicker', 'Ticker24h', 'Kline', 'MarkPrice', 'OpenInterest',
    'Liquidation', 'OrderUpdate', 'OrderAccepted', 'OrderCancelled', 'OrderExpired', 'OrderFill',
    'OrderModified', 'TriggerPlaced', 'TriggerFailed', 'PositionUpdate', 'PositionOpened',
    'PositionAdjusted', 'PositionClosed', 'BalanceUpdate', 'Payload', 'Envelope', 'ErrorBody',
    'ErrorFrame', 'Probe', 'STREAM_PAYLOADS', 'ENVELOPE_DECODER', 'ENVELOPE_DECODER_LAX',
    'PROBE_DECODER', 'ERROR_DECODER', 'PAYLOAD_DECODERS', 'PAYLOAD_TYPES',
    'VALUE_CEILING', 'VALUE_FLOOR', 'MICROS_FLOOR', 'MICROS_CEILING', 'is_price', 'is_size', 'is_rate', 'is_signed',
    'is_micros',
]

Level = Tuple[BookPrice, Decimal]
"""One book level ``[price, quantity]``, both ``Decimal``; quantity is absolute and zero removes the
level. The price is validated and interned at decode time (``levels.py``): a frame with a NaN,
infinite, non-positive or absurdly large price is refused like any malformed payload. Sizes are
checked by ``book.BookSync``."""

Side = Literal['Bid', 'Ask']
"""An order side; any other value makes the frame invalid rather than guessing a direction."""


# -- value plausibility (see the module docstring) -------------------------------------------

VALUE_CEILING = MAX_LEVEL_VALUE  # one bound for every price and size, depth levels included
"""Exclusive upper bound of every price and size magnitude."""

VALUE_FLOOR = Decimal('1E-18')
"""Smallest non-zero price or size magnitude accepted."""

_ONE = Decimal(1)
_MINUS_ONE = Decimal(-1)


def is_price(value: Any) -> bool:
    """True for a finite decimal in ``[VALUE_FLOOR, VALUE_CEILING)``. Never raises: ``NaN`` and
    ``sNaN`` (whose comparisons signal ``InvalidOperation``) are simply not prices."""
    try:
        return VALUE_FLOOR <= value < VALUE_CEILING
    except (ArithmeticError, TypeError):
        return False


def is_size(value: Any) -> bool:
    """A price-like magnitude or exactly zero (a zero size deletes a level, or means "none")."""
    try:
        return value == 0 or VALUE_FLOOR <= value < VALUE_CEILING
    except (ArithmeticError, TypeError):
        return False


def is_rate(value: Any) -> bool:
    """A funding rate: a fraction of notional strictly between -1 and 1."""
    try:
        return _MINUS_ONE < value < _ONE
    except (ArithmeticError, TypeError):
        return False


def is_signed(value: Any) -> bool:
    """A signed amount (PnL, a fee, a net position): finite, of magnitude below ``VALUE_CEILING``."""
    try:
        return -VALUE_CEILING < value < VALUE_CEILING
    except (ArithmeticError, TypeError):
        return False


MICROS_FLOOR = 1_420_070_400_000_000
"""2015-01-01 UTC in microseconds: the earliest plausible exchange time."""
MICROS_CEILING = 4_102_444_800_000_000
"""2100-01-01 UTC in microseconds (exclusive)."""


def is_micros(value: Any) -> bool:
    """An exchange time in microseconds: an ``int`` in ``[MICROS_FLOOR, MICROS_CEILING)``."""
    return isinstance(value, int) and not isinstance(value, bool) and MICROS_FLOOR <= value < MICROS_CEILING


def _private_problem(self: Any) -> Optional[str]:
    """What is wrong with the values of a private payload (its ``_positive``, ``_non_negative``
    and ``_signed`` decimals, its ``E``/``T`` times), or None."""
    for names, check, what in ((self._positive, is_price, 'positive'), (self._non_negative, is_size, 'non-negative'),
                               (self._signed, is_signed, 'finite')):
        for name in names:
            value = getattr(self, name)
            if value is not None and not check(value):
                return f'{name}={str(value)[:40]} is not {what} and below {VALUE_CEILING}'
    for name in ('E', 'T'):
        value = getattr(self, name)
        if value is not None and not is_micros(value):
            return f'{name}={str(value)[:40]} is not a time in microseconds between 2015 and 2100'
    return None


_UINT32_MAX = 2 ** 32 - 1


def _check_order(self: Any) -> None:
    """``__post_init__`` of ``OrderUpdate`` (see the module docstring)."""
    problem = _private_problem(self)
    if problem is None:
        if self.t is not None and self.t < 0:
            problem = f't={self.t} is not a trade id'
        elif self.c is not None and not 0 <= self.c <= _UINT32_MAX:
            problem = f'c={self.c} is not a client id (0..2**32-1)'
        elif self.q is not None and self.z is not None and self.z > self.q:
            problem = f'z={self.z} (executed) is above q={self.q} (quantity)'
    if problem is not None:
        trade = '' if self.t is None else f' trade {self.t}'
        raise ValueError(f'order {self.i[:40]}{trade} ({self.s[:40]}): {problem}')


def _check_position(self: Any) -> None:
    """``__post_init__`` of ``PositionUpdate``."""
    problem = _private_problem(self)
    if problem is not None:
        raise ValueError(f'position {str(self.i)[:40]} ({self.s[:40]}): {problem}')


def _check_balance(self: Any) -> None:
    """``__post_init__`` of ``BalanceUpdate``."""
    problem = _private_problem(self)
    if problem is not None:
        raise ValueError(f'balance of {self.a[:40]}: {problem}')


def _check_values(self: Any) -> None:
    """``__post_init__`` of the public payloads: every field named in the class's ``_positive``,
    ``_non_negative`` and ``_rates`` must hold a plausible value (or None, for optional fields)."""
    for names, check, what in ((self._positive, is_price, 'price or size'), (self._non_negative, is_size, 'size'),
                               (self._rates, is_rate, 'rate')):
        for name in names:
            value = getattr(self, name)
            if value is not None and not check(value):
                raise ValueError(f'{name}={value!s} is not a plausible {what}')


# -- public streams (section 8.1) -------------------------------------------------------------

class Trade(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='trade'):
    """``trade.<symbol>``: one public trade (liquidation fills included).

    ``p``/``q`` price and quantity; ``t`` trade id, sequential per symbol; ``m`` true when the
    buyer was the maker, i.e. the taker sold; ``T`` engine time in microseconds. Not decoded,
    because nothing uses them and skipping is measurable on the hottest stream (it pays for the
    value checks): the buyer and seller order ids ``b``/``a``, the symbol ``s`` (the stream name
    carries it) and the emit time ``E`` (the trade's time is ``T``).
    """

    p: Decimal
    q: Decimal
    t: int
    m: bool
    T: int

    def __post_init__(self) -> None:
        # The hottest stream: the checks of ``is_price`` inlined (no call per value).
        try:
            if VALUE_FLOOR <= self.p < VALUE_CEILING and VALUE_FLOOR <= self.q < VALUE_CEILING:
                return
        except ArithmeticError:  # NaN / sNaN
            pass
        raise ValueError(f'p={self.p!s}, q={self.q!s}: not a plausible price and size')


class Depth(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='depth'):
    """``depth.<symbol>`` and the aggregated ``depth.<N>ms.<symbol>`` variants.

    ``a`` asks and ``b`` bids as ``(price, quantity)`` pairs with **absolute** quantities; a zero
    quantity (``"0"``, ``"0.00"``, ...) deletes the level. ``U``/``u`` are the first and last
    update ids in the frame (equal for realtime frames); ``E``/``T`` microseconds. See section 9
    for how the ids chain with the REST snapshot's ``lastUpdateId``.
    """

    s: str
    a: List[Level]
    b: List[Level]
    U: int
    u: int
    E: int
    T: int


class BookTicker(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='bookTicker'):
    """``bookTicker.<symbol>``: top of book after every change.

    ``b``/``B`` best bid price / quantity, ``a``/``A`` best ask price / quantity, ``u`` the depth
    update id that changed the top (an integer on the wire today; a string in older docs, which
    the lax decoder accepts), ``E``/``T`` microseconds.
    """

    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    u: int
    E: int
    T: int

    _positive: ClassVar[Tuple[str, ...]] = ('b', 'a')
    _non_negative: ClassVar[Tuple[str, ...]] = ('B', 'A')
    _rates: ClassVar[Tuple[str, ...]] = ()
    __post_init__ = _check_values


class Ticker24h(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='ticker'):
    """``ticker.<symbol>``: rolling 24 h statistics, once a second.

    ``o`` first price, ``c`` last price, ``h``/``l`` high / low (null without trades), ``v``
    base volume, ``V`` quote volume, ``n`` trade count, ``E`` microseconds. There is no ``T``.
    """

    s: str
    v: Decimal
    V: Decimal
    n: int
    E: int
    o: Optional[Decimal] = None
    c: Optional[Decimal] = None
    h: Optional[Decimal] = None
    l: Optional[Decimal] = None  # noqa: E741 - the venue's key

    _positive: ClassVar[Tuple[str, ...]] = ('o', 'c', 'h', 'l')
    _non_negative: ClassVar[Tuple[str, ...]] = ('v', 'V')
    _rates: ClassVar[Tuple[str, ...]] = ()
    __post_init__ = _check_values


class Kline(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='kline'):
    """``kline.<interval>.<symbol>``: the current candle, on change and once more when it closes.

    ``t``/``T`` start and end of the candle as naive-UTC ISO-8601 strings (``T`` is the start of
    the next candle); ``o``/``h``/``l``/``c`` **and** ``v`` are null while the candle has no trades
    (a quiet interval closes with all five null and ``n`` 0); ``v`` base volume, ``n`` trade count, ``X`` true on the final frame of a closed candle, ``E``
    microseconds. The interval is only in the stream name.
    """

    s: str
    t: datetime
    T: datetime
    n: int
    X: bool
    E: int
    v: Optional[Decimal] = None
    o: Optional[Decimal] = None
    h: Optional[Decimal] = None
    l: Optional[Decimal] = None  # noqa: E741 - the venue's key
    c: Optional[Decimal] = None

    _positive: ClassVar[Tuple[str, ...]] = ('o', 'h', 'l', 'c')
    _non_negative: ClassVar[Tuple[str, ...]] = ('v',)
    _rates: ClassVar[Tuple[str, ...]] = ()
    __post_init__ = _check_values


class MarkPrice(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='markPrice'):
    """``markPrice.<symbol>``: mark price, about once a second.

    ``p`` mark price, ``f`` estimated funding rate of the current interval (a fraction), ``i``
    index price, ``n`` next funding time in **milliseconds**; ``f``/``i``/``n`` are absent on
    prediction markets. ``E``/``T`` microseconds.
    """

    s: str
    p: Decimal
    E: int
    T: int
    f: Optional[Decimal] = None
    i: Optional[Decimal] = None
    n: Optional[int] = None

    _positive: ClassVar[Tuple[str, ...]] = ('p', 'i')
    _non_negative: ClassVar[Tuple[str, ...]] = ()
    _rates: ClassVar[Tuple[str, ...]] = ('f',)
    __post_init__ = _check_values


class OpenInterest(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='openInterest'):
    """``openInterest.<symbol>``: ``o`` open interest in contracts (base units), every 60 s.
    ``E`` microseconds; there is no ``T``."""

    s: str
    o: Decimal
    E: int

    _positive: ClassVar[Tuple[str, ...]] = ()
    _non_negative: ClassVar[Tuple[str, ...]] = ('o',)
    _rates: ClassVar[Tuple[str, ...]] = ()
    __post_init__ = _check_values


class Liquidation(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='liquidation'):
    """``liquidation`` (one stream for all markets): ``p`` price, ``q`` quantity, ``S`` side of
    the liquidation order (``Bid`` | ``Ask``), ``E``/``T`` microseconds (``T`` is only
    illustrated in the docs, so it may be absent)."""

    s: str
    p: Decimal
    q: Decimal
    S: Side
    E: int
    T: Optional[int] = None

    _positive: ClassVar[Tuple[str, ...]] = ('p', 'q')
    _non_negative: ClassVar[Tuple[str, ...]] = ()
    _rates: ClassVar[Tuple[str, ...]] = ()
    __post_init__ = _check_values


# -- private streams (section 8.2) ------------------------------------------------------------

class OrderUpdate(msgspec.Struct, frozen=True, gc=False):
    """``account.orderUpdate[.<symbol>]``: one order mutation.

    Always present: ``s`` symbol, ``i`` order id, ``S`` side (``Bid``/``Ask``), ``o`` order type
    in upper case (``LIMIT``/``MARKET``), ``X`` status, ``E``/``T`` microseconds. The rest is
    optional: ``c`` client id, ``f`` time in force, ``q`` quantity, ``Q`` quote quantity, ``p``
    limit price, ``P`` trigger price, ``z``/``Z`` cumulative executed quantity / quote quantity,
    ``R`` expiry reason, ``V`` self-trade prevention, ``O`` origin, ``r`` reduce-only, ``y``
    post-only; on fills ``t`` trade id, ``l``/``L`` fill quantity / price, ``m`` maker, ``n``/``N``
    fee amount / fee asset (``t`` is null on other events). ``event`` is the ``e`` value.
    """

    s: str
    i: str
    S: Side
    o: str
    X: str
    E: int
    T: int
    c: Optional[int] = None
    f: Optional[str] = None
    q: Optional[Decimal] = None
    Q: Optional[Decimal] = None
    p: Optional[Decimal] = None
    P: Optional[Decimal] = None
    z: Optional[Decimal] = None
    Z: Optional[Decimal] = None
    R: Optional[str] = None
    V: Optional[str] = None
    O: Optional[str] = None  # noqa: E741 - the venue's key
    r: Optional[bool] = None
    y: Optional[bool] = None
    t: Optional[int] = None
    l: Optional[Decimal] = None  # noqa: E741 - the venue's key
    L: Optional[Decimal] = None
    m: Optional[bool] = None
    n: Optional[Decimal] = None
    N: Optional[str] = None

    _positive: ClassVar[Tuple[str, ...]] = ('p', 'P', 'l', 'L')
    _non_negative: ClassVar[Tuple[str, ...]] = ('q', 'Q', 'z', 'Z')
    _signed: ClassVar[Tuple[str, ...]] = ('n',)
    __post_init__ = _check_order

    @property
    def event(self) -> Optional[str]:
        """The ``e`` of the frame, or None when it had none or an unknown one."""
        return type(self).__struct_config__.tag


class OrderAccepted(OrderUpdate, tag_field='e', tag='orderAccepted'):
    """The order was accepted (``X`` = ``New``)."""


class OrderCancelled(OrderUpdate, tag_field='e', tag='orderCancelled'):
    """The order was cancelled."""


class OrderExpired(OrderUpdate, tag_field='e', tag='orderExpired'):
    """The order expired; ``R`` says why (e.g. ``ImmediateOrCancel``, ``PostOnlyTaker``)."""


class OrderFill(OrderUpdate, tag_field='e', tag='orderFill'):
    """One fill of the order: ``t``, ``l``, ``L``, ``m``, ``n``, ``N`` describe this fill."""


class OrderModified(OrderUpdate, tag_field='e', tag='orderModified'):
    """A resting reduce-only order was shrunk so as not to flip the position."""


class TriggerPlaced(OrderUpdate, tag_field='e', tag='triggerPlaced'):
    """A trigger order is waiting (``X`` = ``TriggerPending``)."""


class TriggerFailed(OrderUpdate, tag_field='e', tag='triggerFailed'):
    """A trigger order fired but could not be placed."""


class PositionUpdate(msgspec.Struct, frozen=True, gc=False):
    """``account.positionUpdate[.<symbol>]``: one futures position.

    ``s`` symbol, ``q`` signed net quantity (+ long, - short), ``B`` entry price, ``b`` break-even
    price, ``M`` mark price, ``P`` unrealized and ``p`` realized PnL, ``Q``/``n`` net exposure
    quantity / notional, ``f``/``m`` IMF / MMF, ``l`` estimated liquidation price (always 0
    since 2025-09-01), ``i`` position id (string or integer), ``E``/``T`` microseconds. Numeric
    fields may be JSON numbers or strings (section 11). This base class is what the snapshot
    frames sent on subscribe decode to: they have no ``e``, so ``event`` is None.
    """

    s: str
    q: Decimal
    B: Decimal
    E: Optional[int] = None
    T: Optional[int] = None
    i: Union[int, str, None] = None
    b: Optional[Decimal] = None
    M: Optional[Decimal] = None
    P: Optional[Decimal] = None
    p: Optional[Decimal] = None
    Q: Optional[Decimal] = None
    n: Optional[Decimal] = None
    f: Optional[Decimal] = None
    m: Optional[Decimal] = None
    l: Optional[Decimal] = None  # noqa: E741 - the venue's key

    _positive: ClassVar[Tuple[str, ...]] = ()
    _non_negative: ClassVar[Tuple[str, ...]] = ('B', 'M', 'l', 'f', 'm')
    _signed: ClassVar[Tuple[str, ...]] = ('q', 'Q', 'n', 'b', 'P', 'p')
    __post_init__ = _check_position

    @property
    def event(self) -> Optional[str]:
        """The ``e`` of the frame, or None for a snapshot frame."""
        return type(self).__struct_config__.tag


class PositionOpened(PositionUpdate, tag_field='e', tag='positionOpened'):
    """A position was opened."""


class PositionAdjusted(PositionUpdate, tag_field='e', tag='positionAdjusted'):
    """An open position changed."""


class PositionClosed(PositionUpdate, tag_field='e', tag='positionClosed'):
    """A position was closed (``q`` is zero)."""


class BalanceUpdate(msgspec.Struct, frozen=True, gc=False, tag_field='e', tag='balanceUpdate'):
    """``account.balanceUpdate`` (observed live, not in the OpenAPI): **absolute** values of one
    asset after a change. ``a`` asset, ``A`` available, ``L`` locked, ``S`` staked,
    ``E``/``T`` microseconds."""

    a: str
    A: Decimal
    L: Decimal
    E: int
    S: Optional[Decimal] = None
    T: Optional[int] = None

    _positive: ClassVar[Tuple[str, ...]] = ()
    _non_negative: ClassVar[Tuple[str, ...]] = ('A', 'L', 'S')
    _signed: ClassVar[Tuple[str, ...]] = ()
    __post_init__ = _check_balance


Payload = Union[
    Trade, Depth, BookTicker, Ticker24h, Kline, MarkPrice, OpenInterest, Liquidation,
    OrderAccepted, OrderCancelled, OrderExpired, OrderFill, OrderModified, TriggerPlaced,
    TriggerFailed, PositionOpened, PositionAdjusted, PositionClosed, BalanceUpdate,
]
"""Every tagged payload, selected by its ``e``."""


# -- envelope and error frame (section 7) -----------------------------------------------------

class Envelope(msgspec.Struct, frozen=True, gc=False):
    """A data frame: ``stream`` echoes the subscribed name, ``data`` is the typed payload."""

    stream: str
    data: Payload


class ErrorBody(msgspec.Struct, frozen=True, gc=False):
    """``error`` of an error frame; observed codes: 4003 invalid signature, 4006 invalid stream."""

    code: Union[int, str, None] = None
    message: Optional[str] = None


class ErrorFrame(msgspec.Struct, frozen=True, gc=False):
    """``{"id": null, "error": {"code": 4003, "message": "Invalid signature"}}`` (observed, not
    in the official docs). ``id`` echoes the request id when the client sent one."""

    error: ErrorBody
    id: Union[int, str, None] = None


_ABSENT = msgspec.Raw()


class Probe(msgspec.Struct, frozen=True, gc=False):
    """The outline of any JSON object frame, for classifying what the envelope decoder refused.
    ``data`` and ``error`` stay raw JSON (empty when the key is absent), so that an error frame
    of unexpected shape is still recognised."""

    stream: Optional[str] = None
    data: msgspec.Raw = _ABSENT
    error: msgspec.Raw = _ABSENT


STREAM_PAYLOADS: Dict[str, type] = {
    'trade': Trade,
    'depth': Depth,
    'bookTicker': BookTicker,
    'ticker': Ticker24h,
    'kline': Kline,
    'markPrice': MarkPrice,
    'openInterest': OpenInterest,
    'liquidation': Liquidation,
    'account.orderUpdate': OrderUpdate,
    'account.positionUpdate': PositionUpdate,
    'account.balanceUpdate': BalanceUpdate,
}
"""Stream kind (the stream name without interval and symbol) -> payload struct (base class
for the private streams)."""


ENVELOPE_DECODER = msgspec.json.Decoder(Envelope, dec_hook=dec_hook)
ENVELOPE_DECODER_LAX = msgspec.json.Decoder(Envelope, strict=False, dec_hook=dec_hook)
PROBE_DECODER = msgspec.json.Decoder(Probe)
ERROR_DECODER = msgspec.json.Decoder(ErrorFrame, strict=False)
PAYLOAD_DECODERS: Dict[str, msgspec.json.Decoder] = {
    kind: msgspec.json.Decoder(cls, strict=False, dec_hook=dec_hook) for kind, cls in STREAM_PAYLOADS.items()
}


def _payload_types() -> Dict[str, Tuple[type, ...]]:
    """Stream kind -> every concrete struct a payload of that kind may decode to."""
    out: Dict[str, Tuple[type, ...]] = {}
    for kind, base in STREAM_PAYLOADS.items():
        found: List[type] = [base]
        pending: List[Any] = list(base.__subclasses__())
        while pending:
            sub = pending.pop()
            found.append(sub)
            pending.extend(sub.__subclasses__())
        out[kind] = tuple(found)
    return out


PAYLOAD_TYPES: Dict[str, Tuple[type, ...]] = _payload_types()
"""Stream kind -> the payload classes (base and event subclasses) valid on that stream."""
