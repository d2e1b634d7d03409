"""BackpackFeed through the simulator's faults: gaps, duplicates, reorders, dropped connections,
silent servers, HTTP 429/451/503 and malformed frames. The book must end equal to the truth and
every trade must be delivered exactly once, in order."""
from __future__ import annotations

import asyncio
import logging
import re

from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TRADES

from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.simulator.faults import HOSTILE_DEPTH_KINDS
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import (
    Collector, delivered_trade_ids, running_feed, truth_trade_ids_from, wait_book_converged, wait_until,
)

SYMBOLS = ['SOL-USDC', 'ETH-USDC']


def _assert_trades_exact(collector, sim, symbol):
    ids = delivered_trade_ids(collector, symbol)
    assert ids, f'no trades for {symbol}'
    assert ids == truth_trade_ids_from(sim, symbol.replace('-', '_'), ids[0])


async def _settle(feed, collector, sim, symbols=SYMBOLS):
    """Pause the market and wait for every book and trade stream to reach the truth."""
    await asyncio.sleep(0.3)
    sim.pause()
    for symbol in symbols:
        exchange_symbol = symbol.replace('-', '_')
        await wait_book_converged(feed, collector, sim, symbol, exchange_symbol, timeout=15)
        last = sim.trades(exchange_symbol)[-1]['id']
        await wait_until(lambda: delivered_trade_ids(collector, symbol)[-1:] == [last], timeout=15)
        _assert_trades_exact(collector, sim, symbol)


async def test_sequence_gaps_duplicates_and_reorders_resync_only_the_affected_book(caplog):
    caplog.set_level(logging.WARNING, logger=package_log.root())
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], seed=11, rate=400) as sim:
        collector = Collector()
        async with running_feed(sim, SYMBOLS, [L2_BOOK, TRADES], collector) as feed:
            await wait_until(lambda: all(feed._book.books[s].synced for s in SYMBOLS), timeout=10)
            eth_before = len(collector.sequences['ETH-USDC'])
            sim.inject({'fault': 'skip_sequence', 'symbol': 'SOL_USDC', 'count': 3})
            await wait_until(lambda: collector.full_books['SOL-USDC'] >= 2, timeout=10)
            sim.inject({'fault': 'duplicate', 'symbol': 'SOL_USDC', 'count': 5})
            sim.inject({'fault': 'reorder', 'symbol': 'ETH_USDC', 'count': 6})
            await asyncio.sleep(0.5)
            await _settle(feed, collector, sim)
            # Only SOL-USDC lost sync on the gap; ETH-USDC kept flowing with one full book, unless
            # the reorder itself (a real gap on the wire) forced a resync of ETH-USDC too.
            assert feed._book.books['SOL-USDC'].gaps >= 1
            assert len(collector.sequences['ETH-USDC']) > eth_before
            assert feed._book.books['SOL-USDC'].stale_dropped >= 1
            for symbol in SYMBOLS:
                seqs = collector.sequences[symbol]
                assert seqs == sorted(seqs), f'{symbol}: sequence numbers went backwards'
            snapshot = feed.metrics_snapshot()
            assert snapshot['gaps'] >= 1 and snapshot['resyncs'] >= 1
            # The log names the ids that broke the sequence: the last one applied and the frame's U/u.
            broken = [r.getMessage() for r in caplog.records if 'SOL-USDC depth sequence broken' in r.getMessage()]
            assert broken and 'None' not in broken[0]
            assert re.search(r'after update (\d+) the next frame must have U <= \d+, got U=\d+ u=\d+', broken[0])


async def test_dropped_connections_resubscribe_resync_and_backfill_every_missed_trade():
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], seed=12, rate=500) as sim:
        collector = Collector()
        async with running_feed(sim, SYMBOLS, [L2_BOOK, TRADES], collector,
                                reconnect_backoff_base_s=0.1, reconnect_backoff_max_s=0.5) as feed:
            await wait_until(lambda: all(delivered_trade_ids(collector, s) for s in SYMBOLS), timeout=10)
            for round_ in range(1, 4):
                sim.inject({'fault': 'drop_connections'})
                await wait_until(lambda: feed.metrics.reconnects >= round_, timeout=10)
                await asyncio.sleep(0.3)
            await _settle(feed, collector, sim)
            assert feed.metrics_snapshot()['backfilled_trades'] > 0
            assert all(collector.full_books[s] >= 2 for s in SYMBOLS)


