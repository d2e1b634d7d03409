"""Every market, listings followed, runtime add/remove, no idle feed: a real FeedHandler running
BackpackFeed against the simulator, compared with the simulator's truth."""
from __future__ import annotations

from decimal import Decimal

import pytest

from cryptofeed import FeedHandler
from cryptofeed.exchanges.backpack.core.defines import FUNDING, L2_BOOK, OPEN_INTEREST, TICKER, TRADES
from cryptofeed.exchanges.backpack import CRYPTOFEED_LINE, BackpackConfigError, BackpackFeed
from cryptofeed.exchanges.backpack.simulator.markets import DEFAULT_SYMBOLS
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import (
    FH_CONFIG, Collector, delivered_trade_ids, running_feed, sim_config, start_handler, stop_handler,
    truth_trade_ids_from, wait_book_converged, wait_until,
)

ALL_NORMALIZED = sorted(s.replace('_', '-') for s in DEFAULT_SYMBOLS)


def _exchange(symbol: str) -> str:
    return symbol.replace('-', '_')


async def _trades_match_truth(collector, sim, symbol: str, feed=None) -> None:
    """Every trade from the first delivered one, once, in order (the market is paused)."""
    truth = sim.trades(_exchange(symbol))
    try:
        await wait_until(lambda: delivered_trade_ids(collector, symbol)[-1:] == [truth[-1]['id']], timeout=15)
    except AssertionError:
        state = feed._trade.state().get(symbol) if feed is not None else None
        raise AssertionError(f'{symbol}: last trade delivered {delivered_trade_ids(collector, symbol)[-3:]}, '
                             f'truth {[t["id"] for t in truth[-3:]]}, sequencer {state}') from None
    ids = delivered_trade_ids(collector, symbol)
    assert ids == truth_trade_ids_from(sim, _exchange(symbol), ids[0])


async def test_symbols_all_subscribes_every_open_market_and_each_book_and_trade_stream_matches_the_truth():
    async with BackpackSimulator(seed=11, rate=600) as sim:
        collector = Collector()
        async with running_feed(sim, 'all', [TRADES, L2_BOOK, FUNDING], collector,
                                streams_per_connection=7) as feed:
            await wait_until(lambda: feed.followed_symbols == ALL_NORMALIZED, timeout=10)
            # 9 markets x (trade, depth) + 4 perps x markPrice = 22 streams: 4 connections of <= 7
            conns = [c for c in feed._public]
            assert sorted(len(c.streams) for c in conns) == [1, 7, 7, 7]
            assert {s.name for c in conns for s in c.streams if s.kind == 'markPrice'} == {
                'markPrice.SOL_USDC_PERP', 'markPrice.BTC_USDC_PERP', 'markPrice.ETH_USDC_PERP',
                'markPrice.kPEPE_USDC_PERP'}
            await wait_until(lambda: all(delivered_trade_ids(collector, s) and feed._book.books[s].synced
                                         for s in ALL_NORMALIZED), timeout=20)
            sim.pause()
            for symbol in ALL_NORMALIZED:
                await wait_book_converged(feed, collector, sim, symbol, _exchange(symbol), timeout=15)
                await _trades_match_truth(collector, sim, symbol, feed)
            assert {f.symbol for f in collector.items[FUNDING]} <= {s for s in ALL_NORMALIZED if s.endswith('PERP')}
            snapshot = feed.metrics_snapshot()
            assert snapshot['subscribed_symbols'] == len(ALL_NORMALIZED) and snapshot['stopped'] is None
            assert snapshot['dropped'] == 0 and snapshot['resyncs'] == 0


async def test_market_types_and_shard_narrow_symbols_all():
    from cryptofeed.exchanges.backpack.core.sharding import shard_of
    async with BackpackSimulator(seed=12, rate=200) as sim:
        collector = Collector()
        async with running_feed(sim, 'all', [TRADES], collector, market_types='perp', shard=(1, 2)) as feed:
            expected = sorted(s for s in ALL_NORMALIZED if s.endswith('-PERP') and shard_of(s, 2) == 1)
            assert expected
            await wait_until(lambda: feed.followed_symbols == expected, timeout=10)
            await wait_until(lambda: {t.symbol for t in collector.items[TRADES]} == set(expected), timeout=15)


