"""Adapters: typed Backpack payloads -> cryptofeed objects, field by field, on fixture frames."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import msgspec
import pytest
from cryptofeed.exchanges.backpack.core.defines import (
    BOTH, BUY, CANCELLED, EXPIRED, FAILED, FILLED, LIMIT, LONG, MAKER, MARKET, OPEN, PARTIAL, PENDING, SELL,
    SHORT, TAKER, TRIGGER_LIMIT, TRIGGER_MARKET,
)
from cryptofeed.exchanges.backpack.core.records import Balance, Candle, Fill, Funding, Index, Liquidation, OpenInterest, OrderInfo, Position
from cryptofeed.exchanges.backpack.core.records import Ticker, Trade

import cryptofeed.exchanges.backpack as backpack
from cryptofeed.exchanges.backpack.core.wire import parse as ad
from cryptofeed.exchanges.backpack.core.wire import messages as bp
from tests.conftest import load_fixture

RECEIPT = 1800000000.25


def payload(fixture: str, case: str):
    data = load_fixture(fixture)[case]['data']
    kind = {'ws_positionUpdate.json': 'account.positionUpdate'}.get(fixture)
    if kind and 'e' not in data:
        return bp.PAYLOAD_DECODERS[kind].decode(json.dumps(data))
    return bp.ENVELOPE_DECODER_LAX.decode(json.dumps(load_fixture(fixture)[case])).data


def test_exchange_id_is_the_package_constant():
    assert ad.EXCHANGE == backpack.BACKPACK


# -- trades -------------------------------------------------------------------------------------

def test_trade_documented_buyer_maker_is_a_sell():
    t = ad.parse_trade(payload('ws_trade.json', 'documented'), 'SOL-USDC', RECEIPT)
    assert type(t) is Trade
    assert t.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'SOL-USDC', 'side': SELL, 'amount': Decimal('0.07'),
                           'price': Decimal('218.50'), 'id': '341399899', 'type': None,
                           'timestamp': 1736186248.744398}
    assert t.raw is None


def test_trade_buyer_taker_is_a_buy_and_dotted_symbols_pass_through():
    t = ad.parse_trade(payload('ws_trade.json', 'taker_bought'), 'SOL-USDC', RECEIPT)
    assert (t.side, t.amount, t.price, t.id) == (BUY, Decimal('1.25'), Decimal('218.51'), '341399900')
    d = ad.parse_trade(payload('ws_trade.json', 'dotted_symbol'), 'SPCX.US-USDC', RECEIPT)
    assert (d.symbol, d.id, d.timestamp) == ('SPCX.US-USDC', '1042', 1788367430.548001)


def test_trade_keeps_raw_only_when_given():
    msg = payload('ws_trade.json', 'documented')
    raw = ad.raw_payload(msg)
    expected = dict(load_fixture('ws_trade.json')['documented']['data'])
    del expected['a'], expected['b'], expected['s'], expected['E']  # not decoded (messages.Trade)
    assert raw == expected
    assert ad.parse_trade(msg, 'SOL-USDC', RECEIPT, raw=raw).raw is raw


# -- ticker, candles, funding, index, open interest, liquidations ------------------------------

def test_book_ticker_best_bid_and_ask():
    t = ad.parse_book_ticker(payload('ws_bookTicker.json', 'documented'), 'SOL-USDC', RECEIPT)
    assert type(t) is Ticker
    assert t.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'SOL-USDC', 'bid': Decimal('98.96'),
                           'ask': Decimal('98.97'), 'timestamp': 1788367430.246081}


def test_kline_documented_open_candle():
    c = ad.parse_kline(payload('ws_kline.json', 'documented'), 'ETH-USDC', '2h', RECEIPT)
    assert type(c) is Candle
    assert c.to_dict() == {
        'exchange': 'BACKPACK', 'symbol': 'ETH-USDC', 'start': 1754517600.0, 'stop': 1754524800.0, 'interval': '2h',
        'trades': 255, 'open': Decimal('3670.150000000'), 'close': Decimal('3680.520000000'),
        'high': Decimal('3681.370000000'), 'low': Decimal('3667.650000000'), 'volume': Decimal('62.2621000'),
        'closed': False, 'timestamp': 1754519557.526056}


def test_kline_closed_flag_and_one_minute_bounds():
    c = ad.parse_kline(payload('ws_kline.json', 'closed'), 'SOL-USDC', '1m', RECEIPT)
    assert c.closed is True
    assert (c.start, c.stop, c.stop - c.start) == (1788367380.0, 1788367440.0, 60.0)
    assert (c.open, c.high, c.low, c.close, c.trades) == (Decimal('98.99'), Decimal('99.01'), Decimal('98.95'),
                                                          Decimal('98.97'), 17)


def test_kline_without_trades_emits_nothing():
    assert ad.parse_kline(payload('ws_kline.json', 'no_trades'), 'SPCX.US-USDC', '1m', RECEIPT) is None


def test_kline_with_aware_times_is_not_shifted():
    msg = payload('ws_kline.json', 'closed')
    aware = bp.PAYLOAD_DECODERS['kline'].decode(
        json.dumps(dict(load_fixture('ws_kline.json')['closed']['data'], t='2026-09-02T18:43:00+02:00')))
    assert ad.parse_kline(aware, 'SOL-USDC', '1m', RECEIPT).start == ad.parse_kline(msg, 'SOL-USDC', '1m',
                                                                                     RECEIPT).start


def test_funding_from_mark_price():
    f = ad.parse_funding(payload('ws_markPrice.json', 'documented'), 'SOL-USDC-PERP', RECEIPT)
    assert type(f) is Funding
    assert f.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'SOL-USDC-PERP', 'mark_price': Decimal('98.94'),
                           'rate': Decimal('0.0000125'), 'next_funding_time': 1788368400.0, 'predicted_rate': None,
                           'timestamp': 1788367430.421396}


def test_funding_on_prediction_market_has_no_rate_nor_next_time():
    f = ad.parse_funding(payload('ws_markPrice.json', 'prediction_market'), 'X', RECEIPT)
    assert (f.mark_price, f.rate, f.next_funding_time) == (Decimal('0.42'), None, None)


def test_index_from_mark_price_and_absent_on_prediction_markets():
    i = ad.parse_index(payload('ws_markPrice.json', 'documented'), 'SOL-USDC-PERP', RECEIPT)
    assert type(i) is Index
    assert i.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'SOL-USDC-PERP', 'price': Decimal('98.94998504'),
                           'timestamp': 1788367430.421396}
    assert ad.parse_index(payload('ws_markPrice.json', 'prediction_market'), 'X', RECEIPT) is None


def test_open_interest_uses_event_time():
    oi = ad.parse_open_interest(payload('ws_openInterest.json', 'documented'), 'SOL-USDC-PERP', RECEIPT)
    assert type(oi) is OpenInterest
    assert oi.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'SOL-USDC-PERP', 'open_interest': Decimal('100'),
                            'timestamp': 1694687965.941}


@pytest.mark.parametrize('case,side,qty,price,ts', [
    ('documented', BUY, Decimal('10'), Decimal('18.70'), 1694688638.09),
    ('ask_side', SELL, Decimal('2.5'), Decimal('98.10'), 1788367430.599),
])
def test_liquidation_side_is_the_liquidation_order_side(case, side, qty, price, ts):
    liq = ad.parse_liquidation(payload('ws_liquidation.json', case), 'S', RECEIPT)
    assert type(liq) is Liquidation
    assert liq.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'S', 'side': side, 'quantity': qty, 'price': price,
                             'id': None, 'status': FILLED, 'timestamp': ts}


def test_liquidation_without_engine_time_uses_event_time():
    data = dict(load_fixture('ws_liquidation.json')['documented']['data'])
    del data['T']
    msg = bp.PAYLOAD_DECODERS['liquidation'].decode(json.dumps(data))
    assert ad.parse_liquidation(msg, 'S', RECEIPT).timestamp == 1694688638.091


def test_raw_dict_is_accepted_by_types_that_insist_on_dicts():
    msg = payload('ws_liquidation.json', 'documented')
    raw = ad.raw_payload(msg)
    assert ad.parse_liquidation(msg, 'S', RECEIPT, raw=raw).raw == raw
    oi = payload('ws_openInterest.json', 'documented')
    assert ad.parse_open_interest(oi, 'S', RECEIPT, raw=ad.raw_payload(oi)).raw['o'] == '100'


# -- private: orders, fills, positions, balances ------------------------------------------------

def order_dict(**overrides):
    base = {'exchange': 'BACKPACK', 'client_order_id': None, 'account': None}
    base.update(overrides)
    return base


def test_order_accepted_limit():
    o = ad.parse_order_update(payload('ws_orderUpdate.json', 'accepted'), 'USDT-USDC', RECEIPT)
    assert type(o) is OrderInfo
    assert o.to_dict() == order_dict(symbol='USDT-USDC', id='59887375336', side=SELL, status=OPEN, type=LIMIT,
                                     price=Decimal('1.0076'), amount=Decimal('20'), remaining=Decimal('20'),
                                     timestamp=1788368290.062979)


def test_order_cancelled():
    o = ad.parse_order_update(payload('ws_orderUpdate.json', 'cancelled'), 'USDT-USDC', RECEIPT)
    assert (o.status, o.remaining, o.timestamp) == (CANCELLED, Decimal('20'), 1788368293.11327)


def test_order_market_fill_reports_average_price_and_nothing_remaining():
    o = ad.parse_order_update(payload('ws_orderUpdate.json', 'fill'), 'ETH-USDC', RECEIPT)
    assert o.to_dict() == order_dict(symbol='ETH-USDC', id='5406825793', side=BUY, status=FILLED, type=MARKET,
                                     price=Decimal('4299.16'), amount=Decimal('0.0010'), remaining=Decimal('0.0000'),
                                     timestamp=1754939110.174705)


def test_order_partial_fill_with_client_id():
    o = ad.parse_order_update(payload('ws_orderUpdate.json', 'partial_maker_fill'), 'SOL-USDC-PERP', RECEIPT)
    assert (o.status, o.client_order_id, o.price, o.amount, o.remaining) == (
        PARTIAL, '42', Decimal('98.50'), Decimal('5'), Decimal('3'))


def test_order_expired_and_trigger_pending():
    e = ad.parse_order_update(payload('ws_orderUpdate.json', 'expired_ioc'), 'SOL-USDC', RECEIPT)
    assert (e.status, e.type, e.remaining) == (EXPIRED, LIMIT, Decimal('2'))
    t = ad.parse_order_update(payload('ws_orderUpdate.json', 'trigger_placed'), 'SOL-USDC-PERP', RECEIPT)
    assert (t.status, t.type, t.price, t.amount) == (PENDING, TRIGGER_MARKET, Decimal('0'), Decimal('0'))


def test_quote_quantity_market_order_before_fills():
    o = ad.parse_order_update(payload('ws_orderUpdate.json', 'quote_market_accepted'), 'SOL-USDC', RECEIPT)
    assert (o.type, o.price, o.amount, o.remaining) == (MARKET, Decimal('0'), Decimal('0'), None)


def test_unknown_order_status_is_passed_through():
    msg = msgspec.structs.replace(payload('ws_orderUpdate.json', 'accepted'), X='Parked')
    assert ad.parse_order_update(msg, 'S', RECEIPT).status == 'Parked'


def test_fill_from_order_fill_event():
    f = ad.parse_fill(payload('ws_orderUpdate.json', 'fill'), 'ETH-USDC', RECEIPT)
    assert type(f) is Fill
    assert f.raw == {'fee_asset': 'ETH'}
    assert f.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'ETH-USDC', 'side': BUY, 'amount': Decimal('0.0010'),
                           'price': Decimal('4299.16'), 'fee': Decimal('0.000001'), 'liquidity': TAKER,
                           'id': '2888471', 'order_id': '5406825793', 'type': MARKET, 'account': None,
                           'timestamp': 1754939110.174705}


def test_maker_fill():
    f = ad.parse_fill(payload('ws_orderUpdate.json', 'partial_maker_fill'), 'SOL-USDC-PERP', RECEIPT)
    assert (f.side, f.liquidity, f.amount, f.price, f.fee, f.id, f.type) == (
        SELL, MAKER, Decimal('2'), Decimal('98.50'), Decimal('0.0394'), '77120', LIMIT)


@pytest.mark.parametrize('case', ['accepted', 'cancelled', 'expired_ioc', 'trigger_placed'])
def test_updates_without_a_fill_give_no_fill(case):
    assert ad.parse_fill(payload('ws_orderUpdate.json', case), 'S', RECEIPT) is None


def test_position_opened():
    p = ad.parse_position(payload('ws_positionUpdate.json', 'opened'), 'ETH-USDC-PERP', RECEIPT)
    assert type(p) is Position
    assert p.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'ETH-USDC-PERP', 'position': Decimal('0.0010'),
                           'entry_price': Decimal('4236.36'), 'side': LONG, 'unrealised_pnl': Decimal('-0.000473'),
                           'timestamp': 1754943862.040487}


def test_position_snapshot_frame_without_event_is_a_short():
    msg = payload('ws_positionUpdate.json', 'snapshot')
    assert msg.event is None
    p = ad.parse_position(msg, 'SOL-USDC-PERP', RECEIPT)
    assert (p.position, p.side, p.entry_price, p.unrealised_pnl) == (Decimal('-5'), SHORT, Decimal('98.12'),
                                                                     Decimal('-4.12'))


def test_position_from_json_numbers_equals_position_from_strings():
    numbers = ad.parse_position(payload('ws_positionUpdate.json', 'docs_numbers'), 'SOL-USDC-PERP', RECEIPT)
    strings = ad.parse_position(payload('ws_positionUpdate.json', 'snapshot'), 'SOL-USDC-PERP', RECEIPT)
    assert numbers.to_dict() == strings.to_dict()


def test_position_closed_is_size_zero_on_the_side_it_closed():
    msg = payload('ws_positionUpdate.json', 'closed')
    p = ad.parse_position(msg, 'ETH-USDC-PERP', RECEIPT, previous_side=LONG)
    assert (p.position, p.side, p.timestamp) == (Decimal('0'), LONG, 1754943900.0)
    assert ad.parse_position(msg, 'ETH-USDC-PERP', RECEIPT).side == BOTH


def test_position_without_times_uses_receipt_time():
    data = dict(load_fixture('ws_positionUpdate.json')['snapshot']['data'])
    del data['E'], data['T']
    msg = bp.PAYLOAD_DECODERS['account.positionUpdate'].decode(json.dumps(data))
    assert ad.parse_position(msg, 'S', RECEIPT).timestamp == RECEIPT


def test_balance_update_is_available_plus_locked_with_locked_reserved():
    b = ad.parse_balance_update(payload('ws_balanceUpdate.json', 'documented'), RECEIPT)
    assert type(b) is Balance
    assert b.to_dict() == {'exchange': 'BACKPACK', 'currency': 'USDT', 'balance': Decimal('30'),
                           'reserved': Decimal('20')}


def test_balances_from_rest_capital_staked_left_out():
    capital = load_fixture('rest_account.json')['capital']
    balances = ad.parse_capital(capital, keep_raw=True)
    assert [(b.currency, b.balance, b.reserved) for b in balances] == [
        ('SOL', Decimal('1.75'), Decimal('0.25')), ('USDC', Decimal('120'), Decimal('0'))]
    assert balances[0].raw == {'available': '1.5', 'locked': '0.25', 'staked': '3', 'asset': 'SOL'}
    assert ad.parse_capital(capital)[0].raw is None


# -- every orderUpdate event, the status table, REST rows -----------------------------------------

ORDER_CASES = {
    # case: (status, type, price, amount, remaining)
    'accepted': (OPEN, LIMIT, '1.0076', '20', '20'),
    'cancelled': (CANCELLED, LIMIT, '1.0076', '20', '20'),
    'fill': (FILLED, MARKET, '4299.16', '0.0010', '0.0000'),
    'fill_string_times': (FILLED, MARKET, '4299.16', '0.0010', '0.0000'),
    'partial_maker_fill': (PARTIAL, LIMIT, '98.50', '5', '3'),
    'expired_ioc': (EXPIRED, LIMIT, '99.00', '3', '2'),
    'trigger_placed': (PENDING, TRIGGER_MARKET, '0', '0', '0'),
    'quote_market_accepted': (OPEN, MARKET, '0', '0', None),
    'modified_reduce_only': (OPEN, LIMIT, '98.50', '2', '2'),
    'trigger_failed': (FAILED, TRIGGER_MARKET, '0', '2', '2'),
    'triggered_status': (OPEN, TRIGGER_LIMIT, '96.10', '2', '2'),
    'trigger_fired_limit_fill': (FILLED, TRIGGER_LIMIT, '96.10', '2', '0'),
}


@pytest.mark.parametrize('case', sorted(ORDER_CASES))
def test_every_order_update_fixture(case):
    msg = payload('ws_orderUpdate.json', case)
    o = ad.parse_order_update(msg, 'X-USDC', RECEIPT)
    status, kind, price, amount, remaining = ORDER_CASES[case]
    assert (o.status, o.type, o.price, o.amount) == (status, kind, Decimal(price), Decimal(amount))
    assert o.remaining == (None if remaining is None else Decimal(remaining))
    assert o.id == msg.i and o.timestamp == msg.T / 1_000_000


def test_order_fixtures_cover_every_event_and_status():
    fixtures = load_fixture('ws_orderUpdate.json')
    events = {v['data']['e'] for k, v in fixtures.items() if k != '_source'}
    statuses = {v['data']['X'] for k, v in fixtures.items() if k != '_source'}
    assert events == set(ad.ORDER_EVENTS)
    assert statuses == set(ad.ORDER_STATUSES)


def test_status_table_in_the_docs_lists_every_status_and_event():
    from pathlib import Path
    doc = (Path(__file__).parents[2] / 'docs' / 'exchanges' / 'backpack.md').read_text()
    for status, constant in ad.ORDER_STATUSES.items():
        assert f'| `{status}` | `{constant}` |' in doc, status
    for event in ad.ORDER_EVENTS:
        assert f'`{event}`' in doc, event


def test_rest_order_equals_the_stream_order_for_the_same_state():
    row = load_fixture('rest_account.json')['order_resting']
    o = ad.parse_rest_order(row, 'USDT-USDC', RECEIPT, raw=row)
    assert o.to_dict() == order_dict(symbol='USDT-USDC', id='59669287267', side=SELL, status=OPEN, type=LIMIT,
                                     price=Decimal('1.0077'), amount=Decimal('20'), remaining=Decimal('20'),
                                     timestamp=RECEIPT)
    assert o.raw is row


def test_rest_history_market_order_and_trigger_order():
    rows = load_fixture('rest_account.json')
    o = ad.parse_rest_order(rows['order_history_filled_market'], 'SOL-USDC', RECEIPT)
    assert (o.status, o.type, o.price, o.remaining, o.client_order_id) == (
        FILLED, MARKET, Decimal('99'), Decimal('0'), '7')
    t = ad.parse_rest_order(rows['order_trigger_pending'], 'SOL-USDC-PERP', RECEIPT)
    assert (t.status, t.type, t.amount, t.remaining) == (PENDING, TRIGGER_MARKET, Decimal('2'), Decimal('2'))


def test_rest_fill_history_rows():
    first, second = load_fixture('rest_account.json')['fill_history']
    f = ad.parse_rest_fill(first, 'ETH-USDC-PERP', MARKET)
    assert f.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'ETH-USDC-PERP', 'side': BUY,
                           'amount': Decimal('0.0026'), 'price': Decimal('3826.15'), 'fee': Decimal('0.004974'),
                           'liquidity': TAKER, 'id': '9748827', 'order_id': '4238907375', 'type': MARKET,
                           'account': None, 'timestamp': 1753637940.092}
    assert f.raw == {'fee_asset': 'USDC'}
    g = ad.parse_rest_fill(second, 'SOL-USDC-PERP', raw=second)
    assert (g.side, g.liquidity, g.type, g.raw['fee_asset'], g.raw['tradeId']) == (SELL, MAKER, None, 'USDC', 77120)


def test_stream_fill_and_history_fill_agree():
    live = ad.parse_fill(payload('ws_orderUpdate.json', 'partial_maker_fill'), 'SOL-USDC-PERP', RECEIPT)
    rest = ad.parse_rest_fill(load_fixture('rest_account.json')['fill_history'][1], 'SOL-USDC-PERP', LIMIT)
    keys = ('symbol', 'side', 'amount', 'price', 'fee', 'liquidity', 'id', 'order_id', 'type')
    assert {k: live.to_dict()[k] for k in keys} == {k: rest.to_dict()[k] for k in keys}
    assert live.raw == rest.raw == {'fee_asset': 'USDC'}


def test_rest_positions():
    rows = load_fixture('rest_account.json')
    p = ad.parse_rest_position(rows['position'], 'ETH-USDC-PERP', RECEIPT)
    assert p.to_dict() == {'exchange': 'BACKPACK', 'symbol': 'ETH-USDC-PERP', 'position': Decimal('0.0036'),
                           'entry_price': Decimal('3826.88'), 'side': LONG, 'unrealised_pnl': Decimal('-0.141914'),
                           'timestamp': RECEIPT}
    s = ad.parse_rest_position(rows['position_short'], 'SOL-USDC-PERP', RECEIPT)
    live = ad.parse_position(payload('ws_positionUpdate.json', 'snapshot'), 'SOL-USDC-PERP', RECEIPT)
    assert (s.position, s.side, s.entry_price, s.unrealised_pnl) == (
        live.position, live.side, live.entry_price, live.unrealised_pnl)


# -- E/T spelled as integers or as strings give identical objects --------------------------------

@pytest.mark.parametrize('fixture,quoted,plain,parse', [
    ('ws_trade.json', 'string_times', 'documented', lambda m: ad.parse_trade(m, 'S', RECEIPT)),
    ('ws_bookTicker.json', 'string_times', 'documented', lambda m: ad.parse_book_ticker(m, 'S', RECEIPT)),
    ('ws_kline.json', 'string_time', 'documented', lambda m: ad.parse_kline(m, 'S', '2h', RECEIPT)),
    ('ws_markPrice.json', 'string_times', 'documented', lambda m: ad.parse_funding(m, 'S', RECEIPT)),
    ('ws_markPrice.json', 'string_times', 'documented', lambda m: ad.parse_index(m, 'S', RECEIPT)),
    ('ws_openInterest.json', 'string_time', 'documented', lambda m: ad.parse_open_interest(m, 'S', RECEIPT)),
    ('ws_liquidation.json', 'string_times', 'documented', lambda m: ad.parse_liquidation(m, 'S', RECEIPT)),
    ('ws_orderUpdate.json', 'fill_string_times', 'fill', lambda m: ad.parse_order_update(m, 'S', RECEIPT)),
    ('ws_orderUpdate.json', 'fill_string_times', 'fill', lambda m: ad.parse_fill(m, 'S', RECEIPT)),
])
def test_string_and_integer_times_give_identical_objects(fixture, quoted, plain, parse):
    a = parse(payload(fixture, quoted))
    b = parse(payload(fixture, plain))
    assert a.to_dict() == b.to_dict()
    assert a == b


def test_parsers_are_pure():
    msg = payload('ws_orderUpdate.json', 'partial_maker_fill')
    first = ad.parse_order_update(msg, 'S', RECEIPT).to_dict()
    ad.parse_fill(msg, 'S', RECEIPT)
    assert ad.parse_order_update(msg, 'S', RECEIPT).to_dict() == first
    assert msg == payload('ws_orderUpdate.json', 'partial_maker_fill')


def test_non_finite_quantities_never_reach_the_parser():
    # The payload refuses them when it is built (messages.OrderUpdate.__post_init__), so the router
    # drops such a frame as invalid and parse_order_update never sees one.
    with pytest.raises(ValueError, match='order 5406825793 trade 2888471'):
        msgspec.structs.replace(payload('ws_orderUpdate.json', 'fill'), q=Decimal('sNaN'), z=Decimal('Infinity'),
                                p=None, Z=Decimal('NaN'))


def test_time_helpers():
    assert ad.micros_to_seconds(1736186248744398) == 1736186248.744398
    assert ad.utc_seconds(datetime(1970, 1, 1, 0, 1)) == 60.0
    assert ad.utc_seconds(datetime(1970, 1, 1, 0, 1, tzinfo=timezone.utc)) == 60.0


# -- hostile values and real oddities (issue 10 items 5 and 11) ---------------------------------

def test_a_quiet_closed_kline_gives_no_candle():
    assert ad.parse_kline(payload('ws_kline.json', 'quiet_closed'), 'SOL-USDC', '1m', RECEIPT) is None


@pytest.mark.parametrize('T,E,expected', [
    (1694688638, 1694688638091000, 1694688638.091),          # T in seconds: fall back to E
    (1694688638090, 1694688638091000, 1694688638.091),       # T in milliseconds
    (0, 1694688638091000, 1694688638.091),                   # placeholder
    (10**30, 1694688638091000, 1694688638.091),              # far future
    (1694688638090000, 1694688638091000, 1694688638.09),     # plausible T wins
    (5, 7, RECEIPT),                                         # neither: the receipt time
])
def test_liquidation_timestamp_is_never_1970(T, E, expected):
    data = dict(load_fixture('ws_liquidation.json')['documented']['data'], T=T, E=E)
    msg = bp.PAYLOAD_DECODERS['liquidation'].decode(json.dumps(data))
    assert ad.parse_liquidation(msg, 'S', RECEIPT).timestamp == expected


SNAPSHOT = {'asks': [['100.65', '65.5'], ['100.66', '240.6']], 'bids': [['100.62', '168.89'], ['100.64', '67.95']],
            'lastUpdateId': '4324522523', 'timestamp': 1788285151254895}


@pytest.mark.parametrize('side,index,value', [
    ('bids', 1, 'NaN'), ('asks', 0, 'sNaN'), ('bids', 0, 'Infinity'), ('asks', 1, '1E+400'), ('bids', 1, '-67.95'),
    ('asks', 0, '-0.01'), ('bids', 0, 'abc'), ('asks', 1, None), ('bids', 0, 12.5), ('asks', 0, True),
])
@pytest.mark.parametrize('column', [0, 1])
def test_a_depth_snapshot_with_a_hostile_value_is_refused_with_a_value_error(side, index, value, column):
    data = json.loads(json.dumps(SNAPSHOT))
    data[side][index][column] = value
    with pytest.raises(ValueError, match='depth snapshot'):
        ad.parse_depth_snapshot(data)


def test_a_depth_snapshot_with_malformed_levels_is_refused_and_zero_levels_are_left_out():
    for levels in (None, [['1']], [['1', '2', '3']], ['1,2']):
        with pytest.raises(ValueError):
            ad.parse_depth_snapshot({**SNAPSHOT, 'bids': levels})
    snap = ad.parse_depth_snapshot({**SNAPSHOT, 'asks': [['100.65', '0'], ['100.66', '240.6']]})
    assert snap.asks == [(Decimal('100.66'), Decimal('240.6'))]
    assert snap.last_update_id == 4324522523 and snap.timestamp == 1788285151.254895


ROW = {'id': 381731418, 'isBuyerMaker': False, 'price': '100.67', 'quantity': '0.22', 'quoteQuantity': '22.1474',
       'timestamp': 1788285123140}


def test_rest_trade_rows_with_hostile_values_or_no_id_are_refused_and_skipped_in_bulk():
    bad_rows = [dict(ROW, price='NaN'), dict(ROW, quantity='-1'), dict(ROW, price='sNaN'), dict(ROW, id=None),
                {k: v for k, v in ROW.items() if k != 'id'}, dict(ROW, id='x'), dict(ROW, quantity='0')]
    for row in bad_rows:
        with pytest.raises((KeyError, ValueError)):
            ad.parse_rest_trade(row, 'SOL-USDC', RECEIPT)
    good = [ROW, dict(ROW, id='381731419')]
    parsed, skipped = ad.parse_rest_trades(bad_rows + good, 'SOL-USDC', RECEIPT)
    assert skipped == len(bad_rows)
    assert [trade_id for trade_id, _ in parsed] == [381731418, 381731419]
    assert parsed[0][1].price == Decimal('100.67') and parsed[1][1].id == '381731419'


def test_rest_trade_id_accepts_integers_and_digit_strings_only():
    assert [ad.rest_trade_id(r) for r in ({'id': 5}, {'id': '6'}, {'id': None}, {}, {'id': True}, {'id': -1},
                                          {'id': '1e3'}, {'id': 1.0}, 'not a row')] == [5, 6] + [None] * 7
