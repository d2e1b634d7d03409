"""The simulator's account model (simulator/account.py), driven synchronously.

Most tests use ``FakeMarket``, a hand-written book with exact levels, so that every fill,
fee and balance can be computed by hand; one test runs the real ``MarketModel`` to check the
engine against the truth log.
"""
from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from cryptofeed.exchanges.backpack.simulator import markets
from cryptofeed.exchanges.backpack.simulator.account import (
    BALANCE_UPDATE, ORDER_UPDATE, POSITION_UPDATE, AccountEngine, FeeSchedule, OrderRejected, fill_to_rest,
    fmt, naive_utc, order_to_history, order_to_rest,
)
from cryptofeed.exchanges.backpack.simulator.market import Fill, MarketModel
from tests.conftest import load_fixture

KEY = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
KEY2 = 'AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI='
T0 = 1_788_000_000_000_000

RECORDED = load_fixture('sim_private_recorded.json')
ORDER_KEYS_ALWAYS = {'e', 'E', 'T', 's', 'i', 'S', 'o', 'f', 'X', 'z', 'Z', 't', 'V', 'O', 'r'}
FILL_KEYS = {'l', 'L', 'm', 'n', 'N'}
POSITION_KEYS = set(RECORDED['position_update_opened'])


class FakeMarket:
    """A static book per symbol: levels are (price, quantity), bids best first, asks best first."""

    def __init__(self, books, marks=None):
        self.books = {s: {'bids': [(D(p), D(q)) for p, q in b['bids']], 'asks': [(D(p), D(q)) for p, q in b['asks']]}
                      for s, b in books.items()}
        self.marks = {s: D(m) for s, m in (marks or {}).items()}
        self.trade_id = 100
        self.now = T0
        self.calls = []

    def has_symbol(self, symbol):
        return symbol in self.books

    def market(self, symbol):
        return markets.market_object(symbol)

    def is_perp(self, symbol):
        return symbol.endswith('_PERP')

    def tick_size(self, symbol):
        return D(self.market(symbol)['filters']['price']['tickSize'])

    def step_size(self, symbol):
        return D(self.market(symbol)['filters']['quantity']['stepSize'])

    def best_bid(self, symbol):
        bids = self.books[symbol]['bids']
        return bids[0][0] if bids else None

    def best_ask(self, symbol):
        asks = self.books[symbol]['asks']
        return asks[0][0] if asks else None

    def mark_price(self, symbol):
        if symbol in self.marks:
            return self.marks[symbol]
        return (self.best_bid(symbol) + self.best_ask(symbol)) / 2

    def book_snapshot(self, symbol, limit=None):
        book = self.books[symbol]
        return SimpleNamespace(bids=list(book['bids']), asks=list(book['asks']))

    def execute_taker(self, symbol, side, quantity, limit_price, quote_quantity=None):
        self.calls.append((symbol, side, quantity, limit_price, quote_quantity))
        levels = self.books[symbol]['asks' if side == 'Bid' else 'bids']
        fills, remaining = [], quantity
        while levels and remaining > 0:
            price, size = levels[0]
            if limit_price is not None and (price > limit_price if side == 'Bid' else price < limit_price):
                break
            take = min(size, remaining)
            self.trade_id += 1
            self.now += 1000
            fills.append(Fill(price, take, self.trade_id, self.now))
            remaining -= take
            if take == size:
                levels.pop(0)
            else:
                levels[0] = (price, size - take)
        return fills


def spot_book():
    return {'bids': [('99.9', '5'), ('99.8', '10')], 'asks': [('100.1', '2'), ('100.2', '3'), ('100.5', '50')]}


def perp_book():
    return {'bids': [('99.9', '50')], 'asks': [('100', '10'), ('101', '50')]}


@pytest.fixture
def market():
    return FakeMarket({'SOL_USDC': spot_book(), 'SOL_USDC_PERP': perp_book()}, marks={'SOL_USDC_PERP': '100.5'})


@pytest.fixture
def events():
    return []


@pytest.fixture
def engine(market, events):
    clock = iter(range(T0, T0 + 10_000_000, 1000))
    return AccountEngine(market, clock_us=lambda: next(clock), listener=events.append)


