"""cryptofeed's REST methods on ``BackpackFeed`` (the coroutines), against the simulator over real sockets.

The history downloads are compared with the simulator's truth (``/_sim/trades``, the trade log
the klines are computed from); the account calls with the simulated account. The ``_sync``
twins are covered in ``test_rest_api_sync.py``.
"""
from __future__ import annotations

import base64
from collections import defaultdict
from decimal import Decimal as D

import aiohttp
import pytest
from cryptofeed.exchanges.backpack.core.defines import (
    BUY, CANCELLED, EXPIRED, FILL_OR_KILL, FILLED, IMMEDIATE_OR_CANCEL, LIMIT, MAKER_OR_CANCEL, MARKET, OPEN, SELL,
    TAKER,
)
from cryptofeed.exchanges.backpack import UnsupportedTradingOption
from cryptofeed.exchanges.backpack.core.records import Balance, Candle, Fill, OrderBook, OrderInfo, Position

from cryptofeed.exchanges.backpack import BackpackAuthError, BackpackFeed, BackpackRequestError
from cryptofeed.exchanges.backpack.hosts import rest_api
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

SECRET = base64.b64encode(bytes([7]) * 32).decode()
API_KEY = BackpackSigner(SECRET).public_key
HISTORY = dict(history_s=3600, history_updates=24000)
BASE = 'SOL_USDC'


def feed_for(sim, *, keys: bool = False, **kwargs) -> BackpackFeed:
    config = {'rest_url': sim.rest_url, 'ws_url': sim.ws_url, 'retry_backoff_base_s': 0.05}
    if keys:
        config['auth'] = {'private_key': SECRET}
    return BackpackFeed(config=config, **kwargs)


async def http_get(sim, path: str, **params):
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.rest_url + path, params=params) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


