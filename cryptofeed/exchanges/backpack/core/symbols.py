"""Backpack markets -> cryptofeed symbols, and a TTL cache around the markets request.

Use this module to turn the ``GET /api/v1/markets`` response (backpack-api.md section 3.1)
into cryptofeed's symbol mapping, to convert a single symbol between the two spellings, and
to keep an up-to-date table in a long-running process.

Spelling rules (section 1 and 11 of the API notes)::

    SOL_USDC            <->  SOL-USDC             spot
    SOL_USDC_PERP       <->  SOL-USDC-PERP        perpetual (linear, USDC margined)
    SPCX.US_USDC        <->  SPCX.US-USDC         tokenized stock: '.' is part of the base
    kPEPE_USDC_PERP     <->  kPEPE-USDC-PERP      case is kept as the exchange spells it

Base and quote match ``[A-Za-z0-9.]+``; neither contains ``_`` nor ``-``, so the two
spellings differ only in the separator and each converts back to the other exactly.

Which markets become symbols:

* ``marketType`` decides: ``SPOT`` -> cryptofeed ``SPOT``, ``PERP`` -> ``PERPETUAL``. Only when
  ``marketType`` is absent or null (responses older than 2025-01-09) does the ``_PERP`` suffix
  decide, and then only symbols of the plain spot/perp grammar are accepted.
* ``IPERP`` is skipped, like ``PREDICTION``, ``RFQ``, ``DATED`` and any value we do not know
  (``MONAD``...). No live IPERP market or symbol spelling has ever been observed, and mapping it
  to ``PERPETUAL`` could give it the same normalized name as the ``PERP`` market of the same
  pair, which would make the mapping ambiguous.
* ``visible: false`` markets are skipped (the exchange hides delisted and not yet launched
  markets); a missing ``visible`` counts as visible. Every ``orderBookState`` is kept and exposed
  in the market info, so a feed can still follow a ``CancelOnly`` book.
* Each skipped market costs one DEBUG line. Entries of a supported type that cannot be read
  (no tick size, a symbol that contradicts its ``marketType``, ...) are dropped with one
  WARNING each, since they mean the API changed under us.

``parse_symbol_data(data)`` is pure and has the signature of cryptofeed's
``Exchange._parse_symbol_data`` hook: a feed attaches it with
``_parse_symbol_data = classmethod(lambda cls, data: parse_symbol_data(data))``.
``BackpackSymbolService`` wraps an injected async fetcher with a TTL cache; it performs no I/O
of its own.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import PERPETUAL, SPOT
from cryptofeed.exchanges.backpack.core import records

from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError, BackpackProtocolError

__all__ = [
    'DEFAULT_TTL_S', 'DEFAULT_ERROR_BACKOFF_S', 'SUPPORTED_MARKET_TYPES', 'BackpackMarket',
    'SymbolTable', 'BackpackSymbolService', 'exchange_to_normalized', 'normalized_to_exchange',
    'parse_symbol_data', 'RuleSymbols',
]

LOG = log.get('.backpack.symbols')

# /api/v1/markets is served with s-maxage=300 by the CDN (API notes 3.8): asking sooner
# would mostly return the same cached body.
DEFAULT_TTL_S = 300.0
DEFAULT_ERROR_BACKOFF_S = 5.0

SUPPORTED_MARKET_TYPES: Mapping[str, str] = MappingProxyType({'SPOT': SPOT, 'PERP': PERPETUAL})

_PART = r'[A-Za-z0-9.]+'
_EXCHANGE_RE = re.compile(rf'({_PART})_({_PART})(_PERP)?')
_NORMALIZED_RE = re.compile(rf'({_PART})-({_PART})(-PERP)?')

MarketsFetcher = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]


def exchange_to_normalized(symbol: str) -> str:
    """``SOL_USDC_PERP`` -> ``SOL-USDC-PERP`` by spelling rules alone (no markets list needed).

    Raises ``ValueError`` for anything that is not a spot or perpetual symbol, e.g.
    ``SOL_USDC_RFQ`` or ``FDVEXTD1B_USDC_PREDICTION``.
    """
    match = _EXCHANGE_RE.fullmatch(symbol) if isinstance(symbol, str) else None
    if match is None:
        raise ValueError(f'not a Backpack spot or perpetual symbol: {symbol!r}')
    base, quote, perp = match.groups()
    return f'{base}-{quote}-PERP' if perp else f'{base}-{quote}'


def normalized_to_exchange(symbol: str) -> str:
    """``SOL-USDC-PERP`` -> ``SOL_USDC_PERP``; the inverse of ``exchange_to_normalized``.

    Accepts a cryptofeed ``Symbol`` too. Raises ``ValueError`` for names Backpack cannot have
    (dated futures, options, a bare currency).
    """
    if isinstance(symbol, records.Symbol):
        symbol = symbol.normalized
    match = _NORMALIZED_RE.fullmatch(symbol) if isinstance(symbol, str) else None
    if match is None:
        raise ValueError(f'not a normalized spot or perpetual symbol: {symbol!r}')
    base, quote, perp = match.groups()
    return f'{base}_{quote}_PERP' if perp else f'{base}_{quote}'


@dataclass(frozen=True)
class BackpackMarket:
    """What we keep of one market object. Numbers are ``Decimal``; absent limits are ``None``.

    ``base``/``quote`` are the exchange's ``baseSymbol``/``quoteSymbol``; the normalized name
    is derived from ``symbol`` so that it always agrees with the string rules.
    ``market_type`` is the raw ``marketType`` (``None`` in old responses).
    ``funding_interval_ms`` is set for perpetuals only; spot markets sometimes carry a stale
    value, which is ignored.
    """

    symbol: str
    normalized: str
    instrument_type: str
    market_type: Optional[str]
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_quantity: Optional[Decimal]
    max_quantity: Optional[Decimal]
    order_book_state: Optional[str]
    funding_interval_ms: Optional[int]
    rwa_market_type: Optional[str]
    visible: bool

    @property
    def is_open(self) -> bool:
        """Only ``Open`` means fully tradable (``CancelOnly``, ``PostOnly``... do not)."""
        return self.order_book_state == 'Open'

    def to_symbol(self) -> records.Symbol:
        """The cryptofeed ``Symbol`` of this market."""
        base, quote, _ = _EXCHANGE_RE.fullmatch(self.symbol).groups()
        return records.Symbol(base, quote, type=self.instrument_type)


class _Skip(Exception):
    """A market left out of the table; ``level`` says how loudly."""

    def __init__(self, reason: str, level: int = logging.DEBUG):
        super().__init__(reason)
        self.reason = reason
        self.level = level


def _decimal(value: Any, field: str, *, required: bool, positive: bool = False) -> Optional[Decimal]:
    if value is None:
        if required:
            raise _Skip(f'{field} is missing', logging.WARNING)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Skip(f'{field} is not a decimal: {value!r}', logging.WARNING)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Skip(f'{field} is not a decimal: {value!r}', logging.WARNING) from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise _Skip(f'{field} is out of range: {value!r}', logging.WARNING)
    return number


def _funding_interval_ms(value: Any) -> Optional[int]:
    """Integer milliseconds; a quoted integer is accepted. Anything else reads as unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        interval = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        interval = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        interval = int(value.strip())
    else:
        return None
    return interval if interval > 0 else None