def order_frames(events, key=KEY):
    return [e.data for e in events if e.stream == ORDER_UPDATE and e.api_key == key]


def balance_frames(events, asset=None):
    return [e.data for e in events if e.stream == BALANCE_UPDATE and (asset is None or e.data['a'] == asset)]


def position_frames(events):
    return [e.data for e in events if e.stream == POSITION_UPDATE]


def cap(engine, asset, key=KEY):
    row = engine.capital(key)[asset]
    return D(row['available']), D(row['locked'])


def limit(side, price, qty, symbol='SOL_USDC', **extra):
    return {'symbol': symbol, 'side': side, 'orderType': 'Limit', 'price': price, 'quantity': qty, **extra}


def market_order(side, qty=None, symbol='SOL_USDC', **extra):
    payload = {'symbol': symbol, 'side': side, 'orderType': 'Market', **extra}
    if qty is not None:
        payload['quantity'] = qty
    return payload


# ------------------------------------------------------------------ accounts and shapes


def test_new_account_is_funded_with_default_balances(engine):
    assert engine.capital(KEY) == {
        'BTC': {'available': '10', 'locked': '0', 'staked': '0'},
        'ETH': {'available': '100', 'locked': '0', 'staked': '0'},
        'SOL': {'available': '1000', 'locked': '0', 'staked': '0'},
        'USDC': {'available': '100000', 'locked': '0', 'staked': '0'},
    }


def test_starting_balances_are_configurable(market):
    engine = AccountEngine(market, clock_us=lambda: T0, starting_balances={'USDC': '120'})
    assert engine.capital(KEY) == {'USDC': {'available': '120', 'locked': '0', 'staked': '0'}}
    with pytest.raises(ValueError):
        AccountEngine(market, clock_us=lambda: T0, starting_balances={'USDC': '-1'})


def test_fmt_and_naive_utc():
    assert fmt(D('100.00')) == '100'
    assert fmt(D('1E+2')) == '100'
    assert fmt(D('-0.0')) == '0'
    assert fmt(D('0.000001')) == '0.000001'
    assert naive_utc(1753637940092123) == '2025-07-27T17:39:00.092'


# ------------------------------------------------------------------ resting limit orders


def test_resting_limit_bid_locks_quote_and_emits_accepted(engine, events):
    order = engine.place_order(KEY, limit('Bid', '99.5', '2', clientId=7))
    assert order.status == 'New' and order.id.isdigit()
    (accepted,) = order_frames(events)
    assert set(accepted) == ORDER_KEYS_ALWAYS | {'c', 'q', 'Q', 'p'}
    assert accepted['e'] == 'orderAccepted' and accepted['X'] == 'New'
    assert accepted['o'] == 'LIMIT' and accepted['S'] == 'Bid' and accepted['f'] == 'GTC'
    assert accepted['c'] == 7 and accepted['i'] == order.id and accepted['t'] is None
    assert (accepted['p'], accepted['q'], accepted['Q'], accepted['z'], accepted['Z']) == ('99.5', '2', '199', '0', '0')
    assert isinstance(accepted['E'], int) and isinstance(accepted['T'], int)
    assert accepted['O'] == 'USER' and accepted['V'] == 'RejectTaker' and accepted['r'] is False
    assert list(accepted) == sorted(accepted)
    (bal,) = balance_frames(events)
    assert bal == {'A': '99801', 'E': bal['E'], 'L': '199', 'S': '0', 'T': bal['T'], 'a': 'USDC', 'e': 'balanceUpdate'}
    assert cap(engine, 'USDC') == (D('99801'), D('199'))
    assert engine.market.calls == []


def test_accepted_frame_has_the_recorded_key_set_and_types(engine, events):
    engine.place_order(KEY, limit('Ask', '100.4', '20', postOnly=True))
    frame = order_frames(events)[0]
    recorded = RECORDED['order_update_accepted']
    assert set(frame) == set(recorded)
    assert {k: type(v) for k, v in frame.items()} == {k: type(v) for k, v in recorded.items()}