def window_truth(truth: list, start_ms: int, end_ms: int) -> list:
    return [t for t in truth if start_ms <= t['timestamp_us'] // 1000 <= end_ms]


def as_truth(trade: dict) -> dict:
    """A REST trade dict in the shape of a /_sim/trades row, to compare field by field."""
    return {'id': trade['id'], 'price': trade['price'], 'quantity': trade['amount'],
            'side': 'Buy' if trade['side'] == BUY else 'Sell', 'timestamp_ms': round(trade['timestamp'] * 1000)}


def truth_row(row: dict) -> dict:
    return {'id': row['id'], 'price': D(row['price']), 'quantity': D(row['quantity']), 'side': row['side'],
            'timestamp_ms': row['timestamp_us'] // 1000}


async def download(feed, symbol, start, end):
    pages = []
    async for page in feed.trades(symbol, start, end):
        pages.append(page)
    return pages


def window_over(truth: list, first: int, last: int):
    """(start_s, end_s, start_ms, end_ms) spanning truth[first] .. truth[last] (inclusive, ms exact)."""
    start_ms = truth[first]['timestamp_us'] // 1000
    end_ms = truth[last]['timestamp_us'] // 1000
    return start_ms / 1000, end_ms / 1000, start_ms, end_ms


# ---------------------------------------------------------------------------------------- trades

async def test_trades_over_several_pages_equal_the_truth_while_the_market_trades():
    async with BackpackSimulator(markets=[BASE], rate=400, **HISTORY) as sim:
        feed = feed_for(sim)
        try:
            truth = await http_get(sim, '/_sim/trades', symbol=BASE)
            assert len(truth) > 4000
            start, end, start_ms, end_ms = window_over(truth, 300, len(truth) - 200)
            pages = await download(feed, 'SOL-USDC', start, end)
            truth = await http_get(sim, '/_sim/trades', symbol=BASE)   # new trades printed meanwhile
        finally:
            await feed.rest.close()
    want = [truth_row(r) for r in window_truth(truth, start_ms, end_ms)]
    got = [as_truth(t) for page in pages for t in page]
    assert len(pages) >= 4 and all(len(page) <= 1000 for page in pages)
    assert got == want
    ids = [t['id'] for t in got]
    assert ids == sorted(set(ids))
    trade = pages[0][0]
    assert set(trade) == {'timestamp', 'symbol', 'id', 'feed', 'side', 'amount', 'price'}
    assert trade['symbol'] == 'SOL-USDC' and trade['feed'] == 'BACKPACK'
    assert isinstance(trade['price'], D) and isinstance(trade['amount'], D)


async def test_trades_without_a_window_are_the_latest_page_in_id_order():
    async with BackpackSimulator(markets=[BASE], rate=0, **HISTORY) as sim:
        feed = feed_for(sim)
        try:
            pages = [page async for page in feed.trades('SOL-USDC')]
        finally:
            await feed.rest.close()
        truth = sim.trades(BASE)
    assert len(pages) == 1
    assert [t['id'] for t in pages[0]] == [t['id'] for t in truth[-1000:]]


async def test_trades_stay_under_the_history_rate_limit():
    """The simulator enforces 4 historical requests per second; a feed paced to the same limit
    sends no request that gets a 429, and waits instead."""
    async with BackpackSimulator(markets=[BASE], rate=0, history_rate_limit=(4, 1.0), **HISTORY) as sim:
        feed = feed_for(sim)
        feed.history_rate_limit = (4, 1.0)
        try:
            truth = sim.trades(BASE)
            start, end, start_ms, end_ms = window_over(truth, 10, len(truth) - 10)
            pages = await download(feed, 'SOL-USDC', start, end)
        finally:
            await feed.rest.close()
        assert sim.history_limit.refused == 0
    assert feed.rest.stats.requests > 4
    assert feed._history_pacer().waited_s > 0
    assert [as_truth(t) for p in pages for t in p] == [truth_row(r) for r in window_truth(truth, start_ms, end_ms)]


async def test_429_with_retry_after_during_paging_is_waited_out():
    async with BackpackSimulator(markets=[BASE], rate=0, **HISTORY) as sim:
        feed = feed_for(sim)
        try:
            truth = sim.trades(BASE)
            start, end, start_ms, end_ms = window_over(truth, 0, len(truth) - 1)
            sim.inject({'fault': 'http_status', 'status': 429, 'count': 2, 'path': '/api/v1/trades/history',
                        'retry_after': 1})
            pages = await download(feed, 'SOL-USDC', start, end)
        finally:
            await feed.rest.close()
    stats = feed.rest.stats
    assert stats.failures_by_status.get('429') == 2 and stats.retries == 2 and stats.failures == 0
    assert [as_truth(t) for p in pages for t in p] == [truth_row(r) for r in window_truth(truth, start_ms, end_ms)]


async def test_a_server_limit_tighter_than_the_pacer_costs_retries_not_data():
    async with BackpackSimulator(markets=[BASE], rate=0, history_rate_limit=(3, 1.0), **HISTORY) as sim:
        feed = feed_for(sim)
        feed.history_rate_limit = (100, 1.0)
        try:
            truth = sim.trades(BASE)
            start, end, start_ms, end_ms = window_over(truth, 0, len(truth) - 1)
            pages = await download(feed, 'SOL-USDC', start, end)
        finally:
            await feed.rest.close()
        assert sim.history_limit.refused > 0
    assert feed.rest.stats.failures == 0
    assert [as_truth(t) for p in pages for t in p] == [truth_row(r) for r in window_truth(truth, start_ms, end_ms)]


async def test_bad_windows_are_refused_before_any_request():
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim)
        try:
            with pytest.raises(ValueError, match='after end'):
                await download(feed, 'SOL-USDC', 200.0, 100.0)
            with pytest.raises(ValueError, match='without start'):
                await download(feed, 'SOL-USDC', None, 100.0)
            with pytest.raises(ValueError, match='not a UTC time'):
                await download(feed, 'SOL-USDC', 'yesterday', None)
            with pytest.raises(ValueError, match='interval'):
                [p async for p in feed.candles('SOL-USDC', 0, 10, interval='7m')]
        finally:
            await feed.rest.close()
        assert feed.rest.stats.requests == 0


# ---------------------------------------------------------------------------------------- candles

@pytest.mark.parametrize('interval,seconds', [('1s', 1), ('1m', 60), ('15m', 900), ('1h', 3600)])
async def test_candle_volumes_match_the_trades_of_the_truth(interval, seconds):
    async with BackpackSimulator(markets=[BASE], rate=0, **HISTORY) as sim:
        feed = feed_for(sim)
        truth = sim.trades(BASE)
        first_s = truth[0]['timestamp_us'] // 1_000_000
        start, end = first_s - first_s % seconds, truth[-1]['timestamp_us'] / 1e6
        try:
            pages = [page async for page in feed.candles('SOL-USDC', start, end, interval=interval)]
        finally:
            await feed.rest.close()
        requests = feed.rest.stats.requests
    candles = [c for page in pages for c in page]
    volume, count, opens, closes = defaultdict(D), defaultdict(int), {}, {}
    for t in truth:
        bucket = t['timestamp_us'] // 1_000_000 // seconds * seconds
        volume[bucket] += D(t['quantity'])
        count[bucket] += 1
        opens.setdefault(bucket, D(t['price']))
        closes[bucket] = D(t['price'])
    assert all(isinstance(c, Candle) for c in candles)
    assert [int(c.start) for c in candles] == sorted(volume)
    for c in candles:
        bucket = int(c.start)
        assert c.stop == c.start + seconds and c.interval == interval and c.symbol == 'SOL-USDC'
        assert (c.volume, c.trades, c.open, c.close) == (volume[bucket], count[bucket], opens[bucket], closes[bucket])
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
    if interval == '1s':
        assert requests >= 3   # 3600 one-second candles: several time windows of 1000


async def test_candles_in_months_and_weeks_have_the_whole_volume():
    async with BackpackSimulator(markets=[BASE], rate=0, **HISTORY) as sim:
        feed = feed_for(sim)
        truth = sim.trades(BASE)
        total = sum(D(t['quantity']) for t in truth)
        try:
            for interval in ('1w', '1M'):
                candles = [c async for page in feed.candles('SOL-USDC', truth[0]['timestamp_us'] / 1e6,
                                                            truth[-1]['timestamp_us'] / 1e6, interval=interval)
                           for c in page]
                assert sum(c.volume for c in candles) == total
                assert sum(c.trades for c in candles) == len(truth)
        finally:
            await feed.rest.close()


# ---------------------------------------------------------------------------------------- book, ticker, perps

async def test_l2_book_and_ticker_equal_the_rest_depth():
    async with BackpackSimulator(markets=[BASE], rate=100) as sim:
        feed = feed_for(sim)
        try:
            sim.pause()
            depth = await http_get(sim, '/api/v1/depth', symbol=BASE, limit=1000)
            book = await feed.l2_book('SOL-USDC')
            ticker = await feed.ticker('SOL-USDC')
        finally:
            await feed.rest.close()
    assert isinstance(book, OrderBook) and book.symbol == 'SOL-USDC'
    assert book.sequence_number == int(depth['lastUpdateId'])
    assert book.timestamp == depth['timestamp'] / 1e6
    assert book.book.bids.to_dict() == {D(p): D(q) for p, q in depth['bids']}
    assert book.book.asks.to_dict() == {D(p): D(q) for p, q in depth['asks']}
    assert ticker == {'symbol': 'SOL-USDC', 'feed': 'BACKPACK', 'bid': D(depth['bids'][-1][0]),
                      'ask': D(depth['asks'][0][0]), 'timestamp': depth['timestamp'] / 1e6}


async def test_l2_book_honours_max_depth():
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim, max_depth=3)
        try:
            book = await feed.l2_book('SOL-USDC')
        finally:
            await feed.rest.close()
        truth = sim.book(BASE)
    assert list(book.book.bids.to_dict()) == [D(p) for p, _ in truth['bids'][:3]]
    assert list(book.book.asks.to_dict()) == [D(p) for p, _ in truth['asks'][:3]]