def _instrument_type(symbol: str, market_type: Any) -> str:
    if market_type is not None:
        if not isinstance(market_type, str):
            raise _Skip(f'marketType is not a string: {market_type!r}', logging.WARNING)
        if market_type in SUPPORTED_MARKET_TYPES:
            return SUPPORTED_MARKET_TYPES[market_type]
        raise _Skip(f'marketType {market_type!r} is not streamed as a cryptofeed symbol')
    # Responses from before marketType existed: only the symbol tells.
    match = _EXCHANGE_RE.fullmatch(symbol)
    if match is None:
        raise _Skip('no marketType and the symbol is neither spot nor perpetual')
    return PERPETUAL if match.group(3) else SPOT


def _read_market(entry: Any) -> BackpackMarket:
    if not isinstance(entry, Mapping):
        raise _Skip(f'market entry is a {type(entry).__name__}, not an object', logging.WARNING)
    symbol = entry.get('symbol')
    if not isinstance(symbol, str) or not symbol:
        raise _Skip('market entry has no symbol', logging.WARNING)

    instrument_type = _instrument_type(symbol, entry.get('marketType'))
    if entry.get('visible', True) is False:
        raise _Skip('market is not visible')

    match = _EXCHANGE_RE.fullmatch(symbol)
    if match is None or bool(match.group(3)) != (instrument_type == PERPETUAL):
        raise _Skip(f'symbol does not match marketType {entry.get("marketType")!r}', logging.WARNING)
    base, quote, _ = match.groups()
    if base == quote:
        # cryptofeed's Symbol collapses BASE-BASE into a currency name: not representable.
        raise _Skip('base equals quote', logging.WARNING)

    filters = entry.get('filters')
    filters = filters if isinstance(filters, Mapping) else {}
    price = filters.get('price')
    price = price if isinstance(price, Mapping) else {}
    quantity = filters.get('quantity')
    quantity = quantity if isinstance(quantity, Mapping) else {}

    base_symbol = entry.get('baseSymbol')
    quote_symbol = entry.get('quoteSymbol')
    state = entry.get('orderBookState')
    rwa = entry.get('rwaMarketType')
    market_type = entry.get('marketType')
    return BackpackMarket(
        symbol=symbol,
        normalized=exchange_to_normalized(symbol),
        instrument_type=instrument_type,
        market_type=market_type,
        base=base_symbol if isinstance(base_symbol, str) and base_symbol else base,
        quote=quote_symbol if isinstance(quote_symbol, str) and quote_symbol else quote,
        tick_size=_decimal(price.get('tickSize'), 'filters.price.tickSize', required=True, positive=True),
        step_size=_decimal(quantity.get('stepSize'), 'filters.quantity.stepSize', required=True, positive=True),
        min_quantity=_decimal(quantity.get('minQuantity'), 'filters.quantity.minQuantity', required=False),
        max_quantity=_decimal(quantity.get('maxQuantity'), 'filters.quantity.maxQuantity', required=False),
        order_book_state=state if isinstance(state, str) else None,
        funding_interval_ms=(_funding_interval_ms(entry.get('fundingInterval'))
                             if instrument_type == PERPETUAL else None),
        rwa_market_type=rwa if isinstance(rwa, str) else None,
        visible=True,
    )


