"""``/metrics`` and ``/healthz`` of running feeds (``BackpackConfig.metrics_port``), scraped with a
real HTTP client and read with ``prometheus_client``'s parser; the collector in a user's registry."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cryptofeed import FeedHandler
from cryptofeed.exchanges.backpack import BackpackFeed
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exchanges.backpack.core.ops import prometheus
from cryptofeed.exchanges.backpack.core.ops.prometheus import BackpackCollector
from cryptofeed.exchanges.backpack.simulator import BackpackSimulator

from tests.integration.feed_harness import (
    FH_CONFIG, Collector, running_feed, sim_config, start_handler, stop_handler, wait_until,
)


def _samples(text: str) -> dict:
    """(sample name, sorted labels) -> value of every sample in a scrape."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def _get(url: str):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return response.status, response.headers.get('Content-Type', ''), await response.text()


async def test_two_feeds_share_one_endpoint_counters_increase_books_and_health_are_gauges():
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC', 'SOL_USDC_PERP'], rate=200) as sim:
        handler = FeedHandler(config=FH_CONFIG)
        books = BackpackFeed(config=sim_config(sim, metrics_port=0), symbols=['SOL-USDC', 'ETH-USDC'],
                             channels=[L2_BOOK, TRADES], callbacks=Collector().callbacks([L2_BOOK, TRADES]))
        tickers = BackpackFeed(config=sim_config(sim, metrics_port=0), symbols=['SOL-USDC-PERP'],
                               channels=[TICKER], callbacks=Collector().callbacks([TICKER]))
        handler.add_feed(books)
        handler.add_feed(tickers)
        await start_handler(handler)
        try:
            server = books.metrics_server
            assert server is not None and server is tickers.metrics_server and server.port > 0
            await wait_until(lambda: all(books._book.books[s].synced for s in ('SOL-USDC', 'ETH-USDC')), timeout=15)
            await wait_until(lambda: books.metrics.messages.get(TRADES, 0) > 0
                             and tickers.metrics.messages.get(TICKER, 0) > 0, timeout=15)
            status, content_type, text = await _get(f'{server.url}/metrics')
            assert status == 200 and content_type.startswith('text/plain')
            first = _samples(text)
            await wait_until(lambda: books.metrics.messages[L2_BOOK] > _value(
                first, 'backpack_messages_total', feed='BACKPACK', channel=L2_BOOK) + 20, timeout=15)
            status, _, text = await _get(f'{server.url}/metrics')
            second = _samples(text)
        finally:
            await stop_handler(handler)
        # One endpoint, two feeds told apart by their label.
        for name in ('backpack_reconnects_total', 'backpack_parse_errors_total', 'backpack_sequence_gaps_total',
                     'backpack_book_resyncs_total', 'backpack_rest_failures_total', 'backpack_callback_errors_total',
                     'backpack_connect_failures_total', 'backpack_health_status', 'backpack_uptime_seconds'):
            assert ('BACKPACK' in {dict(k[1]).get('feed') for k in second if k[0] == name}
                    and 'BACKPACK-2' in {dict(k[1]).get('feed') for k in second if k[0] == name}), name
        frames = ('backpack_messages_total', dict(feed='BACKPACK', channel=L2_BOOK))
        assert _value(second, frames[0], **frames[1]) > _value(first, frames[0], **frames[1]) > 0
        assert _value(second, 'backpack_messages_total', feed='BACKPACK-2', channel=TICKER) > 0
        for symbol in ('SOL-USDC', 'ETH-USDC'):
            assert _value(second, 'backpack_book_synced', feed='BACKPACK', symbol=symbol) == 1
            assert _value(second, 'backpack_book_last_update_id', feed='BACKPACK', symbol=symbol) > 0
            assert _value(second, 'backpack_book_applied_total', feed='BACKPACK', symbol=symbol) > 0
            assert _value(second, 'backpack_book_snapshot_age_seconds', feed='BACKPACK', symbol=symbol) >= 0
        assert _value(second, 'backpack_consumer_lag_seconds', feed='BACKPACK') >= 0
        assert _value(second, 'backpack_health_status', feed='BACKPACK') == 0
        assert _value(second, 'backpack_rest_requests_total', feed='BACKPACK') >= 2
        # Shut down with its feeds: the port is closed.
        assert books.metrics_server is None and prometheus._SERVERS == {}
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(f'{server.url}/metrics')


