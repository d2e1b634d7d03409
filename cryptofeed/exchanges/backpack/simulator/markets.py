"""The markets the simulator lists, as ``GET /api/v1/markets`` objects (backpack-api.md §3.1).

Use ``market_objects()`` for the wire objects (fresh copies, safe to mutate) and ``sim_params()``
for the few numbers the market model needs that the exchange does not publish: where a market
starts trading and how large its orders typically are. The set covers spot and perpetual
markets plus two symbol edge cases: ``kPEPE_USDC_PERP`` (lower-case prefix, six-decimal tick)
and ``SPCX.US_USDC`` (a tokenized stock with a dot in the base).

The values are realistic (taken from the shapes recorded live), not current market data.

Beyond those defaults, ``generated_market(symbol, created_at)`` builds a full market object and
its parameters for any well-formed symbol (``BASE_QUOTE`` spot, ``BASE_USDC_PERP`` perpetual):
the start price is drawn from the symbol's name (so a symbol always gets the same market), the
tick gives the price five significant digits and the step is worth about one quote unit.
``synthetic_symbols(n)`` names the synthetic markets of a whole-venue simulation:
``SYN001_USDC``, ``SYN002_USDC``, ``SYN003_USDC_PERP``, ``SYN004_USDC``, ... (every third is a
perpetual; four digits from ``SYN1000`` on).
"""
from __future__ import annotations

import copy
import math
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Optional, Union

__all__ = [
    'DEFAULT_SYMBOLS', 'SimParams', 'market_objects', 'market_object', 'sim_params', 'known_symbols',
    'asset_objects', 'security_objects', 'MAX_SYNTHETIC', 'SYNTHETIC_CREATED_AT', 'synthetic_symbols',
    'generated_market', 'check_listing_symbol',
]


def _price_filter(tick: str, min_price: str, max_price: Optional[str], *, perp: bool, stock: bool) -> dict:
    return {
        'minPrice': min_price,
        'maxPrice': max_price,
        'tickSize': tick,
        'maxMultiplier': '2' if perp else '1.25',
        'minMultiplier': '0.25' if perp else '0.75',
        'maxImpactMultiplier': '1.01' if perp else '1.03',
        'minImpactMultiplier': '0.99' if perp else '0.97',
        # Spot markets carry the band object too (live captures); only its multipliers differ.
        'meanMarkPriceBand': {'maxMultiplier': '1.1', 'minMultiplier': '0.9'} if perp else
                             {'maxMultiplier': '1.25', 'minMultiplier': '0.75'},
        'meanPremiumBand': {'tolerancePct': '0.05'} if perp else None,
        'discoveryBoundBand': {'maxMultiplier': '1.05', 'minMultiplier': '0.95'} if stock else None,
        'borrowEntryFeeMaxMultiplier': None if (perp or stock) else '1.05',
        'borrowEntryFeeMinMultiplier': None if (perp or stock) else '0.95',
        'maxPriceUpdateMultiplier': '1.005' if perp else None,
        'minPriceUpdateMultiplier': '0.995' if perp else None,
    }


def _spot(symbol: str, base: str, tick: str, step: str, min_qty: str, min_price: str, max_price: Optional[str],
          created: str, *, quote: str = 'USDC', rwa: Optional[str] = None) -> dict:
    return {
        'symbol': symbol,
        'baseSymbol': base,
        'quoteSymbol': quote,
        'marketType': 'SPOT',
        'rwaMarketType': rwa,
        'filters': {
            'price': _price_filter(tick, min_price, max_price, perp=False, stock=rwa is not None),
            'quantity': {'minQuantity': min_qty, 'maxQuantity': None, 'stepSize': step},
        },
        'imfFunction': None,
        'mmfFunction': None,
        'fundingInterval': None,
        'fundingRateUpperBound': None,
        'fundingRateLowerBound': None,
        'openInterestLimit': '0',
        'positionLimitWeight': None,
        'orderBookState': 'Open',
        'createdAt': created,
        'visible': True,
    }


