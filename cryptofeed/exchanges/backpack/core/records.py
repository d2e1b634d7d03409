"""The classes the core builds its objects from, bound once by the host of the cryptofeed line.

The core never imports cryptofeed; it calls ``records.Trade(...)``, ``records.OrderBook(...)``
and so on, and the host (``hosts/cf2`` or ``hosts/cf3``) binds those names to its line's types
when the package is imported: cryptofeed's market-data types on every line, cryptofeed's account
types on 2.x and this package's own (``account_types``) on 3.0. Until then the account names hold
the package's own types and the others refuse with a message that says what is missing.
"""
from __future__ import annotations

from typing import Any

from cryptofeed.exchanges.backpack.core import account_types

__all__ = ['bind', 'BINDABLE']

BINDABLE = ('Trade', 'Ticker', 'Candle', 'Funding', 'Index', 'OpenInterest', 'Liquidation', 'OrderBook', 'Symbol',
            'OrderInfo', 'Fill', 'Position', 'Balance')


class _Unbound:
    """Stands for a class until a host binds it; using it says so."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f'records.{self.name} is not bound: import cryptofeed.exchanges.backpack, whose host '
                           f'binds the types of the installed cryptofeed')

    def __instancecheck__(self, instance: Any) -> bool:
        return False


Trade: Any = _Unbound('Trade')
Ticker: Any = _Unbound('Ticker')
Candle: Any = _Unbound('Candle')
Funding: Any = _Unbound('Funding')
Index: Any = _Unbound('Index')
OpenInterest: Any = _Unbound('OpenInterest')
Liquidation: Any = _Unbound('Liquidation')
OrderBook: Any = _Unbound('OrderBook')
Symbol: Any = _Unbound('Symbol')
OrderInfo: Any = account_types.OrderInfo
Fill: Any = account_types.Fill
Position: Any = account_types.Position
Balance: Any = account_types.Balance


def bind(**classes: type) -> None:
    """Set the classes named in ``BINDABLE`` (a host calls this once, at import)."""
    unknown = sorted(set(classes) - set(BINDABLE))
    if unknown:
        raise TypeError(f'records.bind: not bindable: {", ".join(unknown)} (bindable: {", ".join(BINDABLE)})')
    globals().update(classes)
