"""``CcxtBackpackFeed`` construction and its ccxt settings: validated up front, no network."""
from __future__ import annotations

import base64
import logging

import pytest
from cryptofeed.config import Config
from cryptofeed.exchanges.backpack.core.defines import BALANCES, CANDLES, FILLS, L2_BOOK, ORDER_INFO, POSITIONS, TICKER, TRADES

from cryptofeed.exchanges.backpack import BackpackConfig, BackpackConfigError, BackpackFeed
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed, _client_class, client_settings

SECRET = base64.b64encode(bytes([9]) * 32).decode()
PUBLIC = BackpackSigner(SECRET).public_key
SIM = {'rest_url': 'http://127.0.0.1:9', 'ws_url': 'ws://127.0.0.1:9'}


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ('HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'CRYPTOFEED_CONFIG'):
        monkeypatch.delenv(name, raising=False)


def test_public_feed_builds_without_network_and_keeps_the_config():
    feed = CcxtBackpackFeed(config=SIM, symbols=['SOL-USDC', 'SOL-USDC-PERP'], channels=[TRADES, L2_BOOK, TICKER])
    assert feed.id == 'BACKPACK' and feed.client is None
    assert feed.backpack_config.rest_url == SIM['rest_url']
    assert {channel: sorted(symbols) for channel, symbols in feed.subscription.items()} == {
        channel: ['SOL_USDC', 'SOL_USDC_PERP'] for channel in ('trade', 'depth', 'bookTicker')}
    assert feed.metrics_snapshot()['books_out_of_sync'] == ['SOL-USDC', 'SOL-USDC-PERP']
    assert feed.health().status in ('healthy', 'degraded', 'unhealthy')


def test_symbols_follow_the_native_rules():
    with pytest.raises(Exception, match='not a Backpack spot or perpetual symbol'):
        CcxtBackpackFeed(config=SIM, symbols=['SOLUSDC'], channels=[TRADES])


@pytest.mark.parametrize('channel, words', [(FILLS, 'watchMyTrades'), (CANDLES, 'not offered')])
def test_channels_ccxt_cannot_serve_fail_at_construction(channel, words):
    with pytest.raises(BackpackConfigError, match=words) as err:
        CcxtBackpackFeed(config=SIM, symbols=['SOL-USDC'], channels=[TRADES, channel])
    assert 'BackpackFeed' in str(err.value)


def test_private_channels_need_keys_and_the_switch():
    with pytest.raises(BackpackConfigError, match='enable_private_channels=True and auth'):
        CcxtBackpackFeed(config=SIM, symbols=['SOL-USDC'], channels=[ORDER_INFO])
    config = {**SIM, 'enable_private_channels': True, 'auth': {'private_key': SECRET}}
    feed = CcxtBackpackFeed(config=config, symbols=['SOL-USDC'], channels=[ORDER_INFO, BALANCES, POSITIONS])
    assert feed.requires_authentication and feed.key_id == PUBLIC
    with pytest.raises(BackpackConfigError, match='drop rest_only'):
        CcxtBackpackFeed(config=config, symbols=['SOL-USDC'], channels=[BALANCES], rest_only=True)


def test_private_channels_with_keys_from_a_cryptofeed_config():
    cfg = Config({'backpack': {**SIM, 'key_secret': SECRET, 'enable_private_channels': True}})
    feed = CcxtBackpackFeed(config=cfg, symbols=['SOL-USDC'], channels=[ORDER_INFO])
    assert feed.backpack_config.auth.derived_public_key == PUBLIC


@pytest.mark.parametrize('kwargs, words', [
    ({'snapshot_interval': 0}, 'snapshot_interval must be > 0'),
    ({'rest_only': True, 'snapshot_interval': None}, 'give one'),
    ({'poll_interval': -1}, 'poll_interval'),
])
def test_bad_options_fail_at_construction(kwargs, words):
    with pytest.raises(BackpackConfigError, match=words):
        CcxtBackpackFeed(config=SIM, symbols=['SOL-USDC'], channels=[TRADES], **kwargs)


def test_client_settings_map_urls_keys_and_window():
    config = BackpackConfig(enable_private_channels=True, auth={'private_key': SECRET}, window_ms=3000, **SIM)
    settings = client_settings(config, {'timeout': 5000})
    assert settings['urls']['api'] == {'public': SIM['rest_url'], 'private': SIM['rest_url'],
                                       'ws': {'public': SIM['ws_url'], 'private': SIM['ws_url']}}
    assert (settings['apiKey'], settings['secret']) == (PUBLIC, SECRET)
    assert settings['options'] == {'recvWindow': '3000'} and settings['timeout'] == 5000
    assert settings['newUpdates'] is True and 'httpsProxy' not in settings


@pytest.mark.parametrize('proxies, expected', [
    ({'url': 'http://proxy.test:3128'}, {'httpsProxy': 'http://proxy.test:3128', 'wsProxy': 'http://proxy.test:3128'}),
    ({'rest': 'socks5://proxy.test:1080', 'websocket': 'socks5h://proxy.test:1080'},
     {'socksProxy': 'socks5://proxy.test:1080', 'wsSocksProxy': 'socks5h://proxy.test:1080'}),
])
def test_client_settings_map_proxies(proxies, expected):
    settings = client_settings(BackpackConfig(proxies=proxies, **SIM))
    assert {k: v for k, v in settings.items() if 'roxy' in k} == expected


def test_wss_url_uses_the_wss_proxy_setting():
    settings = client_settings(BackpackConfig(proxies={'url': 'http://proxy.test:3128'}))
    assert settings['wssProxy'] == 'http://proxy.test:3128' and 'wsProxy' not in settings


def test_the_ccxt_client_maps_429_and_451_to_our_errors():
    from cryptofeed.exchanges.backpack import BackpackRateLimitedError, BackpackRegionRestrictedError

    client = _client_class()(client_settings(BackpackConfig(**SIM)))
    with pytest.raises(BackpackRateLimitedError) as err:
        client.handle_errors(429, 'Too Many Requests', 'http://127.0.0.1:9/api/v1/depth', 'GET',
                             {'Retry-After': '2'}, '{"code":"TOO_MANY_REQUESTS"}', {}, {}, None)
    assert (err.value.retry_after, err.value.path) == (2.0, '/api/v1/depth')
    with pytest.raises(BackpackRegionRestrictedError):
        client.handle_errors(451, 'x', 'http://127.0.0.1:9/api/v1/markets', 'GET', {}, '{}', {}, {}, None)
    assert client.handle_errors(200, 'OK', 'http://127.0.0.1:9/', 'GET', {}, '{}', {}, {}, None) is None


def test_secrets_stay_out_of_the_feed_repr_and_logs(caplog):
    config = {**SIM, 'enable_private_channels': True, 'auth': {'private_key': SECRET}}
    with caplog.at_level(logging.DEBUG):
        feed = CcxtBackpackFeed(config=config, symbols=['SOL-USDC'], channels=[ORDER_INFO])
    assert SECRET not in repr(feed.backpack_config) and SECRET not in caplog.text


def test_both_feeds_share_the_symbol_rules():
    assert CcxtBackpackFeed.std_symbol_to_exchange_symbol is BackpackFeed.std_symbol_to_exchange_symbol
