"""ccxt unified structures -> cryptofeed objects, and the book mirror (pure, no ccxt, no loop)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest
from cryptofeed.exchanges.backpack.core.defines import ASK, BID, BUY, CANCELLED, FILLED, LIMIT, MARKET, OPEN, PARTIAL, SELL, SHORT

from cryptofeed.exchanges.backpack.hosts.ccxt_convert import (
    BookMirror, ms_to_seconds, parse_ccxt_balances, parse_ccxt_order, parse_ccxt_position, parse_ccxt_ticker,
    parse_ccxt_trade, to_decimal,
)


def test_to_decimal_restores_the_venue_decimal_from_ccxt_floats():
    assert to_decimal(100.1) == D('100.1') and str(to_decimal(0.0001)) == '0.0001'
    assert to_decimal(1e-05) == D('0.00001') and to_decimal('3.50') == D('3.50') and to_decimal(None) is None
    assert to_decimal(7) == D(7) and ms_to_seconds(1_700_000_000_123) == 1_700_000_000.123


def test_trade():
    trade = parse_ccxt_trade({'id': '42', 'side': 'sell', 'price': 101.5, 'amount': 0.25, 'timestamp': 1_700_000_000_001,
                              'info': {'t': 42}}, 'SOL-USDC', raw=True)
    assert (trade.exchange, trade.symbol, trade.side, trade.id) == ('BACKPACK', 'SOL-USDC', SELL, '42')
    assert (trade.price, trade.amount, trade.timestamp, trade.raw) == (D('101.5'), D('0.25'), 1_700_000_000.001, {'t': 42})
    assert parse_ccxt_trade({'id': 1, 'side': 'buy', 'price': 1, 'amount': 1, 'timestamp': 0}, 'X-Y').raw is None
    with pytest.raises(ValueError, match='unknown side'):
        parse_ccxt_trade({'id': 1, 'side': None, 'price': 1, 'amount': 1, 'timestamp': 0}, 'X-Y')


def test_ticker_needs_both_sides():
    ticker = parse_ccxt_ticker({'bid': 99.5, 'ask': 100.25, 'timestamp': 1000}, 'SOL-USDC')
    assert (ticker.bid, ticker.ask, ticker.timestamp) == (D('99.5'), D('100.25'), 1.0)
    assert parse_ccxt_ticker({'bid': None, 'ask': 1.0}, 'SOL-USDC') is None


@pytest.mark.parametrize('status, filled, expected', [
    ('open', 0.0, OPEN), ('open', None, OPEN), ('open', 0.5, PARTIAL), ('closed', 1.0, FILLED),
    ('canceled', 0.0, CANCELLED)])
def test_order_status(status, filled, expected):
    order = parse_ccxt_order({'id': 7, 'side': 'buy', 'type': 'limit', 'status': status, 'filled': filled, 'price': 95.0,
                              'amount': 1.0, 'remaining': 0.5, 'timestamp': 2000, 'clientOrderId': 5}, 'SOL-USDC')
    assert order.status == expected
    assert (order.id, order.side, order.type, order.price, order.client_order_id) == ('7', BUY, LIMIT, D('95.0'), '5')


def test_order_market_type_and_last_update_time():
    order = parse_ccxt_order({'id': '1', 'side': 'sell', 'type': 'market', 'status': 'closed', 'amount': 2.0,
                              'timestamp': 1000, 'lastUpdateTimestamp': 3000}, 'SOL-USDC-PERP')
    assert (order.type, order.timestamp, order.price, order.client_order_id) == (MARKET, 3.0, None, None)


def test_position_is_signed_by_side():
    pos = parse_ccxt_position({'contracts': 2.0, 'side': 'short', 'entryPrice': 100.5, 'unrealizedPnl': -0.02,
                               'timestamp': 5000}, 'SOL-USDC-PERP')
    assert (pos.position, pos.side, pos.entry_price, pos.unrealised_pnl, pos.timestamp) == (
        D('-2.0'), SHORT, D('100.5'), D('-0.02'), 5.0)


def test_balances_per_asset_total_and_used():
    balance = {'total': {'USDC': 1000.5, 'SOL': 2.0}, 'used': {'USDC': 95.0}, 'info': {'x': 1}}
    items = parse_ccxt_balances(balance)
    assert [(b.currency, b.balance, b.reserved) for b in items] == [('SOL', D('2.0'), D(0)), ('USDC', D('1000.5'), D('95.0'))]
    assert [b.currency for b in parse_ccxt_balances(balance, ['USDC', 'BTC'])] == ['USDC']
    assert parse_ccxt_balances(balance, raw=True)[0].raw == {'x': 1}


def test_book_mirror_full_book_then_deltas():
    mirror = BookMirror('SOL-USDC')
    first = mirror.update([[100.0, 1.0], [99.5, 2.0]], [[100.5, 3.0]], 10, 1_000)
    assert first.delta is None and first.sequence_number == 10 and first.timestamp == 1.0
    assert mirror.levels() == ([(D('100.0'), D('1.0')), (D('99.5'), D('2.0'))], [(D('100.5'), D('3.0'))])
    assert mirror.update([[100.0, 1.0]], [[100.5, 3.0]], 10, 2_000) is None  # the nonce did not move
    second = mirror.update([[100.0, 1.5]], [[100.5, 3.0], [101.0, 1.0]], 12, 2_000)
    assert second.delta == {BID: [(D('100.0'), D('1.5')), (D('99.5'), D(0))], ASK: [(D('101.0'), D('1.0'))]}
    assert mirror.levels() == ([(D('100.0'), D('1.5'))], [(D('100.5'), D('3.0')), (D('101.0'), D('1.0'))])
    assert second.book is first.book and not mirror.crossed()
    mirror.reset()
    assert not mirror.synced and mirror.update([[1.0, 1.0]], [[2.0, 1.0]], 5, None).delta is None


def test_book_mirror_max_depth_and_crossed():
    mirror = BookMirror('SOL-USDC', max_depth=1)
    mirror.update([[100.0, 1.0], [99.0, 1.0]], [[101.0, 1.0], [102.0, 1.0]], 1, None)
    assert mirror.levels() == ([(D('100.0'), D('1.0'))], [(D('101.0'), D('1.0'))])
    emission = mirror.update([[99.0, 1.0]], [[101.0, 1.0], [102.0, 1.0]], 2, None)
    assert emission.delta == {BID: [(D('99.0'), D('1.0')), (D('100.0'), D(0))], ASK: []}
    mirror.update([[101.5, 1.0]], [[101.0, 1.0]], 3, None)
    assert mirror.crossed()
