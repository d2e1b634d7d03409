"""Listings followed while running: a real FeedHandler running BackpackFeed(symbols='all') against a
simulator that lists and delists (the cold start of hundreds of markets: test_feed_scale.py)."""
from __future__ import annotations

from cryptofeed.exchanges.backpack.core.defines import FUNDING, L2_BOOK, TRADES
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import (
    Collector, delivered_trade_ids, running_feed, sim_config, truth_trade_ids_from, wait_book_converged, wait_until,
)


def _exchange(symbol: str) -> str:
    return symbol.replace('-', '_')


def _stream_count(sim) -> int:
    return sim.stats()['subscriptions']


async def _converged(feed, collector, sim, symbols, timeout=20.0) -> None:
    """With the market paused: every book equals the truth, every trade from the first delivered
    one was delivered once, in order."""
    for symbol in symbols:
        await wait_book_converged(feed, collector, sim, symbol, _exchange(symbol), timeout=timeout)
        truth = sim.trades(_exchange(symbol))
        if truth:
            await wait_until(lambda: delivered_trade_ids(collector, symbol)[-1:] == [truth[-1]['id']], timeout=timeout)
            ids = delivered_trade_ids(collector, symbol)
            assert ids == truth_trade_ids_from(sim, _exchange(symbol), ids[0]), symbol


async def test_a_listing_is_subscribed_and_synced_and_a_delisting_dropped_without_disturbing_the_others():
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC', 'ETH_USDC_PERP'], seed=21, rate=600) as sim:
        collector = Collector()
        config = sim_config(sim, listing_poll_s=0.2)
        async with running_feed(sim, 'all', [TRADES, L2_BOOK, FUNDING], collector, config=config) as feed:
            start = ['BTC-USDC', 'ETH-USDC-PERP', 'SOL-USDC']
            await wait_until(lambda: feed.followed_symbols == start
                             and all(feed._book.books[s].synced for s in start), timeout=15)
            sol_before = len(collector.sequences['SOL-USDC'])

            sim.list_market('NEWCOIN_USDC_PERP')
            await wait_until(lambda: 'NEWCOIN-USDC-PERP' in feed.followed_symbols, timeout=10)
            seen = sim.trades('NEWCOIN_USDC_PERP')  # printed by the time the feed follows it (or a bit later)
            await wait_until(lambda: feed._book.books['NEWCOIN-USDC-PERP'].synced
                             and len(delivered_trade_ids(collector, 'NEWCOIN-USDC-PERP')) > 5
                             and any(f.symbol == 'NEWCOIN-USDC-PERP' for f in collector.items[FUNDING]), timeout=20)
            sim.pause()
            await _converged(feed, collector, sim, start + ['NEWCOIN-USDC-PERP'])
            # gap-free from the moment the feed saw the listing: nothing printed since is missing
            # (_converged: contiguous with the truth from the first one delivered)
            first = delivered_trade_ids(collector, 'NEWCOIN-USDC-PERP')[0]
            assert first <= (seen[-1]['id'] + 1 if seen else sim.trades('NEWCOIN_USDC_PERP')[0]['id'])
            # the others were not disturbed: one full book each, sequence numbers carrying on, no resync
            for symbol in start:
                sequences = collector.sequences[symbol]
                assert collector.full_books[symbol] == 1 and sequences == sorted(sequences), symbol
            assert len(collector.sequences['SOL-USDC']) > sol_before
            snapshot = feed.metrics_snapshot()
            assert snapshot['listings_added'] == 1 and snapshot['resyncs'] == 0
            sim.resume()

            streams = _stream_count(sim)
            sim.delist_market('BTC_USDC')
            await wait_until(lambda: 'BTC-USDC' not in feed.followed_symbols, timeout=10)
            assert 'BTC-USDC' not in feed._book.books and 'BTC-USDC' not in feed._trade.sequencers
            await wait_until(lambda: _stream_count(sim) == streams - 2, timeout=10)  # trade + depth unsubscribed
            assert 'BTC-USDC' not in feed.metrics_snapshot()['snapshot_age_s']
            assert feed.metrics_snapshot()['listings_removed'] == 1
            sol = len(collector.sequences['SOL-USDC'])
            await wait_until(lambda: len(collector.sequences['SOL-USDC']) > sol + 10, timeout=10)
            assert collector.full_books['SOL-USDC'] == 1  # still the same book, never resynchronised

            sim.list_market('BTC_USDC')  # opens again: followed again, from a fresh snapshot
            await wait_until(lambda: 'BTC-USDC' in feed.followed_symbols and feed._book.books['BTC-USDC'].synced,
                             timeout=10)
            assert feed.metrics_snapshot()['listings_added'] == 2
            assert feed.health().status != 'unhealthy'


async def test_a_symbol_unlisted_at_start_can_be_added_once_it_is_listed():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=23, rate=400) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC', 'NEWCOIN-USDC'], [TRADES, L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
            assert list(feed.metrics_snapshot()['unlisted_symbols']) == ['NEWCOIN-USDC']
            sim.list_market('NEWCOIN_USDC')
            assert await feed.add_symbols(['NEWCOIN-USDC']) == ['NEWCOIN-USDC']
            await wait_until(lambda: feed._book.books['NEWCOIN-USDC'].synced
                             and len(collector.sequences['NEWCOIN-USDC']) > 5, timeout=15)
            sim.pause()
            await _converged(feed, collector, sim, ['SOL-USDC', 'NEWCOIN-USDC'])
            assert feed.metrics_snapshot()['unlisted_symbols'] == {}