async def test_funding_and_open_interest_of_a_perpetual():
    async with BackpackSimulator(markets=['SOL_USDC_PERP', BASE], rate=0, mark_interval=3600) as sim:
        feed = feed_for(sim)
        try:
            funding = await feed.funding('SOL-USDC-PERP')
            oi = await feed.open_interest('SOL-USDC-PERP')
            with pytest.raises(ValueError, match='perpetuals only'):
                await feed.funding('SOL-USDC')
            with pytest.raises(ValueError, match='perpetuals only'):
                await feed.open_interest('SOL-USDC')
        finally:
            await feed.rest.close()
        model = sim.model
        assert (funding.symbol, funding.mark_price, funding.rate) == (
            'SOL-USDC-PERP', model.mark_price('SOL_USDC_PERP'), model.funding_rate('SOL_USDC_PERP'))
        assert funding.next_funding_time == model.next_funding_ms('SOL_USDC_PERP') / 1000
        assert (oi.symbol, oi.open_interest) == ('SOL-USDC-PERP', model.open_interest('SOL_USDC_PERP'))


# ---------------------------------------------------------------------------------------- account

ACCOUNT_CALLS = [
    ('balances', ()), ('positions', ()), ('orders', ()), ('order_status', ('1',)), ('trade_history', ()),
    ('place_order', ('SOL-USDC', BUY, MARKET, D(1))), ('cancel_order', ('1', 'SOL-USDC')),
]