def _entries(data: Any) -> Iterable[Any]:
    """The market objects of one response, or of several (cryptofeed passes a list per endpoint)."""
    if not isinstance(data, (list, tuple)):
        raise BackpackProtocolError(f'/api/v1/markets must return a JSON array, got {type(data).__name__}')
    if data and all(isinstance(item, (list, tuple)) for item in data):
        return [entry for response in data for entry in response]
    return data


def _read_markets(data: Any) -> Tuple[Dict[str, BackpackMarket], Dict[str, str]]:
    """(markets by normalized symbol, skipped: exchange symbol -> reason), logging each skip once."""
    markets: Dict[str, BackpackMarket] = {}
    skipped: Dict[str, str] = {}
    for index, entry in enumerate(_entries(data)):
        name = entry.get('symbol') if isinstance(entry, Mapping) else None
        name = name if isinstance(name, str) and name else f'<entry {index}>'
        try:
            market = _read_market(entry)
            if market.normalized in markets:
                raise _Skip(f'duplicate of {markets[market.normalized].symbol}', logging.WARNING)
        except _Skip as skip:
            skipped[name] = skip.reason
            LOG.log(skip.level, 'BACKPACK: skipping market %s: %s', name, skip.reason)
            continue
        markets[market.normalized] = market
    return markets, skipped


