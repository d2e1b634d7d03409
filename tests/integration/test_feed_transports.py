"""BackpackFeed transports and integration points: TLS, HTTP CONNECT (proxy.py) and SOCKS5 proxies
for REST and WS, each a separate proxy process on loopback, the environment fallback, cryptofeed's raw data collection,
every form of ``config=``, ``add_feed('BACKPACK')``, cryptofeed backends, and clean shutdown."""
from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from cryptofeed import FeedHandler
from cryptofeed.backends.socket import TradeSocket
from cryptofeed.config import Config
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TRADES

from cryptofeed.exchanges.backpack import BackpackConfig, BackpackFeed
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import (
    start_handler, stop_handler,
    FH_CONFIG, Collector, delivered_trade_ids, running_feed, sim_config, wait_book_converged, wait_until,
)
from tests.integration.proxy_servers import ProxyPyProcess, Socks5Process


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ('HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'HTTP_PROXY', 'http_proxy',
                 'NO_PROXY', 'no_proxy'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope='module')
def proxy_py(tmp_path_factory):
    proc = ProxyPyProcess(tmp_path_factory.mktemp('proxy_py')).start()
    yield proc
    proc.stop()


@pytest.fixture
def socks(tmp_path):
    proc = Socks5Process(tmp_path / 'socks5').start()
    yield proc
    proc.stop()


async def _trades_and_book(sim, config, symbol='SOL-USDC', **feed_kwargs):
    collector = Collector()
    async with running_feed(sim, [symbol], [TRADES, L2_BOOK], collector, config=config, **feed_kwargs) as feed:
        await wait_until(lambda: len(delivered_trade_ids(collector, symbol)) > 5 and feed._book.books[symbol].synced,
                         timeout=15)
        sim.pause()
        await wait_book_converged(feed, collector, sim, symbol, symbol.replace('-', '_'))
        sim.resume()
    return collector


async def test_tls_feed_through_an_http_connect_proxy_for_websocket_only(proxy_py):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=21, rate=200, tls=True) as sim:
        await _trades_and_book(sim, sim_config(sim, proxies={'websocket': proxy_py.url}))
        # proxy.py logs a tunnel when it closes: the feed has stopped, so the WS tunnel is logged.
        await proxy_py.wait_for_log(f'CONNECT 127.0.0.1:{sim.port} ')


async def test_tls_feed_through_socks5_for_rest_and_websocket(socks):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=22, rate=200, tls=True) as sim:
        await _trades_and_book(sim, sim_config(sim, proxies={'url': socks.url}))
        # At least one REST connection (markets, depth) and one WebSocket went through the relay.
        assert socks.connects.count(('127.0.0.1', sim.port)) >= 2


async def test_cryptofeeds_http_proxy_keyword_carries_rest_and_websocket(socks):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=24, rate=200, tls=True) as sim:
        await _trades_and_book(sim, sim_config(sim), http_proxy=socks.url)
        assert socks.connects.count(('127.0.0.1', sim.port)) >= 2


async def test_rest_through_socks5_while_websocket_goes_direct(socks):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=23, rate=200) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [L2_BOOK], collector,
                                config=sim_config(sim, proxies={'rest': socks.url})) as feed:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=15)
            relayed = len(socks.connects)
            assert relayed >= 1 and set(socks.connects) == {('127.0.0.1', sim.port)}
            # A WebSocket reconnect (and the resync it causes, over the pooled REST connection)
            # adds no tunnel: the WebSocket does not use the REST proxy.
            sim.inject({'fault': 'drop_connections'})
            await wait_until(lambda: feed.metrics.reconnects >= 1 and collector.full_books['SOL-USDC'] >= 2,
                             timeout=15)
            assert len(socks.connects) == relayed


async def test_https_proxy_environment_variable_is_used_for_rest_and_websocket(proxy_py, monkeypatch):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=24, rate=200, tls=True) as sim:
        monkeypatch.setenv('HTTPS_PROXY', proxy_py.url)
        before = len(proxy_py.access_lines())
        await _trades_and_book(sim, sim_config(sim))
        await proxy_py.wait_for_log(f'CONNECT 127.0.0.1:{sim.port} ')
        await wait_until(lambda: sum(f'127.0.0.1:{sim.port}' in line
                                     for line in proxy_py.access_lines()[before:]) >= 2, timeout=10)