async def test_add_and_remove_symbols_while_running_without_disturbing_the_others():
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC', 'ETH_USDC_PERP'], seed=13, rate=600,
                                 open_interest_interval=0.5) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK, TICKER, OPEN_INTEREST], collector,
                                streams_per_connection=4) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced and len(collector.sequences['SOL-USDC']) > 20,
                             timeout=15)
            before = len(collector.sequences['SOL-USDC'])
            resyncs = feed.metrics_snapshot()['resyncs']
            with pytest.raises(BackpackConfigError, match='did you mean BTC-USDC'):
                await feed.add_symbols(['BTC-USD'])
            assert await feed.add_symbols(['BTC-USDC', 'ETH-USDC-PERP']) == ['BTC-USDC', 'ETH-USDC-PERP']
            newest = {s: sim.trades(_exchange(s))[-1]['id'] for s in ('BTC-USDC', 'ETH-USDC-PERP')}
            # SOL-USDC: 3 streams on the first connection (room for 1 more); 7 new streams: 1 there,
            # then 2 new connections of 4 and 2
            assert [len(c.streams) for c in feed._public] == [4, 4, 2]
            assert len(feed.connection_handlers) == 3
            await wait_until(lambda: all(len(collector.sequences[s]) > 10 for s in ('BTC-USDC', 'ETH-USDC-PERP'))
                             and collector.items[OPEN_INTEREST], timeout=20)
            sim.pause()
            for symbol in ('SOL-USDC', 'BTC-USDC', 'ETH-USDC-PERP'):
                await wait_book_converged(feed, collector, sim, symbol, _exchange(symbol), timeout=15)
                await _trades_match_truth(collector, sim, symbol, feed)
            for symbol in ('BTC-USDC', 'ETH-USDC-PERP'):
                # every trade printed after add_symbols returned was delivered
                assert delivered_trade_ids(collector, symbol)[0] <= newest[symbol] + 1
                assert collector.full_books[symbol] == 1
            # SOL-USDC was not disturbed: one full book, then deltas in sequence, no resync
            sequences = collector.sequences['SOL-USDC']
            assert collector.full_books['SOL-USDC'] == 1 and len(sequences) > before
            assert sequences == sorted(sequences)
            assert feed.metrics_snapshot()['resyncs'] == resyncs == 0
            sim.resume()

            assert await feed.remove_symbols(['BTC-USDC']) == ['BTC-USDC']
            assert 'BTC-USDC' not in feed._book.books and 'BTC-USDC' not in feed._trade.sequencers
            assert 'BTC-USDC' not in feed.metrics_snapshot()['snapshot_age_s']
            with pytest.raises(BackpackConfigError, match='not subscribed on this feed'):
                await feed.remove_symbols(['BTC-USDC'])
            count = len(collector.sequences['BTC-USDC'])
            sol = len(collector.sequences['SOL-USDC'])
            await wait_until(lambda: len(collector.sequences['SOL-USDC']) > sol + 20, timeout=10)
            assert len(collector.sequences['BTC-USDC']) == count  # nothing more once unsubscribed
            assert not [s for c in feed._public for s in c.streams if s.symbol == 'BTC-USDC']
            snapshot = feed.metrics_snapshot()
            assert (snapshot['symbols_added'], snapshot['symbols_removed']) == (2, 1)


async def test_a_feed_whose_symbols_are_all_unlisted_stops_with_the_error_and_health_says_so():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=14, rate=100) as sim:
        handler = FeedHandler(config=FH_CONFIG)
        feed = BackpackFeed(config=sim_config(sim), symbols=['SOL-USD'], channels=[TRADES],
                            callbacks=Collector().callbacks([TRADES]))
        handler.add_feed(feed)
        await start_handler(handler)
        try:
            await wait_until(lambda: feed.metrics_snapshot()['stopped'] is not None, timeout=10)
            report = feed.health()
            assert report.status == 'unhealthy'
            assert any('none of the requested symbols is listed' in r and 'did you mean SOL-USDC' in r
                       for r in report.reasons)
            await wait_until(lambda: sim.connections == 0, timeout=10)
            if CRYPTOFEED_LINE >= 3:  # 3.x: the feed's run ends with the error
                await wait_until(lambda: handler._test_task.done(), timeout=10)
                with pytest.raises(BaseException) as caught:
                    handler._test_task.result()
                assert 'SOL-USD is not listed' in repr(caught.value.exceptions if hasattr(
                    caught.value, 'exceptions') else caught.value)
        finally:
            if CRYPTOFEED_LINE < 3:
                await stop_handler(handler)