def test_cancel_releases_the_lock(engine, events):
    order = engine.place_order(KEY, limit('Ask', '101', '3'))
    assert cap(engine, 'SOL') == (D('997'), D('3'))
    cancelled = engine.cancel_order(KEY, 'SOL_USDC', order_id=order.id)
    assert cancelled.status == 'Cancelled'
    frame = order_frames(events)[-1]
    assert frame['e'] == 'orderCancelled' and frame['X'] == 'Cancelled' and 'R' not in frame
    assert set(frame) == set(RECORDED['order_update_cancelled']) - {'y'}
    assert balance_frames(events, 'SOL')[-1]['A'] == '1000'
    assert cap(engine, 'SOL') == (D('1000'), D('0'))
    with pytest.raises(OrderRejected) as info:
        engine.cancel_order(KEY, 'SOL_USDC', order_id=order.id)
    assert (info.value.status, info.value.code) == (404, 'RESOURCE_NOT_FOUND')


def test_cancel_by_client_id_and_cancel_all(engine):
    engine.place_order(KEY, limit('Bid', '99', '1', clientId=11))
    engine.place_order(KEY, limit('Bid', '98', '1', clientId=12))
    engine.place_order(KEY, limit('Bid', '97', '1'))
    assert engine.cancel_order(KEY, 'SOL_USDC', client_id=12).price == D('98')
    assert [o.price for o in engine.open_orders(KEY)] == [D('99'), D('97')]
    assert engine.cancel_all(KEY, 'SOL_USDC', 'ConditionalOrder') == []
    assert len(engine.cancel_all(KEY, 'SOL_USDC')) == 2
    assert engine.open_orders(KEY) == [] and cap(engine, 'USDC') == (D('100000'), D('0'))


def test_find_open_order_rules(engine):
    order = engine.place_order(KEY, limit('Bid', '99', '1'))
    assert engine.find_open_order(KEY, 'SOL_USDC', order_id=order.id) is order
    with pytest.raises(OrderRejected) as info:
        engine.find_open_order(KEY, 'SOL_USDC_PERP', order_id=order.id)
    assert info.value.status == 404
    with pytest.raises(OrderRejected) as info:
        engine.find_open_order(KEY, 'SOL_USDC')
    assert info.value.code == 'INVALID_CLIENT_REQUEST'
    with pytest.raises(OrderRejected):
        engine.find_open_order(KEY2, 'SOL_USDC', order_id=order.id)


# ------------------------------------------------------------------ taker execution (spot)


def test_market_buy_walks_levels_pays_fee_in_base(engine, events, market):
    order = engine.place_order(KEY, market_order('Bid', '4'))
    assert order.status == 'Filled'
    frames = order_frames(events)
    assert [f['e'] for f in frames] == ['orderAccepted', 'orderFill', 'orderFill']
    assert [f['X'] for f in frames] == ['New', 'PartiallyFilled', 'Filled']
    first, last = frames[1], frames[2]
    assert set(first) == ORDER_KEYS_ALWAYS | FILL_KEYS | {'q', 'Q'}
    assert first['o'] == 'MARKET' and first['m'] is False and first['N'] == 'SOL'
    assert (first['l'], first['L'], first['z'], first['Z']) == ('2', '100.1', '2', '200.2')
    assert (last['l'], last['L'], last['z'], last['Z']) == ('2', '100.2', '4', '400.6')
    assert first['n'] == '0.001' and isinstance(first['t'], int) and last['t'] == first['t'] + 1
    assert frames[0]['Q'] == '400.4'          # the estimate at placement: 4 x best ask 100.1
    assert market.calls == [('SOL_USDC', 'Bid', D('4'), D('100.1'), None),
                            ('SOL_USDC', 'Bid', D('2'), D('100.2'), None)]
    assert cap(engine, 'USDC') == (D('100000') - D('400.6'), D('0'))
    assert cap(engine, 'SOL') == (D('1000') + D('4') - D('0.002'), D('0'))
    assert balance_frames(events, 'SOL')[-1]['A'] == '1003.998'


def test_market_sell_pays_fee_in_quote(engine, events):
    engine.place_order(KEY, market_order('Ask', '6'))
    fills = [f for f in order_frames(events) if f['e'] == 'orderFill']
    assert [(f['L'], f['l'], f['N']) for f in fills] == [('99.9', '5', 'USDC'), ('99.8', '1', 'USDC')]
    notional = D('99.9') * 5 + D('99.8')
    assert cap(engine, 'USDC')[0] == D('100000') + notional - notional * D('0.0005')
    assert cap(engine, 'SOL')[0] == D('994')


