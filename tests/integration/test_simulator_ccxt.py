"""An independent client against the simulator: ccxt.pro's backpack exchange, unmodified.

ccxt only gets the simulator's URLs in place of Backpack's. Its own market loading, order-book
synchronisation (deltas + ``/api/v1/depth`` snapshot) and trade parsing must then produce a
book and trades equal to the simulator's truth once the market is paused.
"""
from __future__ import annotations

import asyncio
import time

import ccxt.pro
import pytest

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator


def point_at(exchange, sim: BackpackSimulator) -> None:
    exchange.urls['api'] = {
        'public': sim.rest_url,
        'private': sim.rest_url,
        'ws': {'public': sim.ws_url, 'private': sim.ws_url},
    }


@pytest.fixture
async def backpack_pro():
    exchange = ccxt.pro.backpack({'enableRateLimit': False, 'newUpdates': False})
    try:
        yield exchange
    finally:
        await exchange.close()


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        await asyncio.sleep(0.02)


async def test_ccxt_loads_the_simulated_markets(backpack_pro):
    async with BackpackSimulator(rate=0) as sim:
        point_at(backpack_pro, sim)
        markets = await backpack_pro.load_markets()
        assert {'SOL/USDC', 'BTC/USDC', 'SOL/USDC:USDC', 'BTC/USDC:USDC'} <= set(markets)
        perp = markets['SOL/USDC:USDC']
        assert perp['id'] == 'SOL_USDC_PERP' and perp['swap'] and perp['linear'] and perp['contractSize'] == 1
        assert perp['precision']['price'] == 0.01 and perp['active']
        assert markets['SPCX.US/USDC']['stock'] is True
        ticker = await backpack_pro.fetch_ticker('SOL/USDC')
        assert ticker['symbol'] == 'SOL/USDC' and ticker['last'] is not None
        book = await backpack_pro.fetch_order_book('SOL/USDC', 5)
        assert len(book['bids']) == 5 and book['bids'][0][0] < book['asks'][0][0]
        assert book['nonce'] == sim.book('SOL_USDC')['sequence']


async def test_ccxt_watch_order_book_and_trades_equal_the_truth(backpack_pro):
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=1500) as sim:
        point_at(backpack_pro, sim)
        await backpack_pro.load_markets()
        book = await asyncio.wait_for(backpack_pro.watch_order_book('SOL/USDC'), 10)
        perp_book = await asyncio.wait_for(backpack_pro.watch_order_book('SOL/USDC:USDC'), 10)
        trades = await asyncio.wait_for(backpack_pro.watch_trades('SOL/USDC'), 10)
        deadline = time.monotonic() + 10
        while len(backpack_pro.trades['SOL/USDC']) < 30:
            assert time.monotonic() < deadline
            await asyncio.wait_for(backpack_pro.watch_trades('SOL/USDC'), 5)
        sim.pause()
        truth = sim.book('SOL_USDC')
        perp_truth = sim.book('SOL_USDC_PERP')
        stored = backpack_pro.orderbooks['SOL/USDC']
        perp_stored = backpack_pro.orderbooks['SOL/USDC:USDC']
        await wait_for(lambda: stored['nonce'] == truth['sequence'] and perp_stored['nonce'] == perp_truth['sequence'],
                       5, 'ccxt to apply the last depth frames')
        for ours, theirs in ((truth, stored), (perp_truth, perp_stored)):
            assert [[float(p), float(q)] for p, q in ours['bids']] == [list(level) for level in theirs['bids']]
            assert [[float(p), float(q)] for p, q in ours['asks']] == [list(level) for level in theirs['asks']]
        assert book['symbol'] == 'SOL/USDC' and perp_book['symbol'] == 'SOL/USDC:USDC'

        truth_trades = {t['id']: t for t in sim.trades('SOL_USDC')}
        received = list(backpack_pro.trades['SOL/USDC'])
        assert trades and len(received) >= 30
        ids = [int(t['id']) for t in received]
        assert ids == list(range(ids[0], ids[0] + len(ids))), 'every trade, in order'
        await wait_for(lambda: int(backpack_pro.trades['SOL/USDC'][-1]['id']) == max(truth_trades), 5,
                       'the last trade to reach ccxt')
        for t in backpack_pro.trades['SOL/USDC']:
            ref = truth_trades[int(t['id'])]
            assert t['price'] == float(ref['price']) and t['amount'] == float(ref['quantity'])
            assert t['side'] == ref['side'].lower() and t['symbol'] == 'SOL/USDC'
