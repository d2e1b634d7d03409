"""``CcxtBackpackFeed`` under a real ``FeedHandler``, against the simulator over real sockets.

ccxt.pro's own client does the talking (WebSocket, REST snapshot, signing); these tests check
what reaches the cryptofeed callbacks: books equal to the simulator's truth, every trade of the
window in order, tickers equal to the top of the book, private channels with a key, REST-only
mode, reconnects, 429 and 451, and a clean shutdown.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from decimal import Decimal

from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import BALANCES, FILLED, L2_BOOK, OPEN, ORDER_INFO, POSITIONS, SHORT, TICKER, TRADES

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed

from tests.integration.proxy_servers import Socks5Server
from tests.integration.feed_harness import (
    Collector, delivered_trade_ids, running_feed, sim_config, truth_levels, truth_trade_ids_from, wait_until,
)

PUBLIC = [TRADES, L2_BOOK, TICKER]
SECRET = base64.b64encode(bytes([7]) * 32).decode()


def running_ccxt_feed(sim, symbols, channels, collector: Collector, **kwargs):
    return running_feed(sim, symbols, channels, collector, feed_class=CcxtBackpackFeed, **kwargs)


def replica_matches(collector, sim, symbol, exchange_symbol) -> bool:
    truth = sim.book(exchange_symbol)
    return (bool(collector.sequences[symbol]) and collector.sequences[symbol][-1] == truth['sequence']
            and collector.replica_levels(symbol) == truth_levels(truth))


async def assert_converged(feed, collector, sim, pairs, timeout=10.0):
    await wait_until(lambda: all(replica_matches(collector, sim, s, e) for s, e in pairs), timeout=timeout)
    for symbol, exchange_symbol in pairs:
        assert feed._books[symbol].levels() == truth_levels(sim.book(exchange_symbol))


def assert_trades_are_the_truth(collector, sim, symbol, exchange_symbol, minimum=20):
    ids = delivered_trade_ids(collector, symbol)
    assert len(ids) >= minimum
    assert ids == truth_trade_ids_from(sim, exchange_symbol, ids[0]), 'every trade after the first, once, in order'
    truth = {t['id']: t for t in sim.trades(exchange_symbol)}
    for trade in (t for t in collector.items[TRADES] if t.symbol == symbol):
        ref = truth[int(trade.id)]
        assert (trade.price, trade.amount) == (Decimal(ref['price']), Decimal(ref['quantity']))
        assert trade.side == ref['side'].lower() and trade.exchange == 'BACKPACK'


async def test_public_channels_over_tls_equal_the_truth():
    pairs = [('SOL-USDC', 'SOL_USDC'), ('SOL-USDC-PERP', 'SOL_USDC_PERP')]
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=41, rate=400, tls=True) as sim:
        collector = Collector()
        async with running_ccxt_feed(sim, [s for s, _ in pairs], PUBLIC, collector) as feed:
            await wait_until(lambda: all(len(delivered_trade_ids(collector, s)) >= 20 for s, _ in pairs), timeout=20)
            sim.pause()
            await assert_converged(feed, collector, sim, pairs)
            await wait_until(lambda: all(
                delivered_trade_ids(collector, s)[-1] == sim.trades(e)[-1]['id'] for s, e in pairs), timeout=5)
            for symbol, exchange_symbol in pairs:
                assert collector.full_books[symbol] == 1, 'one full book, then deltas'
                assert_trades_are_the_truth(collector, sim, symbol, exchange_symbol)
                truth = sim.book(exchange_symbol)
                await wait_until(lambda: [(t.bid, t.ask) for t in collector.items[TICKER] if t.symbol == symbol][-1:]
                                 == [(Decimal(truth['bids'][0][0]), Decimal(truth['asks'][0][0]))], timeout=5)
            snap = feed.metrics_snapshot()
            assert snap['books_out_of_sync'] == [] and snap['messages'][TRADES] >= 40
            assert snap['reconnects'] == 0 and feed.health().status == 'healthy'


async def test_a_dropped_connection_resynchronises_the_book():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=42, rate=300) as sim:
        collector = Collector()
        async with running_ccxt_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], collector, snapshot_interval=None,
                                     reconnect_backoff_base_s=0.05, reconnect_backoff_max_s=0.5) as feed:
            await wait_until(lambda: collector.full_books['SOL-USDC'] == 1 and len(collector.sequences['SOL-USDC']) > 20,
                             timeout=15)
            sim.inject({'fault': 'drop_connections'})
            await wait_until(lambda: collector.full_books['SOL-USDC'] == 2, timeout=15)
            await asyncio.sleep(0.5)
            sim.pause()
            await assert_converged(feed, collector, sim, [('SOL-USDC', 'SOL_USDC')])
            snap = feed.metrics_snapshot()
            assert snap['reconnects'] == 1 and snap['resyncs'] >= 1


async def test_snapshot_interval_rebuilds_every_book_from_a_new_snapshot():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=43, rate=300) as sim:
        collector = Collector()
        async with running_ccxt_feed(sim, ['SOL-USDC'], [L2_BOOK], collector, snapshot_interval=1.0) as feed:
            await wait_until(lambda: collector.full_books['SOL-USDC'] >= 3, timeout=20)
            sim.pause()
            await assert_converged(feed, collector, sim, [('SOL-USDC', 'SOL_USDC')])
            snap = feed.metrics_snapshot()
            assert snap['scheduled_resyncs'] >= 2 and snap['resyncs'] == 0, 'planned refreshes are not symptoms'


async def test_rest_only_polls_books_trades_and_tickers_without_a_websocket():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=44, rate=100) as sim:
        collector = Collector()
        await wait_until(lambda: len(sim.trades('SOL_USDC')) >= 5, timeout=5)
        printed_before_start = sim.trades('SOL_USDC')[-1]['id']
        async with running_ccxt_feed(sim, ['SOL-USDC'], PUBLIC, collector, rest_only=True, snapshot_interval=0.2,
                                     poll_interval=0.2) as feed:
            await wait_until(lambda: len(collector.sequences['SOL-USDC']) >= 3
                             and len(delivered_trade_ids(collector, 'SOL-USDC')) >= 10, timeout=15)
            assert sim.connections == 0
            sim.pause()
            await assert_converged(feed, collector, sim, [('SOL-USDC', 'SOL_USDC')], timeout=5)
            await wait_until(lambda: delivered_trade_ids(collector, 'SOL-USDC')[-1] == sim.trades('SOL_USDC')[-1]['id'],
                             timeout=5)
            assert_trades_are_the_truth(collector, sim, 'SOL-USDC', 'SOL_USDC', minimum=10)
            assert delivered_trade_ids(collector, 'SOL-USDC')[0] > printed_before_start, 'no history replayed'
            best = sim.book('SOL_USDC')
            await wait_until(lambda: (collector.items[TICKER][-1].bid, collector.items[TICKER][-1].ask)
                             == (Decimal(best['bids'][0][0]), Decimal(best['asks'][0][0])), timeout=5)


async def test_429_waits_for_retry_after_and_451_is_reported_once_then_retried(caplog):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=45, rate=50) as sim:
        collector = Collector()
        sim.inject({'fault': 'http_status', 'status': 429, 'count': 1, 'path': '/api/v1/depth', 'retry_after': 1})
        with caplog.at_level(logging.WARNING, logger=package_log.root()):
            async with running_ccxt_feed(sim, ['SOL-USDC'], [L2_BOOK], collector, rest_only=True,
                                         snapshot_interval=0.2, region_retry_s=0.5) as feed:
                await wait_until(lambda: len(collector.sequences['SOL-USDC']) >= 1, timeout=10)
                assert feed.metrics_snapshot()['rest']['retries'] == 1
                sim.inject({'fault': 'http_status', 'status': 451, 'count': 2, 'path': '/api/v1/depth'})
                await wait_until(lambda: feed.metrics.rest_failures == 2, timeout=10)
                sim.pause()
                await assert_converged(feed, collector, sim, [('SOL-USDC', 'SOL_USDC')], timeout=5)
        assert sum('rate limited (HTTP 429); waiting 1.00 s' in r.getMessage() for r in caplog.records) == 1
        region = [r for r in caplog.records if 'HTTP 451' in r.getMessage()]
        assert len(region) == 1 and region[0].levelno == logging.ERROR and 'proxy' in region[0].getMessage()


async def test_private_channels_with_a_key():
    key = BackpackSigner(SECRET).public_key
    channels = [ORDER_INFO, POSITIONS, BALANCES]
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=46, rate=0) as sim:
        collector = Collector()
        config = sim_config(sim, enable_private_channels=True, auth={'private_key': SECRET})
        async with running_ccxt_feed(sim, ['SOL-USDC', 'SOL-USDC-PERP'], channels, collector, config=config) as feed:
            await wait_until(lambda: {b.currency for b in collector.items[BALANCES]} >= {'USDC', 'SOL'}, timeout=10)
            assert next(b for b in collector.items[BALANCES] if b.currency == 'USDC').balance == Decimal('100000')
            await asyncio.sleep(0.5)  # the private subscriptions are on the wire
            sim.account.place_order(key, {'symbol': 'SOL_USDC_PERP', 'side': 'Ask', 'orderType': 'Market',
                                          'quantity': '2'})
            resting = sim.account.place_order(key, {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit',
                                                    'price': '95', 'quantity': '1', 'clientId': 5})
            await wait_until(lambda: len(collector.items[ORDER_INFO]) >= 2 and collector.items[POSITIONS], timeout=10)
            by_id = {o.id: o for o in collector.items[ORDER_INFO]}
            assert by_id[resting['id']].status == OPEN and by_id[resting['id']].client_order_id == '5'
            assert any(o.symbol == 'SOL-USDC-PERP' and o.status == FILLED for o in collector.items[ORDER_INFO])
            position = collector.items[POSITIONS][-1]
            assert (position.symbol, position.side, position.position) == ('SOL-USDC-PERP', SHORT, Decimal(-2))
            await wait_until(lambda: any(b.currency == 'USDC' and b.reserved == Decimal(95)
                                         for b in collector.items[BALANCES]), timeout=10)
            assert feed.metrics_snapshot()['server_errors'] == 0


async def test_shutdown_closes_the_ccxt_client_and_cancels_every_task():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=47, rate=200) as sim:
        collector = Collector()
        before = set(asyncio.all_tasks())
        async with running_ccxt_feed(sim, ['SOL-USDC'], PUBLIC, collector) as feed:
            await wait_until(lambda: collector.full_books['SOL-USDC'] == 1, timeout=15)
            assert sim.connections == 1 and len(feed._tasks) == 3
        await asyncio.sleep(0.1)
        assert not feed._tasks and feed.client.session is None and not feed.client.clients
        assert set(asyncio.all_tasks()) - before <= {asyncio.current_task()}
        await wait_until(lambda: sim.connections == 0, timeout=5)


async def test_rest_and_websocket_through_a_socks5_proxy_with_tls():
    async with Socks5Server() as socks, BackpackSimulator(markets=['SOL_USDC'], seed=48, rate=200, tls=True) as sim:
        collector = Collector()
        config = sim_config(sim, proxies={'url': socks.url})
        async with running_ccxt_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], collector, config=config) as feed:
            # ccxt asks for its snapshot only after 10 depth frames: wait for the book before pausing.
            await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) >= 5
                             and collector.full_books['SOL-USDC'] == 1, timeout=20)
            sim.pause()
            await assert_converged(feed, collector, sim, [('SOL-USDC', 'SOL_USDC')])
        # REST (markets, the depth snapshot) and the WebSocket each went through the relay.
        assert len(socks.connects) >= 2 and set(socks.connects) == {('127.0.0.1', sim.port)}


async def test_a_symbol_backpack_does_not_list_is_reported_once_and_left_out(caplog):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=49, rate=200) as sim:
        collector = Collector()
        with caplog.at_level(logging.ERROR, logger=package_log.root()):
            async with running_ccxt_feed(sim, ['SOL-USDC', 'DOGE-USDC'], [TRADES, L2_BOOK], collector) as feed:
                await wait_until(lambda: collector.full_books['SOL-USDC'] == 1
                                 and len(delivered_trade_ids(collector, 'SOL-USDC')) >= 5, timeout=15)
                assert len(feed._tasks) == 2 and feed.metrics_snapshot()['books_out_of_sync'] == []
        errors = [r.getMessage() for r in caplog.records if 'DOGE-USDC is not listed by Backpack' in r.getMessage()]
        assert len(errors) == 2 and all(r.levelno == logging.ERROR for r in caplog.records if 'DOGE' in r.getMessage())