def test_quote_quantity_market_buy(engine, events):
    order = engine.place_order(KEY, market_order('Bid', quoteQuantity='300'))
    assert order.status == 'Filled'
    assert order.executed_quantity == D('2.99')
    assert order.executed_quote_quantity == D('2') * D('100.1') + D('0.99') * D('100.2')
    frames = order_frames(events)
    assert 'q' not in frames[0] and frames[0]['Q'] == '300'
    rest = order_to_rest(order)
    assert rest['quantity'] is None and rest['quoteQuantity'] == '300'
    with pytest.raises(OrderRejected) as info:
        engine.place_order(KEY, market_order('Bid', quoteQuantity='0.5'))
    assert info.value.code == 'INVALID_QUANTITY'


def test_market_buy_stops_where_funds_run_out(market, events):
    # placement is checked against the touch (4 x 100.1 = 400.4); the walk costs more (400.6)
    engine = AccountEngine(market, clock_us=lambda: T0, starting_balances={'USDC': '400.5'}, listener=events.append)
    order = engine.place_order(KEY, market_order('Bid', '4'))
    assert order.status == 'Expired' and order.expiry_reason == 'InsufficientFunds'
    frames = order_frames(events)
    assert [f['e'] for f in frames] == ['orderAccepted', 'orderFill', 'orderFill', 'orderExpired']
    assert frames[-1]['R'] == 'InsufficientFunds' and frames[-1]['X'] == 'Expired'
    assert order.executed_quantity == D('3.99')
    assert cap(engine, 'USDC')[0] == D('400.5') - D('200.2') - D('1.99') * D('100.2')


def test_unfunded_order_is_rejected_without_events(engine, events):
    with pytest.raises(OrderRejected) as info:
        engine.place_order(KEY, limit('Bid', '99', '2000'))
    assert (info.value.status, info.value.code) == (400, 'INSUFFICIENT_FUNDS')
    with pytest.raises(OrderRejected) as info:
        engine.place_order(KEY, market_order('Ask', '1000.01'))
    assert info.value.code == 'INSUFFICIENT_FUNDS'
    assert events == [] and engine.account(KEY).orders == {}


def test_market_order_that_empties_the_book_expires(engine, events, market):
    order = engine.place_order(KEY, market_order('Ask', '20'))
    assert order.status == 'Expired' and order.expiry_reason == 'InsufficientLiquidity'
    assert order.executed_quantity == D('15') and market.books['SOL_USDC']['bids'] == []


def test_crossing_limit_fills_then_rests_with_correct_lock(engine, events):
    order = engine.place_order(KEY, limit('Bid', '100.2', '8'))
    assert order.status == 'PartiallyFilled' and order.executed_quantity == D('5')
    assert engine.open_orders(KEY) == [order]
    # locked: the resting 3 at the limit price; the 0.1 improvement on the first 2 was refunded
    assert cap(engine, 'USDC') == (D('100000') - D('100.1') * 2 - D('100.2') * 3 - D('100.2') * 3, D('100.2') * 3)
    assert [f['X'] for f in order_frames(events)] == ['New', 'PartiallyFilled', 'PartiallyFilled']


def test_ioc_remainder_expires_and_unlocks(engine, events):
    order = engine.place_order(KEY, limit('Bid', '100.1', '5', timeInForce='IOC'))
    assert (order.status, order.expiry_reason, order.executed_quantity) == ('Expired', 'ImmediateOrCancel', D('2'))
    expired = order_frames(events)[-1]
    assert expired['e'] == 'orderExpired' and expired['R'] == 'ImmediateOrCancel' and expired['z'] == '2'
    assert cap(engine, 'USDC') == (D('100000') - D('200.2'), D('0'))


def test_fok_unfillable_expires_without_touching_the_book(engine, events, market):
    order = engine.place_order(KEY, limit('Bid', '100.2', '6', timeInForce='FOK'))
    assert (order.status, order.expiry_reason) == ('Expired', 'FillOrKill')
    assert [f['e'] for f in order_frames(events)] == ['orderAccepted', 'orderExpired']
    assert market.calls == [] and cap(engine, 'USDC') == (D('100000'), D('0'))
    filled = engine.place_order(KEY, limit('Bid', '100.2', '5', timeInForce='FOK'))
    assert filled.status == 'Filled'