async def test_a_ping_silent_server_is_detected_and_left_within_the_documented_bound():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=13, rate=50, ping_interval=30) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [TRADES], collector, ping_interval=0.3, ping_timeout=0.3,
                                reconnect_backoff_base_s=0.1, reconnect_backoff_max_s=0.2) as feed:
            await wait_until(lambda: feed.connection_handlers[0].connects == 1, timeout=10)
            sim.inject({'fault': 'silence_pings', 'duration': 5.0})
            loop = asyncio.get_running_loop()
            started = loop.time()
            await wait_until(lambda: feed.metrics.reconnects >= 1, timeout=5)
            # ping_interval + ping_timeout = 0.6 s, plus the backoff and the reconnect itself.
            assert loop.time() - started < 2.5


async def test_rest_429_and_503_are_retried_and_the_book_still_syncs():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=14, rate=200) as sim:
        sim.inject({'fault': 'http_status', 'status': 429, 'count': 1, 'path': '/api/v1/depth', 'retry_after': 1})
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
            assert feed.rest.stats.as_dict()['retries'] >= 1
            sim.inject({'fault': 'http_status', 'status': 503, 'count': 2, 'path': '/api/v1/depth'})
            sim.inject({'fault': 'skip_sequence', 'symbol': 'SOL_USDC', 'count': 1})
            await wait_until(lambda: collector.full_books['SOL-USDC'] >= 2, timeout=15)
            await _settle_book(feed, collector, sim)


async def _settle_book(feed, collector, sim):
    await asyncio.sleep(0.2)
    sim.pause()
    await wait_book_converged(feed, collector, sim, 'SOL-USDC', 'SOL_USDC', timeout=15)


async def test_451_is_loud_backs_off_and_the_book_recovers_by_itself_once_requests_succeed(caplog):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=15, rate=200) as sim:
        sim.inject({'fault': 'http_status', 'status': 451, 'count': 2, 'path': '/api/v1/depth'})
        collector = Collector()
        rest = BackpackRestClient(sim.rest_url, region_retry_base_s=0.5, region_retry_max_s=1.0)
        with caplog.at_level(logging.WARNING, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [L2_BOOK, TRADES], collector, rest_client=rest) as feed:
                await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) > 20, timeout=10)
                assert not collector.sequences['SOL-USDC']            # no book while refused
                await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
                requests = rest.stats.as_dict()['requests']
        await rest.close()
        region_errors = [r.getMessage() for r in caplog.records if 'refuses requests' in r.getMessage()]
        assert len(region_errors) == 2 and all('proxy' in m for m in region_errors)   # one per refused trial
        assert any('serves this location again' in r.getMessage() for r in caplog.records)
        assert requests <= 5                    # markets, two refused trials, the snapshot: no loop
        assert collector.full_books['SOL-USDC'] >= 1


async def test_malformed_frames_are_counted_and_survived_without_reconnecting():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=16, rate=200) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=10)
            for kind in ('truncated_json', 'unknown_stream', 'wrong_types'):
                sim.inject({'fault': 'malformed', 'kind': kind, 'symbol': 'SOL_USDC'})
            await wait_until(lambda: feed.metrics_snapshot()['dropped'] >= 3, timeout=5)
            count = len(delivered_trade_ids(collector, 'SOL-USDC'))
            await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) > count + 5, timeout=10)
            snapshot = feed.metrics_snapshot()
            assert snapshot['parse_errors'] >= 2 and snapshot['unknown_streams'] >= 1
            assert snapshot['reconnects'] == 0
            assert feed.health().status in ('healthy', 'degraded')
            await _settle_book(feed, collector, sim)


