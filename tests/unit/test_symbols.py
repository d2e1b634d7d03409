"""Tests for cryptofeed.exchanges.backpack.core.symbols: parsing, string rules, the TTL service."""
from __future__ import annotations

import asyncio
import copy
import logging
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import PERPETUAL, SPOT
from cryptofeed.exchange import Exchange
from cryptofeed.symbols import Symbol, Symbols, str_to_symbol

from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError, BackpackProtocolError
from cryptofeed.exchanges.backpack.core.symbols import (
    DEFAULT_TTL_S, BackpackMarket, BackpackSymbolService, SymbolTable, exchange_to_normalized,
    normalized_to_exchange, parse_symbol_data,
)
from tests.conftest import load_fixture

LOGGER = package_log.root() + '.backpack.symbols'

EXPECTED = {
    'SOL-USDC': 'SOL_USDC',
    'BTC-USDC': 'BTC_USDC',
    'ETH-USDC': 'ETH_USDC',
    'USDT-USDC': 'USDT_USDC',
    'BONK-USDC': 'BONK_USDC',
    'SPCX.US-USDC': 'SPCX.US_USDC',
    'SOL-USDC-PERP': 'SOL_USDC_PERP',
    'BTC-USDC-PERP': 'BTC_USDC_PERP',
    'ETH-USDC-PERP': 'ETH_USDC_PERP',
    'kPEPE-USDC-PERP': 'kPEPE_USDC_PERP',
    'QQQ.US-USDC-PERP': 'QQQ.US_USDC_PERP',
    'JTO-USDC-PERP': 'JTO_USDC_PERP',
    'WIF-USDC-PERP': 'WIF_USDC_PERP',
}
SKIPPED = {'TNSR_USDC', 'FDVEXTD1B_USDC_PREDICTION', 'SOL_USDC_RFQ', 'MON_USDC'}


@pytest.fixture
def markets():
    return load_fixture('markets.json')


def _by_symbol(markets, symbol):
    return next(entry for entry in markets if entry['symbol'] == symbol)


def _spot(symbol, **overrides):
    """A minimal spot market object; overrides replace top-level keys (None deletes)."""
    base, quote = symbol.split('_')[:2]
    entry = {
        'symbol': symbol, 'baseSymbol': base, 'quoteSymbol': quote, 'marketType': 'SPOT',
        'rwaMarketType': None,
        'filters': {'price': {'minPrice': '0.01', 'maxPrice': None, 'tickSize': '0.01'},
                    'quantity': {'minQuantity': '0.1', 'maxQuantity': None, 'stepSize': '0.1'}},
        'fundingInterval': None, 'orderBookState': 'Open', 'visible': True,
    }
    for key, value in overrides.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


# --- fixture shape -------------------------------------------------------------------------------

def test_fixture_covers_the_cases_the_brief_lists(markets):
    symbols = {entry['symbol'] for entry in markets}
    assert len(markets) >= 14
    assert {'SPCX.US_USDC', 'QQQ.US_USDC_PERP', 'kPEPE_USDC_PERP', 'USDT_USDC'} <= symbols
    types = [entry.get('marketType') for entry in markets]
    assert {'SPOT', 'PERP', 'PREDICTION', 'RFQ', 'MONAD', None} <= set(types)
    assert any(entry['orderBookState'] == 'CancelOnly' for entry in markets)
    old = [entry for entry in markets if 'marketType' not in entry]
    assert len(old) == 1 and 'rwaMarketType' not in old[0] and 'leverage' in old[0]['filters']
    assert _by_symbol(markets, 'SPCX.US_USDC')['rwaMarketType'] == 'STOCK'
    spot_intervals = [e['fundingInterval'] for e in markets if e.get('marketType') == 'SPOT']
    assert None in spot_intervals and any(v is not None for v in spot_intervals)
    assert all(e['fundingInterval'] == 3600000 for e in markets if e.get('marketType') == 'PERP')