def test_post_only_that_would_take_expires(engine, events, market):
    order = engine.place_order(KEY, limit('Bid', '100.1', '1', postOnly=True))
    assert (order.status, order.expiry_reason) == ('Expired', 'PostOnlyTaker')
    frames = order_frames(events)
    assert [f['e'] for f in frames] == ['orderAccepted', 'orderExpired']
    assert frames[-1]['y'] is True and frames[-1]['R'] == 'PostOnlyTaker'
    assert market.calls == []
    resting = engine.place_order(KEY, limit('Bid', '100', '1', postOnly=True))
    assert resting.status == 'New'


# ------------------------------------------------------------------ resting fills from public trades


def test_public_trade_fills_resting_orders_in_price_time_priority(engine, events):
    first = engine.place_order(KEY, limit('Ask', '100.3', '2'))
    second = engine.place_order(KEY2, limit('Ask', '100.3', '2'))
    better = engine.place_order(KEY, limit('Ask', '100.25', '1'))
    engine.on_market_trade('SOL_USDC', D('100.3'), D('2.5'), 'Bid', 555, T0 + 5)
    assert (better.status, better.executed_quantity) == ('Filled', D('1'))
    assert (first.status, first.executed_quantity) == ('PartiallyFilled', D('1.5'))
    assert second.executed_quantity == D('0')
    fill = [f for f in order_frames(events) if f['e'] == 'orderFill'][0]
    assert fill['m'] is True and fill['t'] == 555 and fill['L'] == '100.25' and fill['T'] == T0 + 5
    assert fill['n'] == fmt(D('100.25') * D('0.0002'))
    assert cap(engine, 'SOL') == (D('997'), D('0.5'))


def test_trades_that_do_not_reach_the_order_leave_it_alone(engine):
    order = engine.place_order(KEY, limit('Bid', '99', '1'))
    engine.on_market_trade('SOL_USDC', D('99.5'), D('10'), 'Ask', 1, T0)
    engine.on_market_trade('SOL_USDC', D('98'), D('10'), 'Bid', 2, T0)
    assert order.status == 'New'
    engine.on_market_trade('SOL_USDC', D('98.5'), D('10'), 'Ask', 3, T0)
    assert order.status == 'Filled' and order.executed_quote_quantity == D('99')


def test_own_taker_trades_do_not_fill_resting_orders(engine, market):
    resting = engine.place_order(KEY, limit('Ask', '100.2', '1'))
    engine.place_order(KEY2, market_order('Bid', '3'))
    for trade_id in (market.trade_id - 1, market.trade_id):
        engine.on_market_trade('SOL_USDC', D('100.2'), D('1'), 'Bid', trade_id, T0)
    assert resting.status == 'New'


# ------------------------------------------------------------------ perpetuals


def test_perp_position_lifecycle(engine, events):
    engine.place_order(KEY, market_order('Bid', '4', symbol='SOL_USDC_PERP'))
    opened = position_frames(events)[-1]
    assert set(opened) == POSITION_KEYS
    assert opened['e'] == 'positionOpened' and isinstance(opened['i'], int)
    assert (opened['q'], opened['B'], opened['M'], opened['f'], opened['l']) == ('4', '100', '100.5', '0.02', '0')
    assert opened['b'] == fmt(D('100') + D('400') * D('0.0005') / 4)
    assert opened['P'] == '2' and opened['p'] == '0' and opened['n'] == fmt(D('4') * D('100.5'))
    fill = [f for f in order_frames(events) if f['e'] == 'orderFill'][0]
    assert fill['N'] == 'USDC' and fill['n'] == '0.2'
    assert cap(engine, 'USDC')[0] == D('99999.8')

    engine.place_order(KEY, market_order('Ask', '1', symbol='SOL_USDC_PERP'))
    adjusted = position_frames(events)[-1]
    assert adjusted['e'] == 'positionAdjusted' and adjusted['q'] == '3' and adjusted['i'] == opened['i']
    assert adjusted['p'] == fmt(D('-0.1'))
    engine.place_order(KEY, market_order('Ask', '3', symbol='SOL_USDC_PERP'))
    closed = position_frames(events)[-1]
    assert closed['e'] == 'positionClosed' and closed['q'] == '0'
    assert closed['p'] == fmt(D('-0.1') * 4)
    assert engine.positions(KEY) == [] and engine.position_snapshot_frames(KEY) == []
    fees = D('400') * D('0.0005') + D('99.9') * 4 * D('0.0005')
    assert cap(engine, 'USDC')[0] == D('100000') - fees - D('0.4')