async def test_snapshot_requests_for_many_symbols_are_staggered():
    markets = ['SOL_USDC', 'ETH_USDC', 'BTC_USDC', 'USDT_USDC', 'SOL_USDC_PERP', 'BTC_USDC_PERP']
    symbols = [m.replace('_', '-') for m in markets]
    async with BackpackSimulator(markets=markets, seed=17, rate=600) as sim:
        collector = Collector()
        async with running_feed(sim, symbols, [L2_BOOK], collector, snapshot_workers=2,
                                snapshot_spacing_s=0.1) as feed:
            starts = []
            depth = feed.rest.depth

            async def recording_depth(symbol, limit=1000):
                starts.append(asyncio.get_running_loop().time())
                return await depth(symbol, limit)

            feed.rest.depth = recording_depth
            await wait_until(lambda: all(feed._book.books[s].synced for s in symbols), timeout=15)
        starts.sort()
        assert len(starts) >= len(symbols)
        # Two workers, each pausing 0.1 s after a request: never three requests within 0.1 s.
        assert all(later - earlier >= 0.09 for earlier, later in zip(starts, starts[2:]))


async def test_a_trade_gap_too_large_to_backfill_is_reported_in_a_warning_and_a_metric(caplog):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=18, rate=800) as sim:
        collector = Collector()
        with caplog.at_level(logging.WARNING, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [TRADES], collector, trade_backfill_limit=2,
                                    reconnect_backoff_base_s=0.5, reconnect_backoff_max_s=0.6) as feed:
                await wait_until(lambda: delivered_trade_ids(collector, 'SOL-USDC'), timeout=10)
                # Away for 1.5 s (reconnects refused meanwhile): far more than 2 trades are missed, even
                # when the first reconnect is immediate.
                sim.inject({'fault': 'drop_connections', 'duration': 1.5})
                await wait_until(lambda: feed.metrics_snapshot()['trade_gaps_unrecovered'] >= 1, timeout=15)
                ids = delivered_trade_ids(collector, 'SOL-USDC')
        assert ids == sorted(set(ids))  # still in order and never twice, only with a hole
        assert any('could not be recovered' in r.getMessage() or 'not fetched' in r.getMessage()
                   for r in caplog.records)


async def test_depth_frames_with_impossible_values_are_dropped_counted_and_never_reach_the_book(caplog):
    kinds = [kind for kind in HOSTILE_DEPTH_KINDS if kind != 'id_jump']
    size_kinds = [kind for kind in kinds if kind.endswith('_size')]
    async with BackpackSimulator(markets=['SOL_USDC'], seed=17, rate=200) as sim:
        collector = Collector()
        with caplog.at_level(logging.WARNING, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector) as feed:
                await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=10)
                for kind in kinds:
                    sim.inject({'fault': 'hostile_depth', 'kind': kind, 'symbol': 'SOL_USDC'})
                    await asyncio.sleep(0.02)
                await wait_until(lambda: feed.metrics_snapshot()['parse_errors'] >= len(kinds), timeout=5)
                await _settle_book(feed, collector, sim)   # feed's book and the delta replica == truth
                snapshot = feed.metrics_snapshot()
                book = snapshot['books']['SOL-USDC']
                assert snapshot['parse_errors'] == len(kinds) and snapshot['reconnects'] == 0
                assert book['invalid_levels'] == len(size_kinds)
                assert snapshot['drops']['invalid'] == len(kinds) - len(size_kinds)
                assert book['resyncs'] == 0 and collector.full_books['SOL-USDC'] == 1
    logged = ' '.join(r.getMessage() for r in caplog.records)
    assert 'depth frame' in logged and 'price' in logged


async def test_a_depth_frame_jumping_1e9_ids_ahead_resyncs_the_book_instead_of_freezing_it():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=18, rate=200) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=10)
            sim.inject({'fault': 'hostile_depth', 'kind': 'id_jump', 'symbol': 'SOL_USDC'})
            await wait_until(lambda: feed._book.books['SOL-USDC'].implausible_ids >= 1, timeout=5)
            await wait_until(lambda: collector.full_books['SOL-USDC'] >= 2, timeout=10)
            await _settle_book(feed, collector, sim)
            assert feed.metrics_snapshot()['resyncs'] >= 1


async def test_the_exchange_renumbering_its_depth_ids_is_followed_not_frozen():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=19, rate=200) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=10)
            sim.inject({'fault': 'skip_sequence', 'symbol': 'SOL_USDC', 'count': 10 ** 9})
            await wait_until(lambda: feed._book.books['SOL-USDC'].implausible_ids >= 1, timeout=5)
            await _settle_book(feed, collector, sim)
            assert feed._book.books['SOL-USDC'].last_update_id > 10 ** 9