@pytest.mark.parametrize('form', ['BackpackConfig', 'dict', 'cryptofeed Config', 'YAML path'])
async def test_every_config_form_reaches_the_simulator(form, tmp_path):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=26, rate=200) as sim:
        options = sim_config(sim, window_ms=3000)
        config = {
            'BackpackConfig': lambda: BackpackConfig(**options),
            'dict': lambda: options,
            'cryptofeed Config': lambda: Config({'backpack': options, 'log': {'disabled': True}}),
            'YAML path': lambda: _yaml(tmp_path, {'backpack': options, 'log': {'disabled': True}}),
        }[form]()
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [TRADES], collector, config=config) as feed:
            assert feed.backpack_config.window_ms == 3000
            await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) > 3, timeout=10)


def _yaml(tmp_path, data) -> str:
    path = tmp_path / 'config.yaml'
    path.write_text(yaml.safe_dump(data))
    return str(path)


async def test_add_feed_by_name_with_the_handler_config_and_a_cryptofeed_backend(tmp_path):
    received = bytearray()
    clients = []

    async def serve(reader, writer):
        clients.append(writer)
        while chunk := await reader.read(65536):
            received.extend(chunk)

    server = await asyncio.start_server(serve, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    async with BackpackSimulator(markets=['SOL_USDC'], seed=27, rate=200) as sim:
        # native_enabled: 'BACKPACK' means the ccxt feed unless the flag says native (registry.py).
        handler = FeedHandler(config={**FH_CONFIG, 'backpack': sim_config(sim, native_enabled=True)})
        handler.add_feed('BACKPACK', symbols=['SOL-USDC'], channels=[TRADES],
                         callbacks={TRADES: TradeSocket('tcp://127.0.0.1', port=port)})
        feed = handler.feeds[0]
        assert isinstance(feed, BackpackFeed)
        await start_handler(handler)
        try:
            await wait_until(lambda: received.count(b'"exchange":"BACKPACK"') >= 5, timeout=15)
        finally:
            await stop_handler(handler)
    server.close()
    # cryptofeed's socket backend keeps its connection after the handler stops, and from Python
    # 3.12 on wait_closed() waits for every connection the server accepted: close ours.
    for writer in clients:
        writer.close()
    await server.wait_closed()
    first = received.decode().split('}}')[0] + '}}'
    message = json.loads(first)
    assert message['type'] == 'trades' and message['data']['symbol'] == 'SOL-USDC'


async def test_shutdown_cancels_every_task_and_closes_every_session():
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], seed=28, rate=300) as sim:
        collector = Collector()
        before = set(asyncio.all_tasks())
        async with running_feed(sim, ['SOL-USDC', 'ETH-USDC'], [TRADES, L2_BOOK], collector,
                                streams_per_connection=2) as feed:
            await wait_until(lambda: all(feed._book.books[s].synced for s in ('SOL-USDC', 'ETH-USDC')), timeout=15)
            sim.inject({'fault': 'drop_connections'})
            await wait_until(lambda: feed.metrics.reconnects >= 2, timeout=10)
            rest = feed.rest
        leftover = [t for t in asyncio.all_tasks() - before if not t.done()]
        assert leftover == []
        assert rest.session is None or rest.session.closed
        assert all(not h.conn.is_open for h in feed.connection_handlers)


async def test_symbols_and_info_from_the_simulator_and_unknown_symbols_left_out(caplog):
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC_PERP'], seed=29, rate=100) as sim:
        config = sim_config(sim)
        symbols = await asyncio.to_thread(BackpackFeed.symbols, True, config)
        assert {'SOL-USDC', 'BTC-USDC-PERP'} <= set(symbols)
        info = await asyncio.to_thread(BackpackFeed.info, config)
        assert info['instrument_type']['BTC-USDC-PERP'] == 'perpetual'
        assert 'l2_book' in info['channels']['websocket']
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC', 'DOGE-USDC'], [TRADES, L2_BOOK], collector, config=config) as feed:
            await wait_until(lambda: len(delivered_trade_ids(collector, 'SOL-USDC')) > 3, timeout=10)
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced, timeout=10)
            # the book that cannot exist is not reported as out of sync forever
            assert feed.metrics_snapshot()['books_out_of_sync'] == []
        assert any('DOGE-USDC is not listed' in r.getMessage() for r in caplog.records)
