"""Which markets a feed follows, and what changed between two market tables: pure functions.

Use these where a feed subscribes "every market" (``symbols='all'``) or checks the symbols it
was given against ``/api/v1/markets`` (a ``symbols.SymbolTable``):

* ``parse_market_types(value)``: ``'spot'``, ``'perp'`` or a list of them -> the set of
  Backpack ``marketType`` values (``SPOT``, ``PERP``); anything else is a ``ValueError`` that
  lists the choices.
* ``Selection(market_types, shard).select(table)``: the listed markets whose ``orderBookState``
  is ``Open``, of those types, in that shard (``sharding.shard_of``), sorted.
* ``diff_listings(followed, table, selection, pinned=..., excluded=...)``: a ``ListingChange``
  of the markets to subscribe (newly selected, not followed, not excluded) and to drop
  (followed markets that left the table or stopped being ``Open``; ``pinned`` ones, added by
  hand, only when they leave the table).
* ``close_matches(symbol, listed)`` and ``unlisted_message(symbol, listed)``: "did you mean"
  for a symbol the exchange does not list.

Nothing here does I/O or keeps state; the feed's ``hosts/listings.py`` does the polling.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

from cryptofeed.exchanges.backpack.core.sharding import shard_of

__all__ = [
    'MARKET_TYPES', 'ALL', 'parse_market_types', 'Selection', 'ListingChange', 'diff_listings', 'close_matches',
    'unlisted_message',
]

#: The ``market_types=`` names and the ``marketType`` each stands for.
MARKET_TYPES: Mapping[str, str] = {'spot': 'SPOT', 'perp': 'PERP'}
#: ``symbols=ALL`` subscribes every listed, open market.
ALL = 'all'


def parse_market_types(value: Any) -> FrozenSet[str]:
    """``'spot'`` / ``'perp'`` / a list of them (any case) -> ``{'SPOT', 'PERP'}`` subset;
    ``None`` means both."""
    if value is None:
        return frozenset(MARKET_TYPES.values())
    names = [value] if isinstance(value, str) else value
    try:
        names = list(names)
    except TypeError:
        names = [value]
    choices = ', '.join(repr(name) for name in MARKET_TYPES)
    if not names:
        raise ValueError(f'market_types is empty: give one or more of {choices}, or leave it out for every type')
    out = set()
    for name in names:
        key = name.lower() if isinstance(name, str) else name
        if key not in MARKET_TYPES:
            raise ValueError(f'market_types: {name!r} is not a market type; choose from {choices}')
        out.add(MARKET_TYPES[key])
    return frozenset(out)


@dataclass(frozen=True)
class Selection:
    """The markets ``symbols='all'`` means: open ones, of ``market_types``, in ``shard``."""

    market_types: FrozenSet[str] = frozenset(MARKET_TYPES.values())
    shard: Optional[Tuple[int, int]] = None

    def in_shard(self, symbol: str) -> bool:
        return self.shard is None or shard_of(symbol, self.shard[1]) == self.shard[0]

    def matches(self, market: Any) -> bool:
        """``market`` is a ``symbols.BackpackMarket``."""
        kind = market.market_type or ('PERP' if market.normalized.endswith('-PERP') else 'SPOT')
        return market.is_open and kind in self.market_types and self.in_shard(market.normalized)

    def select(self, table: Any) -> List[str]:
        """The normalized symbols of ``table`` (a ``SymbolTable``) this selection keeps, sorted."""
        return sorted(name for name, market in table.markets.items() if self.matches(market))

    def describe(self) -> str:
        """For messages: what this selection keeps."""
        types = '/'.join(sorted(name for name, kind in MARKET_TYPES.items() if kind in self.market_types))
        shard = '' if self.shard is None else f' in shard {self.shard[0]} of {self.shard[1]}'
        return f'open {types} markets{shard}'


@dataclass(frozen=True)
class ListingChange:
    """Markets to subscribe and to drop, each sorted."""

    added: Tuple[str, ...] = ()
    removed: Tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def diff_listings(followed: Iterable[str], table: Any, selection: Selection, *, pinned: Iterable[str] = (),
                  excluded: Iterable[str] = ()) -> ListingChange:
    """What to change so that a feed following ``followed`` follows ``selection`` of ``table``.

    ``pinned``: symbols added by hand, kept while they are listed whatever their state;
    ``excluded``: symbols removed by hand, never added back.
    """
    followed = set(followed)
    pinned = set(pinned)
    markets = table.markets
    wanted = set(selection.select(table)) - set(excluded)
    added = wanted - followed
    removed = {symbol for symbol in followed
               if symbol not in markets or (symbol not in pinned and not markets[symbol].is_open)}
    return ListingChange(tuple(sorted(added)), tuple(sorted(removed)))


def close_matches(symbol: str, listed: Sequence[str], n: int = 3) -> List[str]:
    """Listed symbols that ``symbol`` was probably meant to be: those of the same base first
    (``SOL-USD`` -> ``SOL-USDC``, ``SOL-USDC-PERP``), then those whose base is spelt alike
    (``SOLL-USDC`` -> ``SOL-USDC``), each group closest spelling first. A base unlike any listed
    one gives none (``DOGE-USDC``): a shared quote alone is no hint."""
    text = str(symbol).upper()
    base = text.split('-')[0]

    def similarity(a: str, b: str) -> float:
        return difflib.SequenceMatcher(None, a, b).ratio()

    ranked = []
    for candidate in listed:
        if candidate.upper() == text and candidate == symbol:
            continue
        other = candidate.split('-')[0].upper()
        if other == base or similarity(base, other) >= 0.75:
            ranked.append((other != base, -similarity(text, candidate.upper()), candidate))
    return [candidate for _, _, candidate in sorted(ranked)[:n]]


def unlisted_message(symbol: str, listed: Sequence[str]) -> str:
    """``SOL-USD is not listed by Backpack (/api/v1/markets): did you mean SOL-USDC?``"""
    matches = close_matches(symbol, listed)
    hint = f': did you mean {" or ".join(matches)}?' if matches else ''
    return f'{symbol} is not listed by Backpack (/api/v1/markets){hint}'