@pytest.mark.parametrize('name,args', ACCOUNT_CALLS)
async def test_account_calls_without_keys_say_which_setting_to_add(name, args):
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim)
        try:
            with pytest.raises(BackpackAuthError, match=r'auth\.private_key.*BACKPACK_PRIVATE_KEY'):
                await getattr(feed, name)(*args)
        finally:
            await feed.rest.close()
        assert feed.rest.stats.requests == 0


async def test_balances_positions_orders_match_the_account_truth():
    async with BackpackSimulator(markets=[BASE, 'SOL_USDC_PERP'], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            best_bid = D(sim.book(BASE)['bids'][0][0])
            resting = await feed.place_order('SOL-USDC', BUY, LIMIT, D('2'), best_bid - D('1'), client_order_id=42)
            await feed.place_order('SOL-USDC-PERP', SELL, MARKET, D('3'))
            balances = await feed.balances()
            positions = await feed.positions()
            orders = await feed.orders()
            only_perp = await feed.orders('SOL-USDC-PERP')
        finally:
            await feed.rest.close()
        capital = sim.account.balances(API_KEY)
        truth_positions = sim.account.positions(API_KEY)
    assert all(isinstance(b, Balance) for b in balances)
    assert {b.currency: (b.balance, b.reserved) for b in balances} == {
        asset: (D(row['available']) + D(row['locked']), D(row['locked'])) for asset, row in capital.items()}
    assert capital['USDC']['locked'] != '0'   # the resting bid locks quote
    assert all(isinstance(p, Position) for p in positions)
    assert [(p.symbol, p.position, p.entry_price) for p in positions] == [
        ('SOL-USDC-PERP', D(row['netQuantity']), D(row['entryPrice'])) for row in truth_positions]
    assert positions[0].position == D('-3')
    assert [o.id for o in orders] == [resting.id] and only_perp == []
    order = orders[0]
    assert isinstance(order, OrderInfo)
    assert (order.symbol, order.side, order.status, order.type, order.price, order.amount, order.remaining,
            order.client_order_id) == ('SOL-USDC', BUY, OPEN, LIMIT, best_bid - 1, D(2), D(2), '42')


async def test_an_order_round_trip():
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            best_ask = D(sim.book(BASE)['asks'][0][0])
            placed = await feed.place_order('SOL-USDC', SELL, LIMIT, D('1.5'), best_ask + D('0.5'),
                                            time_in_force=MAKER_OR_CANCEL)
            by_symbol = await feed.order_status(placed.id, 'SOL-USDC')
            searched = await feed.order_status(placed.id)
            cancelled = await feed.cancel_order(placed.id, 'SOL-USDC')
            after_by_symbol = await feed.order_status(placed.id, 'SOL-USDC')
            after = await feed.order_status(placed.id)
            left = await feed.orders()
            with pytest.raises(BackpackRequestError) as missing:
                await feed.order_status('123456')
        finally:
            await feed.rest.close()
    assert placed.status == OPEN and placed.raw['postOnly'] is True
    assert by_symbol.id == searched.id == placed.id and by_symbol.status == searched.status == OPEN
    assert cancelled.status == CANCELLED and cancelled.id == placed.id
    assert after.status == after_by_symbol.status == CANCELLED and after.remaining == D('1.5')
    assert left == []
    assert missing.value.status == 404 and missing.value.code == 'RESOURCE_NOT_FOUND'


async def test_a_market_order_fills_and_shows_in_positions_balances_and_trade_history():
    async with BackpackSimulator(markets=[BASE, 'SOL_USDC_PERP'], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            before = {b.currency: b.balance for b in await feed.balances()}
            order = await feed.place_order('SOL-USDC-PERP', BUY, MARKET, D('2'))
            spot = await feed.place_order('SOL-USDC', SELL, MARKET, D('5'))
            positions = await feed.positions('SOL-USDC-PERP')
            after = {b.currency: b.balance for b in await feed.balances()}
            fills = await feed.trade_history()
            perp_fills = await feed.trade_history('SOL-USDC-PERP')
            window = await feed.trade_history(start=fills[0].timestamp, end=fills[0].timestamp)
        finally:
            await feed.rest.close()
        truth = sim.account.engine.fill_history(API_KEY, ascending=True)
    assert order.status == FILLED and order.remaining == 0 and spot.status == FILLED
    assert [(p.symbol, p.position) for p in positions] == [('SOL-USDC-PERP', D('2'))]
    assert after['SOL'] == before['SOL'] - 5 and after['USDC'] != before['USDC']
    assert all(isinstance(f, Fill) for f in fills)
    assert [(f.id, f.order_id, f.price, f.amount, f.fee) for f in fills] == [
        (str(t.trade_id), t.order_id, t.price, t.quantity, t.fee) for t in truth]
    assert {f.order_id for f in perp_fills} == {order.id} and sum(f.amount for f in perp_fills) == 2
    assert sum(f.amount for f in fills if f.order_id == spot.id) == 5
    assert all(f.liquidity == TAKER for f in fills) and {f.side for f in perp_fills} == {BUY}
    assert window and all(f.timestamp == fills[0].timestamp for f in window)


async def test_trade_history_pages_through_every_fill(monkeypatch):
    monkeypatch.setattr(rest_api, 'HISTORY_PAGE_LIMIT', 2)
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            for _ in range(3):
                await feed.place_order('SOL-USDC', BUY, MARKET, D('1'))
            fills = await feed.trade_history('SOL-USDC')
        finally:
            await feed.rest.close()
        truth = sim.account.engine.fill_history(API_KEY, ascending=True)
    assert len(truth) >= 3
    assert [f.id for f in fills] == [str(t.trade_id) for t in truth]
    assert feed.rest.stats.requests >= 3 + len(truth) // 2


@pytest.mark.parametrize('kwargs,code', [
    (dict(side=BUY, order_type=LIMIT, amount=D('1'), price=D('1')), 'INVALID_PRICE'),
    (dict(side=BUY, order_type=MARKET, amount=D('100000000')), 'INSUFFICIENT_FUNDS'),
    (dict(side=BUY, order_type=LIMIT, amount=D('0.0000001'), price=D('100')), 'INVALID_QUANTITY'),
])
async def test_a_rejected_order_raises_with_the_exchange_code(kwargs, code):
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            with pytest.raises(BackpackRequestError) as err:
                await feed.place_order('SOL-USDC', **kwargs)
        finally:
            await feed.rest.close()
        assert sim.account.engine.open_orders(API_KEY) == []
    assert err.value.code == code and err.value.status == 400
    assert err.value.body and code in err.value.body


async def test_time_in_force_and_client_ids_reach_the_exchange():
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            best_ask, top_size = (D(x) for x in sim.book(BASE)['asks'][0])
            ioc = await feed.place_order('SOL-USDC', BUY, LIMIT, D('1'), best_ask, time_in_force=IMMEDIATE_OR_CANCEL,
                                         client_order_id='7')
            # More than the best level holds, at its price: a fill-or-kill that cannot fill.
            fok = await feed.place_order('SOL-USDC', BUY, LIMIT, top_size + 1, best_ask, time_in_force=FILL_OR_KILL)
        finally:
            await feed.rest.close()
    assert ioc.raw['timeInForce'] == 'IOC' and ioc.client_order_id == '7' and ioc.status == FILLED
    assert fok.raw['timeInForce'] == 'FOK' and fok.status == EXPIRED and fok.remaining == top_size + 1


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(side='long', order_type=LIMIT, amount=1, price=1), ValueError, 'side'),
    (dict(side=BUY, order_type='stop', amount=1, price=1), UnsupportedTradingOption, 'LIMIT or MARKET'),
    (dict(side=BUY, order_type=LIMIT, amount=1), ValueError, 'needs a price'),
    (dict(side=BUY, order_type=MARKET, amount=1, price=1), ValueError, 'no price'),
    (dict(side=BUY, order_type=LIMIT, amount=0, price=1), ValueError, 'positive'),
    (dict(side=BUY, order_type=LIMIT, amount='x', price=1), ValueError, 'number'),
    (dict(side=BUY, order_type=LIMIT, amount=1, price=1, time_in_force='GTD'), UnsupportedTradingOption, 'time_in'),
    (dict(side=BUY, order_type=MARKET, amount=1, post_only=True), ValueError, 'post-only'),
    (dict(side=BUY, order_type=LIMIT, amount=1, price=1, client_order_id=2 ** 32), ValueError, 'client_order_id'),
])
async def test_invalid_orders_are_refused_before_any_request(kwargs, error, match):
    async with BackpackSimulator(markets=[BASE], rate=0) as sim:
        feed = feed_for(sim, keys=True)
        try:
            with pytest.raises(error, match=match):
                await feed.place_order('SOL-USDC', **kwargs)
        finally:
            await feed.rest.close()
        assert feed.rest.stats.requests == 0
