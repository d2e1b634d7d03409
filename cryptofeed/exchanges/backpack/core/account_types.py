"""This package's own account objects: ``OrderInfo``, ``Fill``, ``Position``, ``Balance``.

cryptofeed 3.0 removed its authenticated channels and their types; on that line the feed emits
these instead. They take the same constructor arguments and carry the same attributes as
cryptofeed 2.x's types, and ``to_dict(numeric_type=None, none_to=False)`` returns the same keys
in the same order, so one callback (or backend) works on both lines. One difference on purpose:
``numeric_type`` leaves a missing number (a market order's ``price``) as ``None`` where 2.x
raises ``TypeError``.

Objects are immutable (``__slots__`` and a refusing ``__setattr__``), compare equal when their
``to_dict()`` is equal (``raw`` is not compared), and hash by their repr, as cryptofeed's do.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ['OrderInfo', 'Fill', 'Position', 'Balance']


class _Record:
    """Shared behaviour; a subclass names its fields (in ``to_dict`` order) and its numbers."""

    __slots__ = ()
    _fields: Tuple[str, ...] = ()
    _numbers: frozenset = frozenset()

    def _init(self, values: Dict[str, Any]) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"attribute {name!r} of {type(self).__name__} objects is not writable")

    def to_dict(self, numeric_type: Optional[Callable[[Decimal], Any]] = None, none_to: Any = False) -> Dict[str, Any]:
        data = {name: getattr(self, name) for name in self._fields}
        if numeric_type is not None:
            for name in self._numbers:
                if data[name] is not None:
                    data[name] = numeric_type(data[name])
        if none_to:
            for name, value in data.items():
                if value is None:
                    data[name] = none_to
        return data

    def __repr__(self) -> str:
        return ' '.join(f'{name}: {getattr(self, name)}' for name in self._fields)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, _Record):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))


class OrderInfo(_Record):
    """One order's state, as ORDER_INFO delivers it."""

    __slots__ = ('exchange', 'symbol', 'id', 'client_order_id', 'side', 'status', 'type', 'price', 'amount',
                 'remaining', 'account', 'timestamp', 'raw')
    _fields = __slots__[:-1]
    _numbers = frozenset({'price', 'amount', 'remaining'})

    def __init__(self, exchange, symbol, id, side, status, type, price, amount, remaining, timestamp,
                 client_order_id=None, account=None, raw=None):
        self._init(dict(exchange=exchange, symbol=symbol, id=id, client_order_id=client_order_id, side=side,
                        status=status, type=type, price=price, amount=amount, remaining=remaining,
                        account=account, timestamp=timestamp, raw=raw))

    def set_status(self, status: str) -> None:
        object.__setattr__(self, 'status', status)

    @staticmethod
    def from_dict(data: Dict[str, Any]) -> 'OrderInfo':
        number = _decimal_or_none
        return OrderInfo(data['exchange'], data['symbol'], data['id'], data['side'], data['status'], data['type'],
                         number(data['price']), number(data['amount']), number(data['remaining']),
                         data['timestamp'], client_order_id=data.get('client_order_id'),
                         account=data.get('account'))


class Fill(_Record):
    """One execution of one of the account's orders, as FILLS delivers it."""

    __slots__ = ('exchange', 'symbol', 'side', 'amount', 'price', 'fee', 'liquidity', 'id', 'order_id', 'type',
                 'account', 'timestamp', 'raw')
    _fields = __slots__[:-1]
    _numbers = frozenset({'amount', 'price', 'fee'})

    def __init__(self, exchange, symbol, side, amount, price, fee, id, order_id, type, liquidity, timestamp,
                 account=None, raw=None):
        self._init(dict(exchange=exchange, symbol=symbol, side=side, amount=amount, price=price, fee=fee,
                        liquidity=liquidity, id=id, order_id=order_id, type=type, account=account,
                        timestamp=timestamp, raw=raw))


class Position(_Record):
    """One open position (size, entry price, unrealised PnL), as POSITIONS delivers it."""

    __slots__ = ('exchange', 'symbol', 'position', 'entry_price', 'side', 'unrealised_pnl', 'timestamp', 'raw')
    _fields = __slots__[:-1]
    _numbers = frozenset({'position', 'entry_price', 'unrealised_pnl'})

    def __init__(self, exchange, symbol, position, entry_price, side, unrealised_pnl, timestamp, raw=None):
        self._init(dict(exchange=exchange, symbol=symbol, position=position, entry_price=entry_price, side=side,
                        unrealised_pnl=unrealised_pnl, timestamp=timestamp, raw=raw))


class Balance(_Record):
    """One asset's whole amount and its locked part, as BALANCES delivers it."""

    __slots__ = ('exchange', 'currency', 'balance', 'reserved', 'raw')
    _fields = __slots__[:-1]
    _numbers = frozenset({'balance', 'reserved'})

    def __init__(self, exchange, currency, balance, reserved, raw=None):
        self._init(dict(exchange=exchange, currency=currency, balance=balance, reserved=reserved, raw=raw))


def _decimal_or_none(value: Any) -> Optional[Decimal]:
    return None if value is None else Decimal(value)