def _perp(symbol: str, base: str, tick: str, step: str, min_price: str, max_price: str, oi_limit: str,
          imf: tuple[str, str], mmf: tuple[str, str], created: str) -> dict:
    return {
        'symbol': symbol,
        'baseSymbol': base,
        'quoteSymbol': 'USDC',
        'marketType': 'PERP',
        'rwaMarketType': None,
        'filters': {
            'price': _price_filter(tick, min_price, max_price, perp=True, stock=False),
            'quantity': {'minQuantity': step, 'maxQuantity': None, 'stepSize': step},
        },
        'imfFunction': {'type': 'sqrt', 'base': imf[0], 'factor': imf[1]},
        'mmfFunction': {'type': 'sqrt', 'base': mmf[0], 'factor': mmf[1]},
        'fundingInterval': 3600000,
        'fundingRateUpperBound': '100',
        'fundingRateLowerBound': '-100',
        'openInterestLimit': oi_limit,
        'positionLimitWeight': '1',
        'orderBookState': 'Open',
        'createdAt': created,
        'visible': True,
    }


_MARKETS: dict[str, dict] = {m['symbol']: m for m in (
    _spot('SOL_USDC', 'SOL', '0.01', '0.01', '0.01', '0.01', '10000', '2024-01-16T20:38:04.381541'),
    _spot('BTC_USDC', 'BTC', '0.1', '0.00001', '0.00001', '0.1', '1000000', '2024-01-16T20:38:04.381541'),
    _spot('ETH_USDC', 'ETH', '0.01', '0.0001', '0.0001', '0.01', '100000', '2024-01-16T20:38:04.381541'),
    _spot('USDT_USDC', 'USDT', '0.0001', '1', '1', '0.1', None, '2024-02-07T17:12:41.102876'),
    _spot('SPCX.US_USDC', 'SPCX.US', '0.01', '0.001', '0.001', '0.01', '100000', '2025-11-04T15:02:11.556120',
          rwa='STOCK'),
    _perp('SOL_USDC_PERP', 'SOL', '0.01', '0.01', '0.01', '1000', '4000000', ('0.02', '0.00006'),
          ('0.0135', '0.000036'), '2025-01-21T06:34:54.691858'),
    _perp('BTC_USDC_PERP', 'BTC', '0.1', '0.0001', '0.1', '1000000', '1500', ('0.02', '0.0000935'),
          ('0.0125', '0.0000561'), '2025-01-21T06:34:54.691858'),
    _perp('ETH_USDC_PERP', 'ETH', '0.01', '0.0001', '0.01', '100000', '60000', ('0.02', '0.0000935'),
          ('0.0125', '0.0000561'), '2025-01-21T06:34:54.691858'),
    _perp('kPEPE_USDC_PERP', 'kPEPE', '0.000001', '1', '0.000001', '10', '2000000000', ('0.02', '0.000025'),
          ('0.0125', '0.000015'), '2025-03-05T13:40:02.240105'),
)}

DEFAULT_SYMBOLS: tuple[str, ...] = tuple(_MARKETS)


@dataclass(frozen=True)
class SimParams:
    """What the market model needs beyond the published filters.

    ``start_price`` is where the book is centred at start; ``typical_quantity`` is the mean size
    of a resting order (taker orders are a fraction of the top level); ``open_interest`` seeds
    perpetuals; ``index_display`` is the number of decimals of the index price.
    """
    start_price: Decimal
    typical_quantity: Decimal
    open_interest: Decimal
    index_decimals: int


_PARAMS: dict[str, SimParams] = {
    'SOL_USDC': SimParams(Decimal('100.65'), Decimal('12'), Decimal('0'), 8),
    'BTC_USDC': SimParams(Decimal('65012.3'), Decimal('0.08'), Decimal('0'), 8),
    'ETH_USDC': SimParams(Decimal('3512.47'), Decimal('1.5'), Decimal('0'), 8),
    'USDT_USDC': SimParams(Decimal('1.0003'), Decimal('2500'), Decimal('0'), 8),
    'SPCX.US_USDC': SimParams(Decimal('251.34'), Decimal('3'), Decimal('0'), 8),
    'SOL_USDC_PERP': SimParams(Decimal('100.61'), Decimal('25'), Decimal('206529.68'), 8),
    'BTC_USDC_PERP': SimParams(Decimal('64998.7'), Decimal('0.15'), Decimal('812.4481'), 8),
    'ETH_USDC_PERP': SimParams(Decimal('3510.12'), Decimal('2.5'), Decimal('21877.4410'), 8),
    'kPEPE_USDC_PERP': SimParams(Decimal('0.012345'), Decimal('250000'), Decimal('912345678'), 10),
}