async def test_healthz_is_200_while_healthy_and_503_with_the_reasons_when_unhealthy():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=100) as sim:
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], Collector(), config=sim_config(sim, metrics_port=0),
                                retries=2, reconnect_backoff_base_s=0.05, reconnect_backoff_max_s=0.1) as feed:
            url = f'{feed.metrics_server.url}/healthz'
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
            status, content_type, text = await _get(url)
            assert status == 200 and content_type.startswith('application/json')
            body = json.loads(text)
            assert body['status'] == 'healthy' and body['reasons'] == []
            assert body['checked_at'].endswith('+00:00') and body['feeds']['BACKPACK']['status'] == 'healthy'
            # The exchange goes away: depth snapshots and every reconnect get 503, until the
            # connection has used its retries and gives up.
            sim.inject({'fault': 'http_status', 'status': 503, 'count': 1_000_000})
            sim.inject({'fault': 'drop_connections'})
            await wait_until(lambda: feed.metrics.connections_given_up, timeout=20)
            status, _, text = await _get(url)
            body = json.loads(text)
            assert status == 503, body
            assert body['status'] == 'unhealthy' and body['feeds']['BACKPACK']['status'] == 'unhealthy'
            assert any('gave up' in reason for reason in body['reasons']), body
            assert all(reason.startswith('BACKPACK: ') for reason in body['reasons'])
            samples = _samples((await _get(f'{feed.metrics_server.url}/metrics'))[2])
            assert _value(samples, 'backpack_health_status', feed='BACKPACK') == 2
            assert _value(samples, 'backpack_connections_given_up', feed='BACKPACK') == 1
            assert _value(samples, 'backpack_connect_failures_total', feed='BACKPACK') >= 2
            assert _value(samples, 'backpack_reconnects_total', feed='BACKPACK') >= 0


async def test_the_collector_in_a_users_own_registry():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=100) as sim:
        async with running_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], Collector()) as feed:
            assert feed.metrics_server is None  # no metrics_port: no server
            registry = CollectorRegistry()
            collector = BackpackCollector()
            assert collector.add(feed, name='sol') == 'sol'
            registry.register(collector)
            await wait_until(lambda: feed.metrics.messages.get(TRADES, 0) > 0 and feed._book.books['SOL-USDC'].synced,
                             timeout=15)
            samples = _samples(generate_latest(registry).decode())
            assert _value(samples, 'backpack_messages_total', feed='sol', channel=TRADES) > 0
            assert _value(samples, 'backpack_book_synced', feed='sol', symbol='SOL-USDC') == 1
            assert _value(samples, 'backpack_trade_last_id', feed='sol', symbol='SOL-USDC') > 0
            assert _value(samples, 'backpack_health_status', feed='sol') == 0
            with pytest.raises(ValueError, match='already collected'):
                collector.add(object(), name='sol')
            collector.remove(feed)
            assert not [k for k in _samples(generate_latest(registry).decode()) if k[0].startswith('backpack_')]


async def test_a_port_in_use_fails_the_start_with_what_to_change():
    blocker = await asyncio.start_server(lambda r, w: None, '127.0.0.1', 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        async with BackpackSimulator(markets=['SOL_USDC'], rate=10) as sim:
            feed = BackpackFeed(config=sim_config(sim, metrics_port=port), symbols=['SOL-USDC'], channels=[TRADES])
            with pytest.raises(OSError, match=f'cannot serve metrics on 127.0.0.1:{port}.*metrics_port'):
                feed._start(asyncio.get_running_loop())
            await feed._stop_connections()
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_the_ccxt_feed_serves_its_metrics_too_beside_a_native_feed():
    from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed

    async with BackpackSimulator(markets=['SOL_USDC'], rate=100) as sim:
        handler = FeedHandler(config=FH_CONFIG)
        native = BackpackFeed(config=sim_config(sim, metrics_port=0), symbols=['SOL-USDC'], channels=[TRADES],
                              callbacks=Collector().callbacks([TRADES]))
        ccxt = CcxtBackpackFeed(config=sim_config(sim, metrics_port=0), symbols=['SOL-USDC'], channels=[TRADES],
                                callbacks=Collector().callbacks([TRADES]))
        handler.add_feed(native)
        handler.add_feed(ccxt)
        await start_handler(handler)
        try:
            assert ccxt.metrics_server is native.metrics_server is not None
            await wait_until(lambda: native.metrics.messages.get(TRADES, 0) > 0
                             and ccxt.metrics.messages.get(TRADES, 0) > 0, timeout=20)
            status, _, text = await _get(f'{ccxt.metrics_server.url}/metrics')
        finally:
            await stop_handler(handler)
        samples = _samples(text)
        assert _value(samples, 'backpack_messages_total', feed='BACKPACK', channel=TRADES) > 0
        assert _value(samples, 'backpack_messages_total', feed='BACKPACK-2', channel=TRADES) > 0
        assert _value(samples, 'backpack_health_status', feed='BACKPACK-2') in (0, 1)
        assert ccxt.metrics_server is None and prometheus._SERVERS == {}
