"""rest_adapters.py on the documented REST payloads (backpack-api.md sections 3 and 5), no I/O."""
from __future__ import annotations

from decimal import Decimal as D

import pytest
from cryptofeed.exchanges.backpack.core.defines import (
    BUY, CANCELLED, FILLED, LIMIT, MARKET, OPEN, SELL, SHORT, TAKER, TRIGGER_LIMIT,
)

from cryptofeed.exchanges.backpack.core.wire.parse import (
    history_seconds, parse_capital, parse_rest_fill, parse_rest_position,
)
from cryptofeed.exchanges.backpack.core.wire.parse_rest import (
    parse_rest_book, parse_rest_funding, parse_rest_kline, parse_rest_open_interest, parse_rest_ticker,
    parse_rest_trade_dict,
)
from cryptofeed.exchanges.backpack.hosts.rest_api import _order
from cryptofeed.exchanges.backpack.hosts.rest_api import to_epoch_seconds

DEPTH = {'asks': [['100.65', '65.5'], ['100.66', '240.6']], 'bids': [['100.62', '168.89'], ['100.64', '67.95']],
         'lastUpdateId': '4324522523', 'timestamp': 1788285151254895}
ORDER = {'clientId': None, 'createdAt': 1788285244094, 'executedQuantity': '0', 'executedQuoteQuantity': '0',
         'id': '59669287267', 'orderType': 'Limit', 'postOnly': True, 'price': '1.0077', 'quantity': '20',
         'reduceOnly': None, 'selfTradePrevention': 'RejectTaker', 'side': 'Ask', 'status': 'New',
         'symbol': 'USDT_USDC', 'timeInForce': 'GTC', 'triggerPrice': None}


def test_trade_rows_become_cryptofeed_rest_trade_dicts():
    row = {'id': 381731417, 'isBuyerMaker': True, 'price': '100.67', 'quantity': '2.05', 'quoteQuantity': '206.3735',
           'timestamp': 1788285119299}
    assert parse_rest_trade_dict(row, 'SOL-USDC') == {
        'timestamp': 1788285119.299, 'symbol': 'SOL-USDC', 'id': 381731417, 'feed': 'BACKPACK', 'side': SELL,
        'amount': D('2.05'), 'price': D('100.67')}
    assert parse_rest_trade_dict(dict(row, isBuyerMaker=False), 'SOL-USDC')['side'] == BUY


def test_depth_becomes_a_book_and_a_ticker_with_bids_best_last():
    book = parse_rest_book(DEPTH, 'SOL-USDC')
    assert book.sequence_number == 4324522523 and book.timestamp == 1788285151.254895
    assert book.book.bids.index(0) == (D('100.64'), D('67.95'))
    assert book.book.asks.index(0) == (D('100.65'), D('65.5'))
    assert parse_rest_ticker(DEPTH, 'SOL-USDC') == {'symbol': 'SOL-USDC', 'feed': 'BACKPACK', 'bid': D('100.64'),
                                                   'ask': D('100.65'), 'timestamp': 1788285151.254895}
    empty = parse_rest_ticker({'asks': [], 'bids': [], 'lastUpdateId': 1}, 'SOL-USDC')
    assert empty['bid'] is None and empty['ask'] is None and empty['timestamp'] is None


def test_kline_rows_become_candles_and_empty_intervals_none():
    row = {'start': '2026-09-01 16:52:00', 'end': '2026-09-01 16:53:00', 'open': '101.05', 'high': '101.05',
           'low': '101.02', 'close': '101.02', 'volume': '0.44', 'quoteVolume': '44.4554', 'trades': '3'}
    start = history_seconds('2026-09-01T16:52:00')
    candle = parse_rest_kline(row, 'SOL-USDC', '1m', now=start + 3600)
    assert (candle.start, candle.stop, candle.interval, candle.trades) == (start, start + 60, '1m', 3)
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        D('101.05'), D('101.05'), D('101.02'), D('101.02'), D('0.44'))
    assert candle.closed and candle.timestamp == start + 60
    running = parse_rest_kline(row, 'SOL-USDC', '1m', now=start + 10)
    assert not running.closed and running.timestamp == start + 10
    quiet = dict(row, open=None, high=None, low=None, close=None, volume='0', trades='0')
    assert parse_rest_kline(quiet, 'SOL-USDC', '1m', now=start + 3600) is None