# GET /api/v1/assets rows (only the fields clients read; one Solana token each).
_ASSET_NAMES = {
    'SOL': ('Solana', 'solana'), 'BTC': ('Bitcoin', 'bitcoin'), 'ETH': ('Ethereum', 'ethereum'),
    'USDT': ('Tether USD', 'tether'), 'USDC': ('USD Coin', 'usd-coin'), 'kPEPE': ('Pepe', 'pepe'),
    'SPCX.US': ('SPCX Tokenized Stock', None),
}


def known_symbols() -> tuple[str, ...]:
    """Every symbol the simulator can list."""
    return DEFAULT_SYMBOLS


def _check(symbols: Iterable[str]) -> list[str]:
    out = []
    for symbol in symbols:
        if symbol not in _MARKETS:
            raise ValueError(f'unknown simulator market {symbol!r}; choose from {", ".join(DEFAULT_SYMBOLS)}')
        if symbol not in out:
            out.append(symbol)
    return out


def market_objects(symbols: Optional[Iterable[str]] = None) -> list[dict]:
    """``/api/v1/markets`` objects for ``symbols`` (all defaults when None), as fresh copies."""
    chosen = DEFAULT_SYMBOLS if symbols is None else _check(symbols)
    return [copy.deepcopy(_MARKETS[s]) for s in chosen]


def market_object(symbol: str) -> dict:
    """One market object (a fresh copy); ValueError for an unknown symbol."""
    _check([symbol])
    return copy.deepcopy(_MARKETS[symbol])


def sim_params(symbol: str) -> SimParams:
    """The simulation parameters of one market."""
    _check([symbol])
    return _PARAMS[symbol]


def _market_of(entry: Union[str, dict]) -> dict:
    return entry if isinstance(entry, dict) else _MARKETS[entry]


def asset_objects(markets: Iterable[Union[str, dict]]) -> list[dict]:
    """``GET /api/v1/assets`` rows for the base and quote assets of ``markets`` (default symbols or
    market objects)."""
    assets: list[str] = []
    for entry in markets:
        market = _market_of(entry)
        for asset in (market['baseSymbol'], market['quoteSymbol']):
            if asset not in assets:
                assets.append(asset)
    rows = []
    for asset in assets:
        name, gecko = _ASSET_NAMES.get(asset, (asset, None))
        stock = asset.endswith('.US')
        rows.append({
            'symbol': asset,
            'displayName': name,
            'coingeckoId': gecko,
            'tokens': [] if stock else [{
                'blockchain': 'Solana',
                'contractAddress': None,
                'depositEnabled': True,
                'displayName': name,
                'maximumWithdrawal': None,
                'minimumDeposit': '0.01',
                'minimumWithdrawal': '0.02',
                'withdrawEnabled': True,
                'withdrawalFee': '0.01',
            }],
        })
    return rows


def security_objects(markets: Iterable[Union[str, dict]]) -> list[dict]:
    """``GET /api/v1/securities`` rows: one per tokenized-stock base asset among ``markets``
    (default symbols or market objects)."""
    rows = []
    for entry in markets:
        market = _market_of(entry)
        if market['rwaMarketType'] != 'STOCK' or any(r['asset'] == market['baseSymbol'] for r in rows):
            continue
        step = market['filters']['quantity']['stepSize']
        rows.append({
            'asset': market['baseSymbol'],
            'cusip': None,
            'name': _ASSET_NAMES.get(market['baseSymbol'], (market['baseSymbol'], None))[0],
            'sessions': [
                {'maxQuantity': '1000', 'minQuantity': '1', 'name': 'US_EQUITIES_PRE_MARKET', 'stepSize': '1'},
                {'maxQuantity': '10000', 'minQuantity': step, 'name': 'US_EQUITIES_REGULAR', 'stepSize': step},
                {'maxQuantity': '1000', 'minQuantity': '1', 'name': 'US_EQUITIES_POST_MARKET', 'stepSize': '1'},
            ],
        })
    return rows