# --- parse_symbol_data ---------------------------------------------------------------------------

def test_parse_maps_spot_and_perp_markets_only(markets):
    mapping, info = parse_symbol_data(markets)
    assert mapping == EXPECTED
    assert set(info['tick_size']) == set(info['instrument_type']) == set(info['markets']) == set(EXPECTED)


def test_instrument_types_follow_market_type(markets):
    _, info = parse_symbol_data(markets)
    assert info['instrument_type']['SOL-USDC'] == SPOT
    assert info['instrument_type']['SPCX.US-USDC'] == SPOT
    assert info['instrument_type']['SOL-USDC-PERP'] == PERPETUAL
    assert info['instrument_type']['QQQ.US-USDC-PERP'] == PERPETUAL


def test_market_type_wins_over_the_symbol_suffix():
    # MONAD markets are skipped although MON_USDC looks like a spot symbol.
    mapping, _ = parse_symbol_data([_spot('MON_USDC', marketType='MONAD'), _spot('SOL_USDC')])
    assert mapping == {'SOL-USDC': 'SOL_USDC'}


def test_a_symbol_contradicting_its_market_type_is_dropped_with_a_warning(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    entries = [_spot('SOL_USDC_PERP', marketType='SPOT'), _spot('ABC_USDC', marketType='PERP')]
    mapping, _ = parse_symbol_data(entries)
    assert mapping == {}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert 'SOL_USDC_PERP' in warnings[0].getMessage() and 'ABC_USDC' in warnings[1].getMessage()


def test_old_response_without_market_type_uses_the_perp_suffix(markets):
    mapping, info = parse_symbol_data(markets)
    wif = info['markets']['WIF-USDC-PERP']
    assert mapping['WIF-USDC-PERP'] == 'WIF_USDC_PERP'
    assert wif.instrument_type == PERPETUAL
    assert wif.market_type is None and wif.rwa_market_type is None
    assert wif.funding_interval_ms == 28800000

    old_spot = _spot('JUP_USDC', marketType=None, rwaMarketType=None)
    old_rfq = _spot('SOL_USDC_RFQ', marketType=None)
    mapping, info = parse_symbol_data([old_spot, old_rfq])
    assert mapping == {'JUP-USDC': 'JUP_USDC'}
    assert info['instrument_type']['JUP-USDC'] == SPOT


def test_null_market_type_counts_as_absent():
    entry = _spot('WIF_USDC_PERP')
    entry['marketType'] = None
    _, info = parse_symbol_data([entry])
    assert info['instrument_type'] == {'WIF-USDC-PERP': PERPETUAL}


@pytest.mark.parametrize('market_type', ['IPERP', 'DATED', 'PREDICTION', 'RFQ', 'MONAD', 'SOMETHING_NEW'])
def test_other_market_types_are_skipped(market_type):
    mapping, info = parse_symbol_data([_spot('XYZ_USDC', marketType=market_type)])
    assert mapping == {} and info['markets'] == {}


def test_each_skipped_market_logs_one_debug_line_and_no_warning(markets, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    parse_symbol_data(markets)
    records = [r for r in caplog.records if r.name == LOGGER]
    assert all(r.levelno == logging.DEBUG for r in records)
    assert len(records) == len(SKIPPED)
    for symbol in SKIPPED:
        assert sum(symbol in r.getMessage() for r in records) == 1
    assert any("'PREDICTION'" in r.getMessage() for r in records)


def test_invisible_markets_are_skipped_and_missing_visible_counts_as_visible(markets):
    mapping, _ = parse_symbol_data(markets)
    assert 'TNSR-USDC' not in mapping
    mapping, _ = parse_symbol_data([_spot('JUP_USDC', visible=None)])
    assert mapping == {'JUP-USDC': 'JUP_USDC'}


def test_tokenized_and_lowercase_symbols_keep_their_spelling(markets):
    mapping, info = parse_symbol_data(markets)
    for normalized in ('SPCX.US-USDC', 'QQQ.US-USDC-PERP', 'kPEPE-USDC-PERP'):
        assert normalized in mapping
        assert str_to_symbol(normalized).normalized == normalized
        assert info['markets'][normalized].to_symbol().normalized == normalized
    kpepe = str_to_symbol('kPEPE-USDC-PERP')
    assert (kpepe.base, kpepe.quote, kpepe.type) == ('kPEPE', 'USDC', PERPETUAL)
    spcx = str_to_symbol('SPCX.US-USDC')
    assert (spcx.base, spcx.quote, spcx.type) == ('SPCX.US', 'USDC', SPOT)
    assert info['markets']['QQQ.US-USDC-PERP'].rwa_market_type == 'STOCK'


def test_market_info_values(markets):
    _, info = parse_symbol_data(markets)
    sol = info['markets']['SOL-USDC-PERP']
    assert sol == BackpackMarket(
        symbol='SOL_USDC_PERP', normalized='SOL-USDC-PERP', instrument_type=PERPETUAL, market_type='PERP',
        base='SOL', quote='USDC', tick_size=Decimal('0.01'), step_size=Decimal('0.01'),
        min_quantity=Decimal('0.01'), max_quantity=None, order_book_state='Open',
        funding_interval_ms=3600000, rwa_market_type=None, visible=True,
    )
    assert sol.is_open
    spcx = info['markets']['SPCX.US-USDC']
    assert spcx.max_quantity == Decimal('1000') and spcx.rwa_market_type == 'STOCK'
    assert info['markets']['USDT-USDC'].tick_size == Decimal('0.0001')
    assert info['markets']['BONK-USDC'].tick_size == Decimal('0.0000001')


def test_numeric_info_is_decimal(markets):
    _, info = parse_symbol_data(markets)
    for name, market in info['markets'].items():
        assert type(info['tick_size'][name]) is Decimal
        assert info['tick_size'][name] == market.tick_size
        for value in (market.tick_size, market.step_size, market.min_quantity):
            assert type(value) is Decimal
        assert market.max_quantity is None or type(market.max_quantity) is Decimal


def test_cancel_only_markets_are_kept_with_their_state(markets):
    _, info = parse_symbol_data(markets)
    jto = info['markets']['JTO-USDC-PERP']
    assert jto.order_book_state == 'CancelOnly'
    assert not jto.is_open


def test_funding_interval_is_for_perps_only(markets):
    _, info = parse_symbol_data(markets)
    assert _by_symbol(markets, 'ETH_USDC')['fundingInterval'] is not None
    assert info['markets']['ETH-USDC'].funding_interval_ms is None
    assert info['markets']['ETH-USDC-PERP'].funding_interval_ms == 3600000


@pytest.mark.parametrize('raw, expected', [
    ('28800000', 28800000), (' 3600000 ', 3600000), (3600000.0, 3600000), ('8h', None), (None, None),
    (0, None), (True, None),
])
def test_funding_interval_tolerates_quoted_integers(raw, expected):
    entry = _spot('SOL_USDC_PERP', marketType='PERP', fundingInterval=raw)
    if raw is None:
        entry['fundingInterval'] = None
    _, info = parse_symbol_data([entry])
    assert info['markets']['SOL-USDC-PERP'].funding_interval_ms == expected


@pytest.mark.parametrize('filters', [
    {'price': {'tickSize': None}, 'quantity': {'stepSize': '1'}},
    {'price': {'tickSize': 'abc'}, 'quantity': {'stepSize': '1'}},
    {'price': {'tickSize': '0'}, 'quantity': {'stepSize': '1'}},
    {'price': {'tickSize': '0.01'}, 'quantity': {'stepSize': '-1'}},
    {'price': {'tickSize': 'NaN'}, 'quantity': {'stepSize': '1'}},
    {'price': {'tickSize': '0.01'}},
])
def test_unreadable_filters_drop_the_market_with_a_warning(filters, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    mapping, _ = parse_symbol_data([_spot('BAD_USDC', filters=filters), _spot('SOL_USDC')])
    assert mapping == {'SOL-USDC': 'SOL_USDC'}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'BAD_USDC' in warnings[0].getMessage()


def test_missing_optional_quantities_are_none():
    entry = _spot('SOL_USDC', filters={'price': {'tickSize': '0.01'}, 'quantity': {'stepSize': '0.1'}})
    _, info = parse_symbol_data([entry])
    market = info['markets']['SOL-USDC']
    assert market.min_quantity is None and market.max_quantity is None


@pytest.mark.parametrize('entry', [
    'SOL_USDC', None, {'marketType': 'SPOT'}, _spot('USDC_USDC'), _spot('SOL-X_USDC'),
    _spot('SOL_USDC', marketType=['SPOT']),
])
def test_malformed_entries_do_not_break_the_rest(entry, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    mapping, _ = parse_symbol_data([entry, _spot('BTC_USDC')])
    assert mapping == {'BTC-USDC': 'BTC_USDC'}
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_duplicates_keep_the_first_entry(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    first = _spot('SOL_USDC')
    second = _spot('SOL_USDC', filters={'price': {'tickSize': '0.1'}, 'quantity': {'stepSize': '1'}})
    _, info = parse_symbol_data([first, second])
    assert info['tick_size'] == {'SOL-USDC': Decimal('0.01')}
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


@pytest.mark.parametrize('data', [{'symbol': 'SOL_USDC'}, 'SOL_USDC', None])
def test_a_response_that_is_not_an_array_is_a_protocol_error(data):
    with pytest.raises(BackpackProtocolError):
        parse_symbol_data(data)


def test_several_responses_are_merged(markets):
    spot = [e for e in markets if e.get('marketType') == 'SPOT']
    perp = [e for e in markets if e.get('marketType') == 'PERP']
    mapping, _ = parse_symbol_data([spot, perp])
    assert mapping == {k: v for k, v in EXPECTED.items() if k != 'WIF-USDC-PERP'}


def test_parse_is_pure_and_returns_fresh_dicts(markets):
    before = copy.deepcopy(markets)
    first = parse_symbol_data(markets)
    second = parse_symbol_data(markets)
    assert markets == before
    assert first == second
    first[1]['symbols'] = ['x']
    assert 'symbols' not in second[1]


class _BackpackLike(Exchange):
    id = 'BACKPACK_SYMBOLS_UNIT_TEST'
    websocket_channels = {}
    _parse_symbol_data = classmethod(lambda cls, data: parse_symbol_data(data))


def test_works_as_the_cryptofeed_class_hook(markets):
    try:
        syms, info = _BackpackLike._parse_symbol_data(markets)
        Symbols.set(_BackpackLike.id, syms, info)
        assert _BackpackLike.symbols() == list(EXPECTED)
        described = _BackpackLike.info()
        assert described['tick_size']['SOL-USDC-PERP'] == Decimal('0.01')
        assert described['instrument_type']['kPEPE-USDC-PERP'] == PERPETUAL
        assert described['symbols'] == list(EXPECTED)
        assert Symbols.find('QQQ.US-USDC-PERP') == [_BackpackLike.id]
    finally:
        Symbols.data.pop(_BackpackLike.id, None)


# --- string rules --------------------------------------------------------------------------------

@pytest.mark.parametrize('exchange, normalized', [
    ('SOL_USDC', 'SOL-USDC'), ('SOL_USDC_PERP', 'SOL-USDC-PERP'), ('SPCX.US_USDC', 'SPCX.US-USDC'),
    ('QQQ.US_USDC_PERP', 'QQQ.US-USDC-PERP'), ('kPEPE_USDC_PERP', 'kPEPE-USDC-PERP'),
    ('USDT_USDC', 'USDT-USDC'),
])
def test_string_rules(exchange, normalized):
    assert exchange_to_normalized(exchange) == normalized
    assert normalized_to_exchange(normalized) == exchange


def test_string_rules_invert_each_other_on_every_fixture_symbol(markets):
    convertible = 0
    for entry in markets:
        symbol = entry['symbol']
        if symbol.endswith(('_RFQ', '_PREDICTION')):
            with pytest.raises(ValueError):
                exchange_to_normalized(symbol)
            continue
        normalized = exchange_to_normalized(symbol)
        assert normalized_to_exchange(normalized) == symbol
        assert exchange_to_normalized(normalized_to_exchange(normalized)) == normalized
        convertible += 1
    assert convertible == len(markets) - 2


def test_string_rules_agree_with_the_table(markets):
    mapping, _ = parse_symbol_data(markets)
    for normalized, exchange in mapping.items():
        assert exchange_to_normalized(exchange) == normalized
        assert normalized_to_exchange(normalized) == exchange
        assert str_to_symbol(normalized).normalized == normalized


def test_normalized_to_exchange_accepts_a_symbol_object():
    assert normalized_to_exchange(Symbol('kPEPE', 'USDC', type=PERPETUAL)) == 'kPEPE_USDC_PERP'


@pytest.mark.parametrize('bad', ['SOL', 'SOL_USDC_RFQ', 'FDVEXTD1B_USDC_PREDICTION', 'SOL__USDC', 'SOL-USDC',
                                 '_USDC', 'SOL_USDC_', 'A_B_C', '', 42])
def test_exchange_to_normalized_rejects_other_shapes(bad):
    with pytest.raises(ValueError):
        exchange_to_normalized(bad)


@pytest.mark.parametrize('bad', ['SOL', 'BTC-USD-22M25', 'BTC-USD-50000-22M25-call', 'SOL_USDC', 'SOL--USDC',
                                 'SOL-USDC-', '', None])
def test_normalized_to_exchange_rejects_other_shapes(bad):
    with pytest.raises(ValueError):
        normalized_to_exchange(bad)


_PARTS = st.text(alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.', min_size=1, max_size=12)


@given(base=_PARTS, quote=st.sampled_from(['USDC', 'USDT']), perp=st.booleans())
def test_generated_symbols_round_trip(base, quote, perp):
    symbol = f'{base}_{quote}_PERP' if perp else f'{base}_{quote}'
    normalized = exchange_to_normalized(symbol)
    assert normalized_to_exchange(normalized) == symbol
    assert normalized.endswith('-PERP') == perp
    parsed = str_to_symbol(normalized)
    assert (parsed.base, parsed.quote, parsed.type) == (base, quote, PERPETUAL if perp else SPOT)


# --- SymbolTable ---------------------------------------------------------------------------------

def test_symbol_table_maps_both_ways(markets):
    table = SymbolTable.from_markets(markets, fetched_at=12.5)
    assert table.fetched_at == 12.5
    assert len(table) == len(EXPECTED)
    assert table.symbols() == list(EXPECTED)
    assert dict(table.normalized) == EXPECTED
    assert dict(table.exchange) == {v: k for k, v in EXPECTED.items()}
    assert table.to_exchange('QQQ.US-USDC-PERP') == 'QQQ.US_USDC_PERP'
    assert table.to_exchange(Symbol('SOL', 'USDC')) == 'SOL_USDC'
    assert table.to_normalized('kPEPE_USDC_PERP') == 'kPEPE-USDC-PERP'
    assert table.market('SOL_USDC_PERP') is table.market('SOL-USDC-PERP')
    assert 'SOL_USDC' in table and 'SOL-USDC' in table and 'SOL_USDC_RFQ' not in table
    assert set(table.skipped) == SKIPPED
    with pytest.raises(KeyError):
        table.to_exchange('SOL-USDC-RFQ')
    with pytest.raises(KeyError):
        table.to_normalized('MON_USDC')


def test_symbol_table_is_read_only_and_exports_fresh_copies(markets):
    table = SymbolTable.from_markets(markets)
    with pytest.raises(TypeError):
        table.normalized['X-USDC'] = 'X_USDC'
    with pytest.raises(TypeError):
        table.info['tick_size']['SOL-USDC'] = Decimal('1')
    syms, info = table.cryptofeed_data()
    assert (syms, info) == parse_symbol_data(markets)
    info['symbols'] = []
    info['tick_size'].clear()
    assert 'symbols' not in table.info and table.info['tick_size']


# --- BackpackSymbolService -----------------------------------------------------------------------

class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeFetcher:
    """Counts calls; returns ``response`` or raises ``error``; can hold each call on a gate."""

    def __init__(self, response):
        self.response = response
        self.error = None
        self.calls = 0
        self.gate = None

    async def __call__(self):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return copy.deepcopy(self.response)


def _service(markets, **kwargs):
    fetcher = FakeFetcher(markets)
    clock = FakeClock()
    return BackpackSymbolService(fetcher, clock=clock, **kwargs), fetcher, clock


async def _settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_constructor_does_no_io_and_validates(markets):
    service, fetcher, _ = _service(markets)
    assert fetcher.calls == 0
    assert service.cached() is None and not service.is_fresh() and service.last_error is None
    assert service.ttl_s == DEFAULT_TTL_S
    for bad in ({'ttl_s': -1}, {'ttl_s': float('nan')}, {'error_backoff_s': -0.5}, {'ttl_s': '5'}):
        with pytest.raises(BackpackConfigError):
            BackpackSymbolService(fetcher, **bad)


async def test_get_fetches_once_then_serves_the_cache_until_the_ttl_expires(markets):
    service, fetcher, clock = _service(markets, ttl_s=60)
    table = await service.get()
    assert fetcher.calls == 1 and dict(table.normalized) == EXPECTED
    assert table.fetched_at == 1000.0
    assert service.cached() is table

    clock.now += 59.9
    assert await service.get() is table
    assert fetcher.calls == 1

    clock.now += 0.1
    fresher = await service.get()
    assert fetcher.calls == 2 and fresher is not table
    assert fresher.fetched_at == 1060.0


async def test_forced_refresh_fetches_even_when_fresh(markets):
    service, fetcher, _ = _service(markets, ttl_s=60)
    first = await service.get()
    second = await service.get(refresh=True)
    assert fetcher.calls == 2 and second is not first and service.cached() is second


async def test_refresh_sees_new_markets(markets):
    service, fetcher, _ = _service(markets)
    await service.get()
    fetcher.response = markets + [_spot('JUP_USDC')]
    table = await service.get(refresh=True)
    assert table.to_exchange('JUP-USDC') == 'JUP_USDC'


async def test_concurrent_callers_share_one_fetch(markets):
    service, fetcher, _ = _service(markets)
    fetcher.gate = asyncio.Event()
    callers = [asyncio.create_task(service.get(refresh=i % 2 == 0)) for i in range(10)]
    await _settle()
    assert fetcher.calls == 1
    fetcher.gate.set()
    tables = await asyncio.gather(*callers)
    assert fetcher.calls == 1
    assert all(table is tables[0] for table in tables)


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(markets):
    service, fetcher, _ = _service(markets)
    fetcher.gate = asyncio.Event()
    first = asyncio.create_task(service.get())
    second = asyncio.create_task(service.get())
    await _settle()
    first.cancel()
    await _settle()
    fetcher.gate.set()
    table = await second
    assert first.cancelled()
    assert fetcher.calls == 1 and service.cached() is table


async def test_failed_refresh_keeps_serving_the_previous_table(markets, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    service, fetcher, clock = _service(markets, ttl_s=60, error_backoff_s=5)
    good = await service.get()

    fetcher.error = ConnectionError('boom')
    clock.now += 61
    assert await service.get() is good
    assert fetcher.calls == 2
    assert isinstance(service.last_error, ConnectionError)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'boom' in warnings[0].getMessage()

    # Within the back-off the stale table is served without asking again ...
    clock.now += 4
    assert await service.get() is good
    assert fetcher.calls == 2
    # ... a forced refresh still asks ...
    assert await service.get(refresh=True) is good
    assert fetcher.calls == 3
    # ... and once the back-off is over, a plain get asks again and recovers.
    clock.now += 6
    fetcher.error = None
    recovered = await service.get()
    assert fetcher.calls == 4 and recovered is not good
    assert service.last_error is None and service.cached() is recovered


async def test_failure_with_nothing_cached_is_raised(markets):
    service, fetcher, _ = _service(markets)
    fetcher.error = ConnectionError('down')
    with pytest.raises(ConnectionError):
        await service.get()
    assert service.cached() is None and isinstance(service.last_error, ConnectionError)
    fetcher.error = None
    assert len(await service.get()) == len(EXPECTED)
    assert fetcher.calls == 2


async def test_concurrent_callers_share_one_failure(markets):
    service, fetcher, _ = _service(markets)
    fetcher.gate = asyncio.Event()
    fetcher.error = ConnectionError('down')
    callers = [asyncio.create_task(service.get()) for _ in range(5)]
    await _settle()
    fetcher.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert fetcher.calls == 1
    assert all(isinstance(result, ConnectionError) for result in results)


@pytest.mark.parametrize('response', [[], {'error': 'x'}, [_spot('SOL_USDC_RFQ', marketType='RFQ')]])
async def test_unusable_responses_count_as_failures(markets, response):
    service, fetcher, _ = _service(markets, ttl_s=60)
    good = await service.get()
    fetcher.response = response
    assert await service.get(refresh=True) is good
    assert isinstance(service.last_error, BackpackProtocolError)

    empty, _, _ = _service(response)
    with pytest.raises(BackpackProtocolError):
        await empty.get()


async def test_invalidate_forces_the_next_get_to_fetch_but_keeps_the_fallback(markets):
    service, fetcher, _ = _service(markets, ttl_s=60)
    table = await service.get()
    service.invalidate()
    assert service.cached() is table and not service.is_fresh()
    fetcher.error = ConnectionError('down')
    assert await service.get() is table
    assert fetcher.calls == 2
    fetcher.error = None
    service.invalidate()
    assert await service.get() is not table
    assert fetcher.calls == 3


async def test_a_fetch_running_during_invalidate_is_not_fresh(markets):
    service, fetcher, _ = _service(markets, ttl_s=60)
    fetcher.gate = asyncio.Event()
    pending = asyncio.create_task(service.get())
    await _settle()
    service.invalidate()
    fetcher.gate.set()
    table = await pending
    assert service.cached() is table and not service.is_fresh()
    await service.get()
    assert fetcher.calls == 2


async def test_aclose_cancels_the_fetch_in_flight(markets):
    service, fetcher, _ = _service(markets)
    fetcher.gate = asyncio.Event()
    pending = asyncio.create_task(service.get())
    await _settle()
    await service.aclose()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert service.cached() is None
    fetcher.gate = None
    assert len(await service.get()) == len(EXPECTED)


async def test_zero_ttl_fetches_every_time_but_still_single_flight(markets):
    service, fetcher, _ = _service(markets, ttl_s=0)
    await service.get()
    await service.get()
    assert fetcher.calls == 2
    fetcher.gate = asyncio.Event()
    callers = [asyncio.create_task(service.get()) for _ in range(4)]
    await _settle()
    fetcher.gate.set()
    await asyncio.gather(*callers)
    assert fetcher.calls == 3