def test_position_snapshot_and_rest_shape(engine):
    engine.place_order(KEY, market_order('Ask', '2', symbol='SOL_USDC_PERP'))
    (snap,) = engine.position_snapshot_frames(KEY)
    assert 'e' not in snap and set(snap) == POSITION_KEYS - {'e'}
    assert snap['q'] == '-2' and snap['P'] == fmt((D('100.5') - D('99.9')) * -2)
    assert engine.position_snapshot_frames(KEY, 'SOL_USDC') == []
    (row,) = engine.positions(KEY)
    assert set(row) == set(RECORDED['position_rest'])
    assert row['netQuantity'] == '-2' and row['netCost'] == fmt(D('-199.8')) and row['positionId'].isdigit()
    assert row['imfFunction'] == {'type': 'sqrt', 'base': '0.02', 'factor': '0.00006'}


def test_position_flip_keeps_the_id_and_resets_entry(engine, events):
    engine.place_order(KEY, market_order('Ask', '2', symbol='SOL_USDC_PERP'))
    engine.place_order(KEY, market_order('Bid', '5', symbol='SOL_USDC_PERP'))
    opened, flipped = position_frames(events)
    assert flipped['e'] == 'positionAdjusted' and flipped['i'] == opened['i']
    assert flipped['q'] == '3' and flipped['B'] == '100'
    assert flipped['p'] == fmt((D('99.9') - D('100')) * 2)


def test_perp_limit_locks_margin_and_exposure_counts_open_orders(engine):
    engine.place_order(KEY, limit('Bid', '99', '10', symbol='SOL_USDC_PERP'))
    assert cap(engine, 'USDC') == (D('100000') - D('19.8'), D('19.8'))
    engine.place_order(KEY, market_order('Bid', '1', symbol='SOL_USDC_PERP'))
    (row,) = engine.positions(KEY)
    assert row['netQuantity'] == '1' and row['netExposureQuantity'] == '11'


def test_reduce_only_rules(engine, events):
    order = engine.place_order(KEY, market_order('Ask', '1', symbol='SOL_USDC_PERP', reduceOnly=True))
    assert (order.status, order.expiry_reason) == ('Expired', 'ReduceOnlyNotReduced')
    engine.place_order(KEY, market_order('Bid', '2', symbol='SOL_USDC_PERP'))
    order = engine.place_order(KEY, market_order('Ask', '5', symbol='SOL_USDC_PERP', reduceOnly=True))
    assert (order.status, order.executed_quantity, order.expiry_reason) == ('Expired', D('2'), 'ReduceOnlyNotReduced')
    assert engine.positions(KEY) == []
    assert order_frames(events)[-1]['r'] is True


