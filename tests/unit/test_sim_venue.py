"""Whole-venue pieces of the simulator, without sockets: generated markets, the list/delist state
machine of the market model, and the per-client REST token bucket.

``markets.generated_market`` must give every synthetic or listed market the same shape as the
default ones; ``MarketModel.add_market`` / ``close_market`` / ``reopen_market`` must keep the
book sequence gap-free across a close, and a closed market must produce no event at all.
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from cryptofeed.exchanges.backpack.simulator import markets as sim_markets
from cryptofeed.exchanges.backpack.simulator.account import AccountEngine, OrderRejected
from cryptofeed.exchanges.backpack.simulator.faults import RestRateLimit
from cryptofeed.exchanges.backpack.simulator.market import (
    BookTop, DepthUpdate, KlineUpdate, MarketModel, MarkPriceUpdate, OpenInterestUpdate, TickerUpdate, TradePrint,
)
from tests.conftest import load_fixture

T0 = 1_788_285_151_000_000
KEY = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
REFERENCE = load_fixture('sim_rest_responses.json')['market_perp']


class Clock:
    def __init__(self, now: int = T0):
        self.now = now

    def __call__(self) -> int:
        return self.now


def run(model: MarketModel, clock: Clock, steps: int, dt_us: int = 2000) -> list:
    for _ in range(steps):
        clock.now += dt_us
        model.step()
        model.advance()
    return model.drain()


def symbols_of(events: list) -> set:
    return {event.symbol for event in events}


def synthetic_model(count: int, symbols=('SOL_USDC',), seed: int = 5) -> tuple[MarketModel, Clock]:
    clock = Clock()
    extra = [sim_markets.generated_market(s, sim_markets.SYNTHETIC_CREATED_AT)
             for s in sim_markets.synthetic_symbols(count)]
    return MarketModel(list(symbols), seed=seed, clock=clock, extra_markets=extra), clock


# ------------------------------------------------------------------------------------ names and objects

def test_synthetic_names_are_numbered_and_every_third_is_a_perpetual():
    assert sim_markets.synthetic_symbols(7) == [
        'SYN001_USDC', 'SYN002_USDC', 'SYN003_USDC_PERP', 'SYN004_USDC', 'SYN005_USDC', 'SYN006_USDC_PERP',
        'SYN007_USDC']
    names = sim_markets.synthetic_symbols(1000)
    assert names[-1] == 'SYN1000_USDC' and names[998] == 'SYN999_USDC_PERP' and len(set(names)) == 1000
    assert sum(name.endswith('_PERP') for name in names) == 333
    assert sim_markets.synthetic_symbols(0) == []


@pytest.mark.parametrize('count', [-1, sim_markets.MAX_SYNTHETIC + 1, 2.5, '10', True])
def test_a_bad_synthetic_count_says_what_is_accepted(count):
    with pytest.raises(ValueError, match=f'synthetic_markets must be an integer from 0 to {sim_markets.MAX_SYNTHETIC}'):
        sim_markets.synthetic_symbols(count)


@pytest.mark.parametrize('symbol', sim_markets.synthetic_symbols(12) + ['NEWCOIN_USDC', 'NEWCOIN_USDC_PERP',
                                                                         'AAPL.US_USDC', 'kBONK_USDC_PERP', 'X_USDT'])
def test_generated_markets_have_the_shape_of_the_default_ones(symbol):
    info, params = sim_markets.generated_market(symbol, '2026-01-02T03:04:05.000006')
    default = sim_markets.market_object('SOL_USDC_PERP' if symbol.endswith('_PERP') else 'SOL_USDC')
    assert set(info) == set(REFERENCE) == set(default)
    assert set(info['filters']['price']) == set(default['filters']['price'])
    assert set(info['filters']['quantity']) == set(default['filters']['quantity'])
    perp = symbol.endswith('_PERP')
    assert info['symbol'] == symbol and info['marketType'] == ('PERP' if perp else 'SPOT')
    assert symbol == f"{info['baseSymbol']}_{info['quoteSymbol']}" + ('_PERP' if perp else '')
    assert info['orderBookState'] == 'Open' and info['visible'] is True
    assert info['createdAt'] == '2026-01-02T03:04:05.000006'
    for key in ('fundingInterval', 'fundingRateUpperBound', 'fundingRateLowerBound', 'imfFunction', 'mmfFunction',
                'positionLimitWeight'):
        assert (info[key] is not None) == perp, key
    if perp:
        assert info['fundingInterval'] == 3600000 and params.open_interest > 0
        assert info['imfFunction']['type'] == info['mmfFunction']['type'] == 'sqrt'
    assert info['rwaMarketType'] == ('STOCK' if symbol == 'AAPL.US_USDC' else None)
    tick = Decimal(info['filters']['price']['tickSize'])
    step = Decimal(info['filters']['quantity']['stepSize'])
    price = params.start_price
    assert price % tick == 0 and 10_000 <= price / tick < 100_000, 'five significant digits'
    assert step <= 1 and price * step <= 10, 'a step is worth about one quote unit at most'
    assert params.typical_quantity % step == 0 and params.typical_quantity >= step
    assert Decimal('0.01') <= price <= 50_000
    assert Decimal(info['filters']['price']['minPrice']) == tick
    assert Decimal(info['filters']['price']['maxPrice']) >= price * 100
    for text in (info['filters']['price']['tickSize'], info['filters']['quantity']['stepSize'],
                 info['filters']['price']['maxPrice']):
        assert 'E' not in text and Decimal(text) > 0


def test_a_generated_market_depends_on_its_name_only():
    first, params = sim_markets.generated_market('NEWCOIN_USDC', 'a')
    again, params_again = sim_markets.generated_market('NEWCOIN_USDC', 'b')
    assert params == params_again and {**first, 'createdAt': 'b'} == again
    other, other_params = sim_markets.generated_market('OTHERCOIN_USDC', 'a')
    assert other_params.start_price != params.start_price


@pytest.mark.parametrize('symbol, reason', [
    ('bad', 'is not BASE_QUOTE or BASE_USDC_PERP'),
    ('NEW_usdc', 'is not BASE_QUOTE'),
    ('NEW_USDC_FUT', 'is not BASE_QUOTE'),
    ('_USDC', 'is not BASE_QUOTE'),
    ('NEW_USDT_PERP', 'must be quoted in USDC'),
    (42, 'must be a string'),
    (None, 'must be a string'),
])
def test_a_malformed_listing_symbol_is_refused_with_the_reason(symbol, reason):
    with pytest.raises(ValueError, match=reason):
        sim_markets.generated_market(symbol, 'x')


def test_assets_and_securities_accept_market_objects():
    objects = [sim_markets.generated_market(s, 'x')[0] for s in ('NEWCOIN_USDC', 'AAPL.US_USDC', 'NEWCOIN_USDC_PERP')]
    assert [a['symbol'] for a in sim_markets.asset_objects(objects)] == ['NEWCOIN', 'USDC', 'AAPL.US']
    assert [s['asset'] for s in sim_markets.security_objects(objects)] == ['AAPL.US']
    assert [a['symbol'] for a in sim_markets.asset_objects(['SOL_USDC'])] == ['SOL', 'USDC']


# ------------------------------------------------------------------------------------ the model

def test_synthetic_markets_are_full_markets_of_the_model():
    model, clock = synthetic_model(30)
    assert len(model.symbols) == 31 and model.symbols[0] == 'SOL_USDC' and model.symbols[-1] == 'SYN030_USDC_PERP'
    assert [m['symbol'] for m in model.markets()] == model.symbols
    for symbol in ('SYN001_USDC', 'SYN003_USDC_PERP'):
        snap = model.book_snapshot(symbol)
        assert len(snap.bids) >= 20 and len(snap.asks) >= 20 and snap.bids[0][0] < snap.asks[0][0]
        model.watch_kline(symbol, '1s')
    events = run(model, clock, 20_000, dt_us=500)
    kinds = {(type(e), e.symbol) for e in events}
    for kind in (DepthUpdate, TradePrint, BookTop, TickerUpdate):
        assert (kind, 'SYN001_USDC') in kinds and (kind, 'SYN003_USDC_PERP') in kinds, kind
    assert (KlineUpdate, 'SYN001_USDC') in kinds
    assert (MarkPriceUpdate, 'SYN003_USDC_PERP') in kinds and (MarkPriceUpdate, 'SYN001_USDC') not in kinds
    perps = {e.symbol for e in events if type(e) is MarkPriceUpdate}
    assert perps == {s for s in model.symbols if s.endswith('_PERP')}
    assert len(symbols_of([e for e in events if type(e) is TradePrint])) == 31
    assert model.trade_count('SYN002_USDC') > 0


def test_add_market_lists_a_market_that_trades_from_the_next_step():
    model, clock = synthetic_model(0)
    info, params = sim_markets.generated_market('NEWCOIN_USDC_PERP', 'now')
    info['orderBookState'] = 'Closed'
    listed = model.add_market(info, params)
    assert listed is info and listed['orderBookState'] == 'Open' and model.is_open('NEWCOIN_USDC_PERP')
    assert model.symbols == ['SOL_USDC', 'NEWCOIN_USDC_PERP'] and model.is_perp('NEWCOIN_USDC_PERP')
    with pytest.raises(ValueError, match='already listed'):
        model.add_market(*sim_markets.generated_market('NEWCOIN_USDC_PERP', 'again'))
    seq = model.sequence('NEWCOIN_USDC_PERP')
    events = run(model, clock, 3000)
    depth = [e for e in events if type(e) is DepthUpdate and e.symbol == 'NEWCOIN_USDC_PERP']
    assert depth and depth[0].first_id == seq + 1
    assert any(type(e) is OpenInterestUpdate for e in run(model, clock, 1, dt_us=61_000_000))


def test_a_closed_market_freezes_and_reopens_where_it_stopped():
    model, clock = synthetic_model(5)
    symbol = 'SYN003_USDC_PERP'
    model.watch_depth_window(symbol, 200)
    model.watch_kline(symbol, '1s')
    run(model, clock, 2000)
    seq = model.sequence(symbol)
    while model.sequence(symbol) == seq:     # an update of the symbol inside an open 200 ms window
        model.step()
    model.drain()
    info = model.close_market(symbol)
    flushed = model.drain()
    assert info['orderBookState'] == 'Closed' and not model.is_open(symbol)
    assert [m['orderBookState'] for m in model.markets() if m['symbol'] == symbol] == ['Closed'], 'still listed'
    assert [(type(e), e.symbol, e.window_ms, e.last_id) for e in flushed] == [
        (DepthUpdate, symbol, 200, model.sequence(symbol))], 'the pending window goes out at the close'
    with pytest.raises(ValueError, match='already closed'):
        model.close_market(symbol)
    seq, trades, book = model.sequence(symbol), model.trade_count(symbol), model.book_snapshot(symbol)

    events = run(model, clock, 5000, dt_us=2000)
    assert symbol not in symbols_of(events), 'no event of any kind from a closed market'
    assert len(symbols_of(events)) == 5, 'the others trade on'
    assert model.sequence(symbol) == seq and model.trade_count(symbol) == trades
    assert model.book_snapshot(symbol) == book, 'a frozen book'
    assert model.book_snapshot(symbol, 5).sequence == seq

    assert model.reopen_market(symbol)['orderBookState'] == 'Open' and model.is_open(symbol)
    with pytest.raises(ValueError, match='already open'):
        model.reopen_market(symbol)
    events = run(model, clock, 3000)
    depth = [e for e in events if type(e) is DepthUpdate and e.symbol == symbol and not e.window_ms]
    assert depth[0].first_id == seq + 1, 'the sequence carries on'
    trades_after = [e for e in events if type(e) is TradePrint and e.symbol == symbol]
    assert trades_after and trades_after[0].trade_id == model.trades(symbol)[trades].trade_id
    assert {type(e) for e in events if e.symbol == symbol} >= {DepthUpdate, TradePrint, MarkPriceUpdate}


def test_with_every_market_closed_the_model_stands_still():
    model, clock = synthetic_model(1)
    model.close_market('SOL_USDC')
    model.close_market('SYN001_USDC')
    assert model.step() == 0 and model.run_updates(100) == 0
    assert run(model, clock, 10, dt_us=2_000_000) == []
    model.reopen_market('SYN001_USDC')
    assert model.run_updates(10) >= 10


def test_unknown_markets_cannot_be_closed_or_reopened():
    model, _ = synthetic_model(0)
    for action in (model.close_market, model.reopen_market, model.is_open):
        with pytest.raises(KeyError, match='NOPE_USDC'):
            action('NOPE_USDC')


def test_the_account_refuses_orders_on_a_closed_market():
    now = [T0]
    model = MarketModel(['SOL_USDC'], seed=3, clock=lambda: now[0])
    model.run_updates(100)
    engine = AccountEngine(model, clock_us=lambda: now[0])
    order = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'}
    assert engine.place_order(KEY, order).status == 'Filled'
    model.close_market('SOL_USDC')
    model.drain()
    with pytest.raises(OrderRejected) as refused:
        engine.place_order(KEY, order)
    assert (refused.value.status, refused.value.code) == (400, 'INVALID_ORDER')
    assert 'SOL_USDC is Closed' in refused.value.message and model.drain() == []
    model.reopen_market('SOL_USDC')
    assert engine.place_order(KEY, order).status == 'Filled'


def test_the_past_kept_per_market_shrinks_with_the_number_of_markets():
    from cryptofeed.exchanges.backpack.simulator.server import _undo_limit

    assert [_undo_limit(n) for n in (1, 9, 10, 100, 509, 1009, 5009)] == [
        50_000, 50_000, 50_000, 5_000, 2_000, 2_000, 2_000]
    model = MarketModel(['SOL_USDC'], seed=1, clock=Clock(), undo_limit=2_000)
    start = model.sequence('SOL_USDC')
    model.run_updates(3_000)
    with pytest.raises(ValueError, match='older than the kept history'):
        model.book_at('SOL_USDC', start)
    assert model.book_at('SOL_USDC', model.sequence('SOL_USDC') - 1_500).sequence == model.sequence('SOL_USDC') - 1_500


# ------------------------------------------------------------------------------------ REST token bucket

def test_the_bucket_gives_a_burst_then_one_request_per_token():
    now = [100.0]
    limit = RestRateLimit(4, lambda: now[0])
    assert [limit.take('a') for _ in range(4)] == [None] * 4
    assert limit.take('a') == 1 and limit.refused == 1
    assert limit.take('b') is None, 'buckets are per client'
    now[0] += 0.25
    assert limit.take('a') is None and limit.take('a') == 1
    now[0] += 10
    assert [limit.take('a') for _ in range(5)] == [None] * 4 + [1], 'refilled up to the burst only'
    assert limit.refused == 3


def test_a_slow_bucket_asks_for_the_whole_wait():
    now = [0.0]
    limit = RestRateLimit(0.25, lambda: now[0])
    assert limit.take('a') is None, 'a burst of at least one'
    assert limit.take('a') == 4
    now[0] += 3.5
    assert limit.take('a') == 1
    now[0] += 0.5
    assert limit.take('a') is None


def test_idle_buckets_are_forgotten():
    now = [0.0]
    limit = RestRateLimit(10, lambda: now[0])
    for i in range(RestRateLimit._PRUNE_AT):
        limit.take(f'10.0.{i // 256}.{i % 256}')
    now[0] += 5
    limit.take('late-1')
    limit.take('late-2')
    assert set(limit._buckets) == {'late-1', 'late-2'}


@pytest.mark.parametrize('rate', [0, -1, float('nan'), float('inf'), '5', True, None])
def test_a_bad_rest_rate_limit_is_refused(rate):
    with pytest.raises(ValueError, match='rest_rate_limit must be a number of requests per second > 0'):
        RestRateLimit(rate, lambda: 0.0)


# ------------------------------------------------------------------------------------ the CLI and its page

def test_every_cli_option_is_in_the_documented_table():
    from pathlib import Path

    from cryptofeed.exchanges.backpack.simulator.__main__ import build_parser

    page = (Path(__file__).resolve().parents[2] / 'docs' / 'exchanges' / 'backpack.md').read_text()
    table = page[page.index('### Command-line options'):page.index('\n## Configuration')]
    documented = [line.split('`')[1].split()[0] for line in table.splitlines() if line.startswith('| `--')]
    options = [action.option_strings[-1] for action in build_parser()._actions if action.option_strings
               and action.option_strings[-1] != '--help']
    assert documented == options
    args = build_parser().parse_args(['--synthetic-markets', '300', '--rest-rate-limit', '2.5',
                                      '--max-streams-per-connection', '50'])
    assert (args.synthetic_markets, args.rest_rate_limit, args.max_streams_per_connection) == (300, 2.5, 50)
    defaults = build_parser().parse_args([])
    assert (defaults.synthetic_markets, defaults.rest_rate_limit, defaults.max_streams_per_connection) == \
        (0, None, None)
