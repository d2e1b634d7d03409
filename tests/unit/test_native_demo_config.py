"""The native demo's pure parts: which private channels it asks for, and the config it builds."""
from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest
from cryptofeed.exchanges.backpack.core.defines import BALANCES, FILLS, ORDER_INFO, POSITIONS

from cryptofeed.exchanges.backpack import BackpackConfig, BackpackFeed
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.hosts.registry import choose
from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed

DEMO = Path(__file__).resolve().parents[2] / 'examples' / 'backpack_native_demo.py'
SECRET = base64.b64encode(bytes([5]) * 32).decode()


@pytest.fixture(scope='module')
def demo():
    spec = importlib.util.spec_from_file_location('backpack_native_demo', DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_private_channels_are_those_the_feed_offers(demo):
    assert demo.private_channels(CcxtBackpackFeed) == [ORDER_INFO, POSITIONS, BALANCES]
    offered = [c for c in (ORDER_INFO, FILLS, POSITIONS, BALANCES) if c in BackpackFeed.websocket_channels]
    assert demo.private_channels(BackpackFeed) == offered


def test_offline_section_has_the_flag_the_simulator_and_a_fresh_key(demo):
    urls = {'rest_url': 'https://127.0.0.1:1', 'ws_url': 'wss://127.0.0.1:1', 'ca_file': None}
    one, two = demo.backpack_section(urls, True), demo.backpack_section(urls, True)
    assert choose({'backpack': one}, {}).native and one['rest_url'] == urls['rest_url']
    assert one['key_secret'] != two['key_secret'] and len(base64.b64decode(one['key_secret'])) == 32
    assert 'key_secret' not in demo.backpack_section(urls, False)


def test_live_section_reads_the_backpack_environment(demo, monkeypatch):
    for name in ('BACKPACK_REST_URL', 'BACKPACK_WS_URL', 'BACKPACK_CA_FILE', 'BACKPACK_API_KEY', 'BACKPACK_PUBLIC_KEY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('BACKPACK_PRIVATE_KEY', SECRET)
    section = demo.backpack_section(None, True)
    config = BackpackConfig.from_cryptofeed_config({'backpack': section})
    assert config.rest_url == 'https://api.backpack.exchange' and config.enable_private_channels
    assert config.auth.derived_public_key == BackpackSigner(SECRET).public_key
    assert 'key_secret' not in demo.backpack_section(None, False)
    monkeypatch.delenv('BACKPACK_PRIVATE_KEY')
    assert 'key_secret' not in demo.backpack_section(None, True)