def _cryptofeed_info(markets: Mapping[str, BackpackMarket]) -> Dict[str, Any]:
    return {
        'tick_size': {name: market.tick_size for name, market in markets.items()},
        'instrument_type': {name: market.instrument_type for name, market in markets.items()},
        'markets': dict(markets),
    }


def parse_symbol_data(data: Any) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """cryptofeed's ``_parse_symbol_data``: ``/api/v1/markets`` JSON -> (normalized -> exchange, info).

    ``info`` holds ``tick_size`` (Decimal) and ``instrument_type`` maps keyed by normalized
    symbol, as cryptofeed exchanges provide, plus ``markets``: normalized -> ``BackpackMarket``.
    Fresh dictionaries on every call (cryptofeed's ``Exchange.info()`` writes into ``info``).
    Raises ``BackpackProtocolError`` when ``data`` is not an array.
    """
    markets, _ = _read_markets(data)
    return {name: market.symbol for name, market in markets.items()}, _cryptofeed_info(markets)


@dataclass(frozen=True)
class SymbolTable:
    """An immutable snapshot of the symbol mapping, both ways, with per-market info.

    ``normalized``: normalized -> exchange; ``exchange``: exchange -> normalized;
    ``info``: the cryptofeed info maps (``tick_size``, ``instrument_type``, ``markets``);
    ``skipped``: exchange symbol -> why it is not in the table; ``fetched_at``: the service
    clock when the response arrived (``None`` when built directly).
    """

    normalized: Mapping[str, str]
    exchange: Mapping[str, str]
    info: Mapping[str, Mapping[str, Any]]
    skipped: Mapping[str, str]
    fetched_at: Optional[float] = None

    @classmethod
    def from_markets(cls, data: Any, *, fetched_at: Optional[float] = None) -> 'SymbolTable':
        markets, skipped = _read_markets(data)
        info = {key: MappingProxyType(value) for key, value in _cryptofeed_info(markets).items()}
        return cls(
            normalized=MappingProxyType({name: market.symbol for name, market in markets.items()}),
            exchange=MappingProxyType({market.symbol: name for name, market in markets.items()}),
            info=MappingProxyType(info),
            skipped=MappingProxyType(skipped),
            fetched_at=fetched_at,
        )

    @property
    def markets(self) -> Mapping[str, BackpackMarket]:
        return self.info['markets']

    def __len__(self) -> int:
        return len(self.normalized)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.normalized or symbol in self.exchange

    def symbols(self) -> List[str]:
        """Normalized symbols, in response order."""
        return list(self.normalized)

    def to_exchange(self, normalized: str) -> str:
        """``SOL-USDC-PERP`` -> ``SOL_USDC_PERP``; ``KeyError`` if the market is not listed."""
        if isinstance(normalized, records.Symbol):
            normalized = normalized.normalized
        return self.normalized[normalized]

    def to_normalized(self, exchange: str) -> str:
        """``SOL_USDC_PERP`` -> ``SOL-USDC-PERP``; ``KeyError`` if the market is not listed."""
        return self.exchange[exchange]

    def market(self, symbol: str) -> BackpackMarket:
        """Info of a listed market, by either spelling; ``KeyError`` otherwise."""
        return self.markets[self.exchange.get(symbol, symbol)]

    def cryptofeed_data(self) -> Tuple[Dict[str, str], Dict[str, Any]]:
        """Fresh mutable ``(normalized, info)`` for ``cryptofeed.symbols.Symbols.set``."""
        return dict(self.normalized), {key: dict(value) for key, value in self.info.items()}