def test_mark_prices_and_open_interest():
    funding = parse_rest_funding({'symbol': 'SOL_USDC_PERP', 'markPrice': '100.61', 'indexPrice': '100.64352578',
                                  'fundingRate': '0.0000125', 'nextFundingTimestamp': 1788285600000},
                                 'SOL-USDC-PERP', now=5.0)
    assert (funding.mark_price, funding.rate, funding.next_funding_time, funding.timestamp) == (
        D('100.61'), D('0.0000125'), 1788285600.0, 5.0)
    oi = parse_rest_open_interest({'symbol': 'SOL_USDC_PERP', 'openInterest': '206529.68',
                                   'timestamp': 1788285149338}, 'SOL-USDC-PERP')
    assert (oi.open_interest, oi.timestamp) == (D('206529.68'), 1788285149.338)


def test_capital_and_positions():
    balances = parse_capital({'USDC': {'available': '120', 'locked': '3', 'staked': '0'},
                              'SOL': {'available': '1.5', 'locked': '0', 'staked': '2'}})
    assert [(b.currency, b.balance, b.reserved) for b in balances] == [('SOL', D('1.5'), D(0)),
                                                                        ('USDC', D(123), D(3))]
    row = {'symbol': 'ETH_USDC_PERP', 'positionId': '4238420454', 'netQuantity': '-0.0036', 'entryPrice': '3826.88',
           'pnlUnrealized': '-0.141914', 'markPrice': '3787.46'}
    position = parse_rest_position(row, 'ETH-USDC-PERP', 7.0)
    assert (position.position, position.entry_price, position.side, position.unrealised_pnl, position.timestamp) == (
        D('-0.0036'), D('3826.88'), SHORT, D('-0.141914'), 7.0)


def test_orders_from_order_objects_and_history_rows():
    order = _order(ORDER, 'USDT-USDC')
    assert (order.id, order.side, order.status, order.type, order.price, order.amount, order.remaining,
            order.timestamp, order.client_order_id) == (
        '59669287267', SELL, OPEN, LIMIT, D('1.0077'), D(20), D(20), 1788285244.094, None)
    market = _order(dict(ORDER, orderType='Market', price=None, quantity=None, quoteQuantity='50',
                                   executedQuantity='2', executedQuoteQuantity='50', status='Filled', clientId=9,
                                   createdAt='2025-07-27T17:39:00.092'), 'USDT-USDC')
    assert (market.type, market.status, market.price, market.amount, market.remaining, market.client_order_id) == (
        MARKET, FILLED, D(25), D(2), None, '9')
    assert market.timestamp == history_seconds('2025-07-27 17:39:00.092')
    trigger = _order(dict(ORDER, triggerPrice='1.1', status='Cancelled', executedQuantity='5'), 'USDT-USDC')
    assert (trigger.type, trigger.status, trigger.remaining) == (TRIGGER_LIMIT, CANCELLED, D(15))


def test_fills():
    row = {'clientId': None, 'fee': '0.004974', 'feeSymbol': 'USDC', 'isMaker': False, 'orderId': '4238907375',
           'price': '3826.15', 'quantity': '0.0026', 'side': 'Bid', 'symbol': 'ETH_USDC_PERP',
           'systemOrderType': None, 'timestamp': '2025-07-27T17:39:00.092', 'tradeId': 9748827}
    fill = parse_rest_fill(row, 'ETH-USDC-PERP', None, row)
    assert (fill.side, fill.amount, fill.price, fill.fee, fill.id, fill.order_id, fill.liquidity, fill.type) == (
        BUY, D('0.0026'), D('3826.15'), D('0.004974'), '9748827', '4238907375', TAKER, None)
    assert fill.timestamp == pytest.approx(1753637940.092) and fill.raw['feeSymbol'] == 'USDC'


@pytest.mark.parametrize('value,expected', [
    (1788285151, 1788285151.0), (1.5, 1.5), ('2026-09-01 16:52:00', 1788281520.0),
    ('2026-09-01T16:52:00.5', 1788281520.5), ('2026-09-01T18:52:00+02:00', 1788281520.0),
])
def test_times_are_epoch_seconds_utc(value, expected):
    assert to_epoch_seconds(value) == expected


@pytest.mark.parametrize('value', ['yesterday', True, [1]])
def test_bad_times_say_what_is_expected(value):
    with pytest.raises(ValueError, match='UTC'):
        to_epoch_seconds(value, 'start')