async def test_a_snapshot_with_an_impossible_last_update_id_is_refused_and_fetched_again():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=20, rate=200) as sim:
        sim.inject({'fault': 'corrupt_snapshot', 'count': 2})
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=10)
            assert feed._book.books['SOL-USDC'].implausible_ids == 2
            await _settle_book(feed, collector, sim)
            assert feed._book.books['SOL-USDC'].last_update_id < 10 ** 18


async def test_a_depth_snapshot_with_a_hostile_size_is_refused_and_requested_again(caplog):
    """One snapshot holding a negative size once produced a full book holding it: now it is
    refused, counted, re-requested after a backoff, and the book comes out equal to the truth."""
    async with BackpackSimulator(markets=['SOL_USDC'], seed=19, rate=200) as sim:
        collector = Collector()
        with caplog.at_level(logging.WARNING, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector, reconnect_backoff_base_s=0.2,
                                    reconnect_backoff_max_s=0.5) as feed:
                depth = feed.rest.depth
                served = []

                async def corrupt_first(symbol, limit=1000):
                    data = await depth(symbol, limit)  # the simulator's real snapshot ...
                    served.append(asyncio.get_running_loop().time())
                    if len(served) == 1:             # ... the first one with a negative size in it
                        data['bids'][-1][1] = '-' + data['bids'][-1][1]
                    elif len(served) == 2:           # ... the second with a NaN price
                        data['asks'][0][0] = 'NaN'
                    return data

                feed.rest.depth = corrupt_first
                await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
                assert len(served) == 3
                # Backoff between the attempts (backoff.py, 'equal' jitter): 0.1..0.2 s, then 0.2..0.4 s.
                assert served[1] - served[0] >= 0.1 and served[2] - served[1] >= 0.2
                first = next(b for b in [collector.replicas.get('SOL-USDC')] if b)
                assert all(size > 0 for side in first.values() for size in side.values())
                snap = feed.metrics_snapshot()
                assert snap['rest_failures'] >= 2 and collector.full_books['SOL-USDC'] == 1
                await _settle_book(feed, collector, sim)
        refused = [r.getMessage() for r in caplog.records if 'depth snapshot for SOL-USDC failed' in r.getMessage()]
        assert len(refused) == 2 and 'not a plausible' in refused[0]


async def test_rest_trade_rows_without_an_id_do_not_break_the_backfill():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=20, rate=800) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [TRADES], collector, reconnect_backoff_base_s=0.5,
                                reconnect_backoff_max_s=0.6) as feed:
            trades = feed.rest.trades
            stripped = set()

            async def every_third_row_without_id(symbol, limit=100):
                rows = await trades(symbol, limit)
                for n, row in enumerate(rows):
                    if n % 3 == 1:  # absent, null or garbage ids in turn
                        stripped.add(row['id'])
                        if n % 9 == 1:
                            del row['id']
                        else:
                            row['id'] = None if n % 9 == 4 else 'n/a'
                return rows

            feed.rest.trades = every_third_row_without_id
            await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) > 5, timeout=10)
            sim.inject({'fault': 'drop_connections'})  # trades printed meanwhile come from REST
            await wait_until(lambda: feed.metrics.reconnects >= 1 and stripped
                             and not feed._trade.sequencers['SOL-USDC'].backfilling, timeout=15)
            before = len(delivered_trade_ids(collector, 'SOL-USDC'))
            await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) > before + 5, timeout=10)
            sim.pause()
            last = sim.trades('SOL_USDC')[-1]['id']
            await wait_until(lambda: delivered_trade_ids(collector, 'SOL-USDC')[-1:] == [last], timeout=10)
            snap = feed.metrics_snapshot()
        ids = delivered_trade_ids(collector, 'SOL-USDC')
        assert ids == sorted(set(ids))
        missing = set(truth_trade_ids_from(sim, 'SOL_USDC', ids[0])) - set(ids)
        assert missing and missing <= stripped  # only rows that came without an id are lost ...
        assert snap['trades']['SOL-USDC']['unrecovered'] == len(missing)  # ... and they are counted
        assert snap['rest_failures'] == 0 and snap['backfilled_trades'] > 0  # the backfill itself went through