def test_insufficient_margin(market):
    engine = AccountEngine(market, clock_us=lambda: T0, starting_balances={'USDC': '10'})
    with pytest.raises(OrderRejected) as info:
        engine.place_order(KEY, market_order('Bid', '10', symbol='SOL_USDC_PERP'))
    assert (info.value.status, info.value.code) == (400, 'INSUFFICIENT_MARGIN')


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize('payload, code, words', [
    (limit('Bid', '99.123', '1'), 'INVALID_PRICE', 'decimal too long'),
    (limit('Bid', '99', '1.001'), 'INVALID_QUANTITY', 'decimal too long'),
    (limit('Bid', '99', '0'), 'INVALID_QUANTITY', 'greater than zero'),
    (limit('Bid', 'abc', '1'), 'INVALID_PRICE', 'decimal'),
    (limit('Bid', '99', '1e40'), 'INVALID_QUANTITY', 'out of range'),
    (limit('Bid', '99', 'NaN'), 'INVALID_QUANTITY', 'finite'),
    (limit('Bid', '9999', '1'), 'INVALID_PRICE', 'too far'),
    (limit('Bid', '99', '1', symbol='kPEPE_USDC_PERP'), 'INVALID_SYMBOL', 'kPEPE'),
    ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'quantity': '1'},
     'INVALID_PRICE', 'price is required'),
    ({'symbol': 'SOL_USDC', 'side': 'Buy', 'orderType': 'Limit', 'price': '99', 'quantity': '1'},
     'INVALID_ORDER', 'Bid or Ask'),
    ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Stop'}, 'INVALID_ORDER', 'Limit or Market'),
    ({'side': 'Bid', 'orderType': 'Market', 'quantity': '1'}, 'INVALID_CLIENT_REQUEST', 'symbol'),
    (market_order('Bid'), 'INVALID_ORDER', 'exactly one'),
    (market_order('Bid', '1', quoteQuantity='10'), 'INVALID_ORDER', 'exactly one'),
    (limit('Bid', '99', '1', clientId=2 ** 32), 'INVALID_ORDER', 'clientId'),
    (limit('Bid', '99', '1', clientId='7'), 'INVALID_ORDER', 'clientId'),
    (limit('Bid', '99', '1', timeInForce='GTD'), 'INVALID_ORDER', 'timeInForce'),
    (limit('Bid', '99', '1', postOnly=True, timeInForce='IOC'), 'INVALID_ORDER', 'postOnly'),
    (market_order('Bid', '1', postOnly=True), 'INVALID_ORDER', 'postOnly'),
    (limit('Bid', '99', '1', reduceOnly=True), 'INVALID_ORDER', 'perpetual'),
    (limit('Bid', '99', '1', triggerPrice='98'), 'NOT_IMPLEMENTED', 'triggerPrice'),
    (limit('Bid', '99', '1', selfTradePrevention='Nope'), 'INVALID_ORDER', 'selfTradePrevention'),
])
def test_invalid_payloads_are_rejected_with_a_reason(engine, events, payload, code, words):
    with pytest.raises(OrderRejected) as info:
        engine.place_order(KEY, payload)
    assert info.value.status == 400 and info.value.code == code
    assert words in info.value.message
    assert events == []


def test_numbers_and_trailing_zeros_are_accepted(engine):
    order = engine.place_order(KEY, {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': D('99.50'),
                                     'quantity': 1})
    assert order.price == D('99.5') and order.quantity == 1


# ------------------------------------------------------------------ REST shapes


def test_rest_order_objects_have_the_recorded_keys(engine):
    resting = engine.place_order(KEY, limit('Ask', '100.4', '20', postOnly=True))
    rest = order_to_rest(resting)
    assert set(rest) == set(RECORDED['order_limit_rest'])
    assert {k: type(v) for k, v in rest.items() if v is not None} == \
        {k: type(v) for k, v in RECORDED['order_limit_rest'].items() if v is not None}
    assert 'systemOrderType' not in rest  # GET /api/v1/orders lists this very shape (backpack-api.md 5)
    filled = engine.place_order(KEY, market_order('Bid', '1'))
    rest = order_to_rest(filled)
    assert set(rest) == set(RECORDED['order_market_rest'])
    assert (rest['status'], rest['executedQuantity'], rest['executedQuoteQuantity']) == ('Filled', '1', '100.1')
    history = order_to_history(resting)
    assert set(history) == set(RECORDED['order_history_row'])
    assert (history['slippageTolerance'], history['slippageToleranceType']) == (None, None)
    assert history['createdAt'] == naive_utc(resting.created_us)


def test_slippage_tolerance_orders_are_refused_as_not_implemented(engine):
    for extra in ({'slippageTolerance': '5'}, {'slippageToleranceType': 'Percent'}):
        with pytest.raises(OrderRejected, match='NOT_IMPLEMENTED.*slippageTolerance'):
            engine.place_order(KEY, market_order('Bid', '1', **extra))