# --------------------------------------------------------------------------------------------
# Generated markets: synthetic ones at start, listings while running
# --------------------------------------------------------------------------------------------

#: Most synthetic markets one simulator takes.
MAX_SYNTHETIC = 5000
#: ``createdAt`` of every synthetic market.
SYNTHETIC_CREATED_AT = '2025-06-02T09:00:00.000000'
_LISTING = re.compile(r'(?P<base>[A-Za-z0-9][A-Za-z0-9.]{0,19})_(?P<quote>[A-Z0-9]{2,10})(?P<perp>_PERP)?')
_DEFAULT_IMF = ('0.02', '0.0000935')
_DEFAULT_MMF = ('0.0125', '0.0000561')


def synthetic_symbols(count: int) -> list[str]:
    """The names of ``count`` synthetic markets: ``SYN<i>_USDC``, or ``SYN<i>_USDC_PERP`` when ``i``
    is a multiple of three; ``i`` counts from 1, written with at least three digits."""
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_SYNTHETIC:
        raise ValueError(f'synthetic_markets must be an integer from 0 to {MAX_SYNTHETIC}, not {count!r}')
    return [f'SYN{i:03d}_USDC' + ('_PERP' if i % 3 == 0 else '') for i in range(1, count + 1)]


def check_listing_symbol(symbol: object) -> tuple[str, str, bool]:
    """(base, quote, is_perp) of a symbol the simulator can list, or ValueError saying what is wrong."""
    if not isinstance(symbol, str):
        raise ValueError(f'symbol must be a string such as NEWCOIN_USDC, not {symbol!r}')
    match = _LISTING.fullmatch(symbol)
    if match is None:
        raise ValueError(f'symbol {symbol!r} is not BASE_QUOTE or BASE_USDC_PERP (base: letters, digits and '
                         f'dots, up to 20; quote: 2-10 upper-case letters or digits), e.g. NEWCOIN_USDC')
    perp = match['perp'] is not None
    if perp and match['quote'] != 'USDC':
        raise ValueError(f'perpetual {symbol!r} must be quoted in USDC (BASE_USDC_PERP)')
    return match['base'], match['quote'], perp


def _plain(value: Decimal) -> str:
    return format(value, 'f')


def generated_market(symbol: str, created_at: str) -> tuple[dict, SimParams]:
    """A full ``/api/v1/markets`` object and the model parameters for a symbol outside the defaults.

    Everything but ``createdAt`` follows from the symbol: the start price (0.01 to 50000,
    log-uniform, drawn from the name), a tick of five significant digits, a step worth about one
    quote unit (at most 1), resting orders worth about 500 quote units. A base ending in ``.US``
    makes a tokenized stock. ValueError (saying why) for a malformed symbol.
    """
    base, quote, perp = check_listing_symbol(symbol)
    rng = random.Random(f'backpack-simulator-listing:{symbol}')
    raw = 10 ** rng.uniform(-2.0, math.log10(50_000))
    exponent = math.floor(math.log10(raw))
    tick = Decimal(1).scaleb(exponent - 4)
    step = Decimal(1).scaleb(min(0, math.floor(math.log10(1 / raw))))
    start = Decimal(repr(raw)).quantize(tick)
    typical = max(step, (Decimal(500) / start).quantize(step))
    max_price = _plain(Decimal(1).scaleb(exponent + 3))
    if perp:
        info = _perp(symbol, base, _plain(tick), _plain(step), _plain(tick), max_price,
                     _plain(Decimal(int(5_000_000 / raw) or 1)), _DEFAULT_IMF, _DEFAULT_MMF, created_at)
        open_interest = (typical * 2000).quantize(step)
    else:
        info = _spot(symbol, base, _plain(tick), _plain(step), _plain(step), _plain(tick), max_price, created_at,
                     quote=quote, rwa='STOCK' if base.endswith('.US') else None)
        open_interest = Decimal(0)
    return info, SimParams(start, typical, open_interest, 10 if exponent < -1 else 8)
