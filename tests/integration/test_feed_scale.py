"""A cold start of 200+ markets under a tight REST rate limit and a per-connection stream limit:
a real FeedHandler running ``BackpackFeed(symbols='all')`` against the simulator.

The simulator allows 20 public REST requests a second (a token bucket; beyond it 429 with
``Retry-After`` of whole seconds, at least 1) and 150 streams per connection, and answers the
first depth requests with injected 429s. What is checked: every book is exact at the end, the
429s stay within what the pacing allows (no storm), and no SUBSCRIBE was refused.
"""
from __future__ import annotations

import math
import time

from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TRADES
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import Collector, running_feed, wait_book_converged, wait_until

SYNTHETIC = 200          # + the 9 default markets
REST_RATE_LIMIT = 20     # requests per second, burst 20
STREAM_LIMIT = 150       # per connection, at the simulator and in the feed
INJECTED_429 = 6         # depth requests answered 429 (Retry-After 2 s) before the bucket is consulted
WORKERS = 2              # the feed's default snapshot_workers


async def test_a_cold_start_of_every_market_is_paced_within_the_rate_limit_and_every_book_ends_exact():
    async with BackpackSimulator(synthetic_markets=SYNTHETIC, rest_rate_limit=REST_RATE_LIMIT,
                                 max_streams_per_connection=STREAM_LIMIT, rate=400, seed=21) as sim:
        sim.inject({'fault': 'http_status', 'status': 429, 'count': INJECTED_429, 'path': '/api/v1/depth',
                    'retry_after': 2})
        collector = Collector()
        start = time.monotonic()
        async with running_feed(sim, 'all', [TRADES, L2_BOOK], collector,
                                streams_per_connection=STREAM_LIMIT, snapshot_workers=WORKERS) as feed:
            in_flight = peak = 0
            depth = feed.rest.depth

            async def counted_depth(*args, **kwargs):
                nonlocal in_flight, peak
                in_flight += 1
                peak = max(peak, in_flight)
                try:
                    return await depth(*args, **kwargs)
                finally:
                    in_flight -= 1

            feed.rest.depth = counted_depth
            await wait_until(lambda: len(feed.followed_symbols or ()) == SYNTHETIC + 9, timeout=30)
            symbols = list(feed.followed_symbols)
            await wait_until(lambda: all(collector.full_books[s] for s in symbols), timeout=240, interval=0.2)
            elapsed = time.monotonic() - start
            stats = sim.stats()
            # 418 streams over connections of at most 150: three, none refused
            assert [len(c.streams) for c in feed._public] == [150, 150, 118]
            assert stats['subscribe_refused'] == 0 and stats['ws_connections'] == 3
            # One listing request and one snapshot per book; each 429 costs one more request.
            assert stats['rest_requests'] == 1 + len(symbols) + stats['rest_429']
            # No storm: a worker that got a 429 waits at least its Retry-After (>= 1 s) before its
            # next request, so each of the 2 workers meets at most one 429 a second from the
            # bucket; the injected ones come on top. A client that retried at once (or ran a
            # request per market at the same time) would collect hundreds.
            bound = INJECTED_429 + WORKERS * math.ceil(elapsed + 1)
            assert INJECTED_429 < stats['rest_429'] <= bound, (stats, elapsed)
            assert peak <= WORKERS   # never more depth requests out at once than snapshot workers
            sim.pause()
            for symbol in symbols:
                await wait_book_converged(feed, collector, sim, symbol, symbol.replace('-', '_'), timeout=30)
                assert collector.full_books[symbol] == 1, symbol   # synced once, never resynced
            snapshot = feed.metrics_snapshot()
            assert snapshot['resyncs'] == 0 and snapshot['dropped'] == 0 and snapshot['parse_errors'] == 0
            assert feed.health().status == 'healthy', feed.health()