class BackpackSymbolService:
    """Keeps a ``SymbolTable`` fresh by calling an injected ``fetch_markets()`` coroutine.

    * ``get()`` returns the cached table while it is younger than ``ttl_s`` (no I/O), else fetches.
      ``get(refresh=True)`` fetches regardless.
    * Single flight: callers arriving while a fetch is running wait for that same fetch; a
      cancelled caller does not cancel it for the others.
    * Failures (the fetcher raising, a response that is not an array, a response with no usable
      market) keep the previous table: it is returned, ``last_error`` records why, one WARNING is
      logged, and plain ``get()`` calls keep serving it without asking again for
      ``error_backoff_s`` seconds. With no previous table the error is raised to the caller.
    * ``invalidate()`` marks the table stale (the next ``get()`` fetches) but keeps it as the
      fallback for a failing fetch and as the answer of ``cached()``. A fetch already running when
      ``invalidate()`` is called does not count as fresh either.

    ``clock`` returns monotonic seconds. The constructor performs no I/O.
    """

    def __init__(self, fetch_markets: MarketsFetcher, *, ttl_s: float = DEFAULT_TTL_S,
                 error_backoff_s: float = DEFAULT_ERROR_BACKOFF_S,
                 clock: Callable[[], float] = time.monotonic):
        for name, value in (('ttl_s', ttl_s), ('error_backoff_s', error_backoff_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise BackpackConfigError(f'{name} must be a finite number of seconds >= 0, got {value!r}')
        self._fetch = fetch_markets
        self._ttl_s = float(ttl_s)
        self._error_backoff_s = float(error_backoff_s)
        self._clock = clock
        self._table: Optional[SymbolTable] = None
        self._fresh_until = -math.inf
        self._epoch = 0
        self._inflight: Optional[asyncio.Future] = None
        self._last_error: Optional[Exception] = None

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    @property
    def last_error(self) -> Optional[Exception]:
        """Why the latest fetch failed; ``None`` after a successful one."""
        return self._last_error

    def cached(self) -> Optional[SymbolTable]:
        """The last table, fresh or stale, or ``None`` if none was ever fetched. No I/O."""
        return self._table

    def is_fresh(self) -> bool:
        return self._table is not None and self._clock() < self._fresh_until

    def invalidate(self) -> None:
        self._fresh_until = -math.inf
        self._epoch += 1

    async def get(self, refresh: bool = False) -> SymbolTable:
        if not refresh and self.is_fresh():
            return self._table
        task = self._inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._refresh())
            task.add_done_callback(self._fetch_done)
            self._inflight = task
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        """Cancel a fetch in flight (its waiters get ``CancelledError``). The cache is kept."""
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _fetch_done(self, task: asyncio.Future) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not reported twice

    async def _refresh(self) -> SymbolTable:
        epoch = self._epoch
        try:
            response = await self._fetch()
            table = SymbolTable.from_markets(response, fetched_at=self._clock())
            if not len(table):
                raise BackpackProtocolError('/api/v1/markets returned no spot or perpetual market')
        except Exception as exc:
            self._last_error = exc
            if self._table is None:
                raise
            LOG.warning('BACKPACK: refreshing markets failed (%s: %s); keeping the table fetched %.0f s ago',
                        type(exc).__name__, exc, self._clock() - self._table.fetched_at)
            if epoch == self._epoch:
                self._fresh_until = self._clock() + self._error_backoff_s
            return self._table
        self._table = table
        self._last_error = None
        self._fresh_until = table.fetched_at + self._ttl_s if epoch == self._epoch else -math.inf
        return table


class RuleSymbols(dict):
    """exchange symbol -> normalized symbol by spelling rules, learnt on first use.

    The router asks it for symbols named in the data of all-market streams (``liquidation``,
    ``account.*``);
    anything outside Backpack's spot/perp grammar is absent.
    """

    def get(self, key, default=None):  # noqa: D401 - dict API
        try:
            return self[key]
        except KeyError:
            try:
                value = exchange_to_normalized(key)
            except (ValueError, TypeError):
                return default
            if len(self) < 10_000:
                self[key] = value
            return value