async def test_symbols_all_that_keeps_no_market_stops_with_the_error():
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC'], seed=15, rate=100) as sim:
        handler = FeedHandler(config=FH_CONFIG)
        feed = BackpackFeed(config=sim_config(sim), symbols='all', market_types='perp', channels=[TRADES],
                            callbacks=Collector().callbacks([TRADES]))
        handler.add_feed(feed)
        await start_handler(handler)
        try:
            await wait_until(lambda: feed.metrics_snapshot()['stopped'] is not None, timeout=10)
            assert feed.metrics_snapshot()['stopped'] == (
                "symbols='all' found no open perp markets among the 2 markets of /api/v1/markets")
            assert feed.health().status == 'unhealthy'
            assert sim.connections == 0 and feed.connection_handlers == []
            if CRYPTOFEED_LINE >= 3:
                await wait_until(lambda: handler._test_task.done(), timeout=10)
                assert handler._test_task.exception() is not None
        finally:
            if CRYPTOFEED_LINE < 3:
                await stop_handler(handler)


async def test_account_channels_follow_the_markets_the_feed_follows():
    from tests.integration.test_feed_private import place, private_config
    from cryptofeed.exchanges.backpack import BackpackConfig, FILLS, ORDER_INFO
    from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=16, rate=200, tls=True) as sim:
        collector = Collector()
        async with BackpackRestClient.from_config(BackpackConfig(**private_config(sim))) as trader, \
                running_feed(sim, 'all', [TRADES, ORDER_INFO, FILLS], collector, config=private_config(sim),
                             market_types=['perp']) as feed:
            await wait_until(lambda: feed.followed_symbols == ['SOL-USDC-PERP']
                             and feed.metrics_snapshot().get('account', {}).get('subscribes', 0) >= 1, timeout=15)
            for symbol in ('SOL_USDC', 'SOL_USDC_PERP'):
                await place(trader, symbol=symbol, side='Bid', orderType='Market', quantity='1')
            await wait_until(lambda: any(f.symbol == 'SOL-USDC-PERP' for f in collector.items[FILLS]), timeout=10)
            await feed.add_symbols(['SOL-USDC'])
            await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quantity='2')
            await wait_until(lambda: any(f.symbol == 'SOL-USDC' for f in collector.items[FILLS]), timeout=10)
            spot_fills = [f for f in collector.items[FILLS] if f.symbol == 'SOL-USDC']
            # the spot order placed before SOL-USDC was added is not delivered; the one after is
            assert {f.amount for f in spot_fills} == {Decimal('2')}
            assert {o.symbol for o in collector.items[ORDER_INFO]} == {'SOL-USDC-PERP', 'SOL-USDC'}


async def test_an_unlisted_symbol_is_reported_with_close_matches_while_the_listed_ones_stream():
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC'], seed=17, rate=300) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC', 'BTC-USD'], [TRADES, L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced and delivered_trade_ids(collector, 'SOL-USDC'),
                             timeout=15)
            snapshot = feed.metrics_snapshot()
            message = 'BTC-USD is not listed by Backpack (/api/v1/markets): did you mean BTC-USDC?'
            assert snapshot['unlisted_symbols'] == {'BTC-USD': message} and snapshot['stopped'] is None
            assert 'BTC-USD' not in snapshot['snapshot_age_s'] and feed.followed_symbols == ['SOL-USDC']
            report = feed.health()
            assert report.status == 'degraded' and report.reasons == (f'not subscribed: {message}',)
            await feed.add_symbols(['BTC-USDC'])  # the close match, added while running
            await wait_until(lambda: feed._book.books['BTC-USDC'].synced, timeout=15)
            assert feed.followed_symbols == ['BTC-USDC', 'SOL-USDC']
