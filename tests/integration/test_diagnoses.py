"""Diagnoses that name the real cause, reproduced against the simulator: a depth snapshot failing
after a reconnect is reported as such (not as a slow consumer), REST failures of the account
catch-up count in ``rest_failures``, and a signed request slower than ``window_ms`` is named as
such (not as a clock problem)."""
from __future__ import annotations

import asyncio
import base64
import re
import time

import pytest

from cryptofeed.exchanges.backpack import BackpackConfig
from cryptofeed.exchanges.backpack.core.defines import BALANCES, L2_BOOK
from cryptofeed.exchanges.backpack.core.errors import BackpackAuthError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.simulator import BackpackSimulator

from tests.integration.feed_harness import Collector, running_feed, sim_config, wait_until


async def test_a_depth_snapshot_failing_after_a_reconnect_is_named_first_and_not_taken_for_lag():
    async def no_op(book, receipt_ts):
        pass

    class Books:
        def callbacks(self, channels):
            return {L2_BOOK: no_op}

    async with BackpackSimulator(markets=['SOL_USDC'], rate=300) as sim:
        config = sim_config(sim, max_retries=1, retry_backoff_base_s=0.1, retry_backoff_max_s=0.2)
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], Books(), config=config) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
            assert feed.health().ok
            sim.inject({'fault': 'http_status', 'status': 503, 'count': 1_000_000, 'path': '/api/v1/depth'})
            sim.inject({'fault': 'drop_connections'})
            await wait_until(lambda: feed.metrics.reconnects >= 1, timeout=15)
            first = None
            deadline = time.monotonic() + 7      # past the old lag limit (5 s) of buffered frames
            while time.monotonic() < deadline:
                report = feed.health()
                assert not any('behind the exchange' in reason for reason in report.reasons), report
                if first is None and not report.ok:
                    first = report
                await asyncio.sleep(0.1)
            assert not feed._book.books['SOL-USDC'].synced          # the depth frames kept coming, buffered
            assert feed.metrics.messages[L2_BOOK] > 0
            assert first is not None, 'the book never synced, yet health never said so'
            assert first.reasons[0].startswith('book SOL-USDC out of sync for '), first
            assert 'REST depth snapshot failed' in first.reasons[0]
            last = feed.health()
            assert last.reasons[0].startswith('book SOL-USDC out of sync for ')
            assert ('under maintenance' in last.reasons[0] or 'circuit open' in last.reasons[0]), last
            assert feed.metrics_snapshot()['snapshot_failures']['SOL-USDC']['failures'] >= 1
            lag = feed.metrics_snapshot()['consumer_lag_s']
            assert lag is not None and lag < 1.0


async def test_rest_failures_of_the_account_catch_up_count_in_rest_failures():
    secret = base64.b64encode(bytes([7]) * 32).decode()
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=0) as sim:
        # The first catch-ups find /api/v1/capital under maintenance; then it answers again.
        sim.inject({'fault': 'http_status', 'status': 503, 'count': 3, 'path': '/api/v1/capital'})
        config = sim_config(sim, enable_private_channels=True, auth={'private_key': secret}, max_retries=0)
        collector = Collector()
        async with running_feed(sim, None, [BALANCES], collector, config=config, subscription={BALANCES: []},
                                reconnect_backoff_base_s=0.05, reconnect_backoff_max_s=0.1) as feed:
            await wait_until(lambda: collector.items[BALANCES], timeout=20)
            snapshot = feed.metrics_snapshot()
            assert snapshot['rest_failures'] == 3
            assert snapshot['recent_events']['rest_failure'] == 3
            assert snapshot['account']['subscribes'] == 4      # three catch-ups failed, the fourth delivered
            assert snapshot['auth_failures'] == 0


async def test_a_request_slower_than_window_ms_is_named_as_such_not_as_a_clock_problem():
    secret = base64.b64encode(bytes([7]) * 32).decode()
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=0) as sim:   # clocks agree
        # Every answer of /api/v1/capital takes 0.6 s: longer than a 300 ms signature window.
        sim.inject({'fault': 'slow_rest', 'delay': 0.6, 'duration': 60, 'path': '/api/v1/capital'})
        config = sim_config(sim, enable_private_channels=True, auth={'private_key': secret}, window_ms=300)

        # The REST client says it of the request it made.
        async with BackpackRestClient.from_config(BackpackConfig(**config)) as client:
            with pytest.raises(BackpackAuthError) as caught:
                await client.balances()
        message = str(caught.value)
        assert 'Request has expired' in message                                  # the exchange's words
        assert re.search(r'the request took \d+ ms from signing to the answer, longer than its signature window '
                         r'of 300 ms \(window_ms\): it expired on the way, not because of the clock; raise '
                         r'window_ms', message), message
        assert caught.value.elapsed_ms >= 600 and caught.value.window_ms == 300

        # The feed's private channels say it in the log and in health.
        async with running_feed(sim, None, [BALANCES], Collector(), config=config,
                                subscription={BALANCES: []}) as feed:
            await wait_until(lambda: feed.metrics.auth_error is not None, timeout=20)
            reason = feed.metrics.auth_error
            assert re.match(r'expired: the signed request took \d+ ms from signing to the exchange\'s answer, longer '
                            r'than its signature window of 300 ms \(window_ms\), so it expired on the way; clocks '
                            r'measured now: this machine\'s clock agrees with the exchange\'s', reason), reason
            assert reason.endswith('raise window_ms (at most 10000) or find what slows the requests (network, '
                                   'proxy, a loaded machine)')
            assert 'clock used for signing is off' not in reason and 'behind the exchange' not in reason
            report = feed.health()
            assert report.status == 'unhealthy'
            assert 'took' in report.reasons[0] and 'window_ms' in report.reasons[0]
