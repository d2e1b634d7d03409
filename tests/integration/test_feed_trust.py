"""BackpackFeed when its user, the network or the exchange misbehaves: callbacks that raise, books
that cannot sync, consumers that fall behind, connections that cannot be made, oversized frames."""
from __future__ import annotations

import asyncio
import gc
import logging

from cryptofeed import FeedHandler
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TRADES

from cryptofeed.exchanges.backpack import BackpackFeed
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import (
    start_handler, stop_handler,
    FH_CONFIG, Collector, delivered_trade_ids, running_feed, sim_config, truth_trade_ids_from, wait_until,
)


class RaisingCollector(Collector):
    """Records every trade, then raises on every ``every``-th one (a buggy user callback)."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.raised = 0

    def _callback(self, channel):
        record = super()._callback(channel)

        async def buggy(obj, receipt_ts):
            await record(obj, receipt_ts)
            if channel == TRADES and int(obj.id) % self.every == 0:
                self.raised += 1
                raise RuntimeError(f'user bug on trade {obj.id}')
        return buggy


async def test_a_raising_callback_is_logged_counted_and_loses_nothing_not_even_during_a_backfill(caplog):
    caplog.set_level(logging.ERROR, logger=package_log.root())
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], seed=31, rate=600) as sim:
        collector = RaisingCollector(every=3)
        async with running_feed(sim, ['SOL-USDC', 'ETH-USDC'], [TRADES, L2_BOOK], collector,
                                reconnect_backoff_base_s=0.1, reconnect_backoff_max_s=0.3) as feed:
            await wait_until(lambda: collector.raised >= 5, timeout=10)
            depth_requests = feed.rest.stats.as_dict()['requests']
            # refused for 0.5 s while the market trades: the missed trades come back as a backfill batch
            sim.inject({'fault': 'drop_connections', 'duration': 0.5})
            await wait_until(lambda: feed.metrics.reconnects == 1 and feed.metrics.backfilled_trades > 0, timeout=10)
            await asyncio.sleep(0.5)
            sim.pause()
            for symbol in ('SOL-USDC', 'ETH-USDC'):
                last = sim.trades(symbol.replace('-', '_'))[-1]['id']
                await wait_until(lambda: delivered_trade_ids(collector, symbol)[-1:] == [last], timeout=10)
                ids = delivered_trade_ids(collector, symbol)
                assert ids == truth_trade_ids_from(sim, symbol.replace('-', '_'), ids[0])
            assert feed.metrics.reconnects == 1                 # only the injected drop: no reconnect per bug
            assert feed.metrics.callback_errors == collector.raised > 5
            # one markets request and a depth snapshot per book and connection, not one per exception
            assert feed.rest.stats.as_dict()['requests'] - depth_requests <= 6
            assert not feed.health().ok and 'exceptions in user callbacks' in ' '.join(feed.health().reasons)
    tracebacks = [r for r in caplog.records if r.exc_info and 'a callback raised RuntimeError' in r.getMessage()]
    assert tracebacks and 'user bug on trade' in str(tracebacks[0].exc_info[1])
    assert len(tracebacks) < collector.raised                   # rate-limited


async def test_raise_callback_errors_restores_cryptofeeds_reconnect():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=32, rate=300) as sim:
        collector = RaisingCollector(every=50)
        async with running_feed(sim, ['SOL-USDC'], [TRADES], collector, raise_callback_errors=True,
                                reconnect_backoff_base_s=0.1, reconnect_backoff_max_s=0.2) as feed:
            await wait_until(lambda: feed.metrics.reconnects >= 1, timeout=10)
            assert feed.metrics.callback_errors == 0


async def test_a_quiet_market_gets_its_snapshot_at_subscribe_and_again_after_a_reconnect():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=33, rate=0) as sim:   # no depth frame at all
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector,
                                reconnect_backoff_base_s=0.1, reconnect_backoff_max_s=0.2) as feed:
            await wait_until(lambda: feed.metrics_snapshot()['books_out_of_sync'] == [], timeout=10)
            sim.inject({'fault': 'drop_connections'})
            await wait_until(lambda: feed.metrics.reconnects == 1, timeout=10)
            await wait_until(lambda: feed.metrics_snapshot()['books_out_of_sync'] == [], timeout=10)
            assert feed.rest.stats.as_dict()['requests'] >= 3        # markets + a snapshot per subscribe
            assert feed.metrics.resyncs == 0                          # a reconnect is not a sequence break


async def test_a_book_that_cannot_sync_is_unhealthy_after_the_grace_even_without_frames():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=34, rate=0) as sim:
        sim.inject({'fault': 'http_status', 'status': 500, 'count': 1000, 'path': '/api/v1/depth'})
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector) as feed:
            await wait_until(lambda: feed.metrics.rest_failures >= 1, timeout=10)
            report = feed.health(startup_grace_s=0, book_sync_grace_s=0.5, max_rest_failures=100,
                                 max_message_age_s=1000)
            await asyncio.sleep(0.6)
            report = feed.health(startup_grace_s=0, book_sync_grace_s=0.5, max_rest_failures=100,
                                 max_message_age_s=1000)
            assert report.status == 'degraded'
            assert any('book SOL-USDC out of sync for' in r for r in report.reasons)


async def test_a_slow_consumer_shows_as_lag_in_health_and_pushes_back_instead_of_queueing_without_bound():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=35, rate=3000) as sim:
        slow = Collector()

        async def crawl(trade, receipt_ts):
            slow.items[TRADES].append(trade)
            await asyncio.sleep(0.02)                           # about 50 trades/s: far behind the stream

        async def book(book, receipt_ts):
            pass

        handler = FeedHandler(config=FH_CONFIG)
        feed = BackpackFeed(config=sim_config(sim), symbols=['SOL-USDC'], channels=[TRADES, L2_BOOK],
                            callbacks={TRADES: crawl, L2_BOOK: book})
        handler.add_feed(feed)
        await start_handler(handler)
        try:
            await wait_until(lambda: feed.connection_handlers[0].conn.conn is not None, timeout=10)
            queued, paused = [], False
            for _ in range(40):
                await asyncio.sleep(0.1)
                assembler = feed.connection_handlers[0].conn.conn.recv_messages
                queued.append(len(assembler.frames))
                paused = paused or assembler.paused
            # websockets stops reading the socket past MAX_QUEUED_FRAMES unread frames; one read
            # may still add the frames of one TCP segment batch on top.
            assert paused and max(queued) < 4096 + 2000
            assert feed.metrics_snapshot()['consumer_lag_s'] > 1.0
            report = feed.health(max_consumer_lag_s=1.0)
            assert report.status in ('degraded', 'unhealthy')
            assert any('behind the exchange' in r for r in report.reasons)
        finally:
            await stop_handler(handler)
        ids = [int(t.id) for t in slow.items[TRADES]]
        assert ids == sorted(ids) and len(ids) == len(set(ids))  # behind, but in order and exactly once


async def test_a_connection_that_cannot_be_made_is_counted_and_gives_up_visibly(caplog, refused_port):
    caplog.set_level(logging.ERROR)
    port = refused_port
    handler = FeedHandler(config=FH_CONFIG)
    feed = BackpackFeed(config={'rest_url': f'http://127.0.0.1:{port}', 'ws_url': f'ws://127.0.0.1:{port}'},
                        symbols=['SOL-USDC'], channels=[TRADES], callbacks={TRADES: Collector()._callback(TRADES)},
                        retries=2, reconnect_backoff_base_s=0.05, reconnect_backoff_max_s=0.1)
    handler.add_feed(feed)
    await start_handler(handler)
    try:
        await wait_until(lambda: feed.metrics.connections_given_up, timeout=10)
        assert feed.metrics.connect_failures == 3             # the first attempt and two retries
        report = feed.health()
        assert report.status == 'unhealthy' and 'gave up' in ' '.join(report.reasons)
    finally:
        await stop_handler(handler)
    gc.collect()
    await asyncio.sleep(0)
    assert not any('never retrieved' in r.getMessage() for r in caplog.records)
    assert any('giving up' in r.getMessage() for r in caplog.records)