def test_fill_history_rows_and_filters(engine):
    engine.place_order(KEY, market_order('Bid', '3', clientId=9))
    engine.place_order(KEY, market_order('Ask', '1', symbol='SOL_USDC_PERP'))
    fills = engine.fill_history(KEY)
    assert [f.symbol for f in fills] == ['SOL_USDC_PERP', 'SOL_USDC', 'SOL_USDC']
    row = fill_to_rest(fills[-1])
    assert set(row) == set(RECORDED['fill_history_row'])
    assert row['clientId'] == 9 and row['feeSymbol'] == 'SOL' and row['isMaker'] is False
    assert isinstance(row['tradeId'], int) and len(row['timestamp']) == 23
    assert [f.symbol for f in engine.fill_history(KEY, market_type='PERP')] == ['SOL_USDC_PERP']
    assert len(engine.fill_history(KEY, symbol='SOL_USDC', ascending=True)) == 2
    last_ms = fills[0].ts_us // 1000
    assert engine.fill_history(KEY, from_ms=last_ms + 1) == []
    assert len(engine.fill_history(KEY, to_ms=last_ms)) == 2


def test_batch_reports_each_item(engine):
    results = engine.place_batch(KEY, [limit('Bid', '99', '1'), limit('Bid', '99.001', '1')])
    assert results[0]['operation'] == 'Ok' and results[0]['status'] == 'New'
    assert results[1] == {'code': 'INVALID_PRICE', 'message': results[1]['message'], 'operation': 'Err'}


def test_same_calls_give_the_same_events():
    def run():
        market = FakeMarket({'SOL_USDC': spot_book(), 'SOL_USDC_PERP': perp_book()}, marks={'SOL_USDC_PERP': '100'})
        out = []
        clock = iter(range(T0, T0 + 10_000_000, 1000))
        engine = AccountEngine(market, clock_us=lambda: next(clock), listener=out.append)
        engine.place_order(KEY, limit('Ask', '100.3', '2'))
        engine.place_order(KEY, market_order('Bid', '4', symbol='SOL_USDC_PERP'))
        engine.on_market_trade('SOL_USDC', D('100.3'), D('1'), 'Bid', 9, T0 + 1)
        return out
    assert run() == run()


def test_fee_schedule_is_configurable(market, events):
    engine = AccountEngine(market, clock_us=lambda: T0, fees=FeeSchedule(maker=D('0'), taker=D('0.001')),
                           listener=events.append)
    engine.place_order(KEY, market_order('Ask', '1'))
    assert [f['n'] for f in order_frames(events) if f['e'] == 'orderFill'] == [fmt(D('99.9') * D('0.001'))]


# ------------------------------------------------------------------ against the real market model


def test_engine_trades_against_the_market_model_truth_log():
    now = [T0]
    model = MarketModel(['SOL_USDC', 'SOL_USDC_PERP'], seed=3, clock=lambda: now[0])
    model.run_updates(200)
    model.drain()
    out = []
    engine = AccountEngine(model, clock_us=lambda: now[0], listener=out.append)
    before = len(model.trades('SOL_USDC'))
    order = engine.place_order(KEY, market_order('Bid', '30'))
    printed = model.trades('SOL_USDC')[before:]
    fills = [e.data for e in out if e.stream == ORDER_UPDATE and e.data['e'] == 'orderFill']
    assert [(f['t'], f['L'], f['l']) for f in fills] == [(t.trade_id, fmt(t.price), fmt(t.quantity)) for t in printed]
    assert order.executed_quantity == sum((t.quantity for t in printed), D(0)) == D('30')
    for event in model.drain():
        if type(event).__name__ == 'TradePrint':
            engine.on_market_trade(event.symbol, event.price, event.quantity, 'Bid', event.trade_id, event.engine_us)
    assert order.status == 'Filled'
    perp = engine.place_order(KEY, market_order('Ask', '1', symbol='SOL_USDC_PERP'))
    assert perp.status == 'Filled' and engine.positions(KEY)[0]['netQuantity'] == '-1'


def test_event_times_never_go_backwards(market, events):
    clock = iter([T0 + 500, T0 + 600, T0 + 700])
    engine = AccountEngine(market, clock_us=lambda: next(clock), listener=events.append)
    engine.place_order(KEY, limit('Bid', '100.2', '10', timeInForce='IOC'))
    times = [f['T'] for f in order_frames(events)]
    assert [f['e'] for f in order_frames(events)] == ['orderAccepted', 'orderFill', 'orderFill', 'orderExpired']
    assert times == sorted(times) and times[-1] == times[-2] == T0 + 2000
