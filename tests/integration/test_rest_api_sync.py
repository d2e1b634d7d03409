"""The ``*_sync`` twins of the REST methods, as a script calls them: no event loop of its own.

The simulator runs on a thread of its own (``sim_thread.SimulatorThread``), since a sync call
blocks the calling thread. One test also calls them from inside a running event loop, and one
checks that they leave the feed's own REST client untouched for the async calls that follow.
"""
from __future__ import annotations

import asyncio
import base64
from decimal import Decimal as D

import aiohttp
import pytest
from cryptofeed.exchanges.backpack.core.defines import BUY, CANCELLED, FILLED, LIMIT, MARKET, OPEN, SELL
from cryptofeed.exchanges.backpack.core.records import Candle, OrderBook

from cryptofeed.exchanges.backpack import BackpackAuthError, BackpackConfigError, BackpackFeed, BackpackRequestError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner

from tests.integration.sim_thread import SimulatorThread

SECRET = base64.b64encode(bytes([9]) * 32).decode()
API_KEY = BackpackSigner(SECRET).public_key
BASE = 'SOL_USDC'
PERP = 'SOL_USDC_PERP'


def feed_for(sim, keys: bool = True) -> BackpackFeed:
    config = {'rest_url': sim.rest_url, 'ws_url': sim.ws_url}
    if keys:
        config['auth'] = {'private_key': SECRET}
    return BackpackFeed(config=config)


@pytest.fixture(scope='module')
def history_sim():
    with SimulatorThread(markets=[BASE, PERP], rate=100, history_s=1800, history_updates=30000,
                         mark_interval=3600) as pair:
        yield pair


@pytest.fixture
def still_sim():
    with SimulatorThread(markets=[BASE, PERP], rate=0) as pair:
        yield pair


def test_trades_sync_equals_the_truth(history_sim):
    sim, run = history_sim
    feed = feed_for(sim, keys=False)
    truth = run(lambda: sim.trades(BASE))
    start_ms, end_ms = truth[100]['timestamp_us'] // 1000, truth[-100]['timestamp_us'] // 1000
    pages = list(feed.trades_sync('SOL-USDC', start=start_ms / 1000, end=end_ms / 1000))
    want = [(t['id'], D(t['price']), t['side'].lower(), t['timestamp_us'] // 1000) for t in truth
            if start_ms <= t['timestamp_us'] // 1000 <= end_ms]
    got = [(t['id'], t['price'], t['side'], round(t['timestamp'] * 1000)) for page in pages for t in page]
    assert len(pages) >= 2 and got == want
    assert feed.rest.session is None   # the sync call used a fork with its own, closed session


def test_trades_sync_can_stop_early(history_sim):
    sim, run = history_sim
    feed = feed_for(sim, keys=False)
    truth = run(lambda: sim.trades(BASE))
    start, end = truth[0]['timestamp_us'] // 1000 / 1000, truth[-1]['timestamp_us'] / 1e6
    pages = feed.trades_sync('SOL-USDC', start=start, end=end)
    first = next(pages)
    pages.close()   # closes the async generator, the forked client and the private loop
    assert first[0]['id'] == truth[0]['id']


def test_candles_sync_and_market_data(history_sim):
    sim, run = history_sim
    feed = feed_for(sim, keys=False)
    truth = run(lambda: sim.trades(BASE))
    start, end = truth[0]['timestamp_us'] / 1e6, truth[-1]['timestamp_us'] / 1e6
    candles = [c for page in feed.candles_sync('SOL-USDC', start, end, interval='5m') for c in page]
    assert all(isinstance(c, Candle) for c in candles) and len(candles) >= 6
    for candle in candles[:-1]:   # the last one may still be trading
        assert candle.volume == sum(D(t['quantity']) for t in truth
                                    if candle.start <= t['timestamp_us'] // 1_000_000 < candle.stop)
    book = feed.l2_book_sync('SOL-USDC')
    ticker = feed.ticker_sync('SOL-USDC')
    assert isinstance(book, OrderBook) and ticker['bid'] < ticker['ask']
    # Every perp trade moves the open interest: the market stands still while the answer is
    # compared with the truth, or a trade between the two reads makes them differ.
    run(sim.pause)
    try:
        funding = feed.funding_sync('SOL-USDC-PERP')
        oi = feed.open_interest_sync('SOL-USDC-PERP')
        assert funding.rate == run(lambda: sim.model.funding_rate(PERP))
        assert oi.open_interest == run(lambda: sim.model.open_interest(PERP))
    finally:
        run(sim.resume)


def test_an_order_round_trip_sync(still_sim):
    sim, run = still_sim
    feed = feed_for(sim)
    best_bid = D(run(lambda: sim.book(BASE))['bids'][0][0])
    order = feed.place_order_sync('SOL-USDC', BUY, LIMIT, D('1'), best_bid - 1)
    assert order.status == OPEN
    assert [o.id for o in feed.orders_sync('SOL-USDC')] == [order.id]
    assert feed.order_status_sync(order.id).status == OPEN
    assert feed.cancel_order_sync(order.id, 'SOL-USDC').status == CANCELLED
    assert feed.order_status_sync(order.id, 'SOL-USDC').status == CANCELLED

    filled = feed.place_order_sync('SOL-USDC-PERP', SELL, MARKET, D('4'))
    assert filled.status == FILLED
    assert [(p.symbol, p.position) for p in feed.positions_sync()] == [('SOL-USDC-PERP', D('-4'))]
    assert feed.positions_sync('SOL-USDC') == [] and len(feed.positions_sync('SOL-USDC-PERP')) == 1
    fills = feed.trade_history_sync('SOL-USDC-PERP')
    assert sum(f.amount for f in fills) == 4 and {f.order_id for f in fills} == {filled.id}
    balances = {b.currency: (b.balance, b.reserved) for b in feed.balances_sync()}
    capital = run(lambda: sim.account.balances(API_KEY))
    assert balances == {a: (D(r['available']), D(r['locked'])) for a, r in capital.items()}
    with pytest.raises(BackpackRequestError) as err:
        feed.place_order_sync('SOL-USDC', BUY, LIMIT, D('1'), D('1'))
    assert err.value.code == 'INVALID_PRICE'
    assert feed.rest.session is None


def test_sync_account_calls_without_keys(still_sim):
    sim, _ = still_sim
    with pytest.raises(BackpackAuthError, match='auth.private_key'):
        feed_for(sim, keys=False).balances_sync()


async def test_sync_calls_work_inside_a_running_loop_and_leave_the_async_client_alone(still_sim):
    sim, _ = still_sim
    feed = feed_for(sim)
    try:
        before = await feed.balances()          # the feed's own client, on this loop
        session = feed.rest.session
        during = feed.balances_sync()           # runs on a thread of its own: this loop is busy
        assert feed.rest.session is session and not session.closed
        after = await feed.balances()
    finally:
        await feed.rest.close()
    assert before == during == after
    assert asyncio.get_running_loop().is_running()


async def test_sync_calls_refuse_a_client_with_an_injected_session(still_sim):
    """Its connector decides the route (a proxy, say); a session of the fork's own would bypass it."""
    sim, _ = still_sim
    async with aiohttp.ClientSession() as session:
        client = BackpackRestClient(sim.rest_url, session=session)
        feed = BackpackFeed(config={'rest_url': sim.rest_url}, rest_client=client)
        with pytest.raises(BackpackConfigError, match='async methods'):
            feed.ticker_sync('SOL-USDC')
        assert (await feed.ticker('SOL-USDC'))['bid'] is not None
        assert client.stats.requests == 1
