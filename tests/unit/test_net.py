"""net.py: proxy resolution (configuration, environment, NO_PROXY), URL checks and masking."""
from __future__ import annotations

import pytest

from cryptofeed.exchanges.backpack.core.transport.net import mask_url, resolve_proxy, scrub_urls, validate_proxy_url

API = 'https://api.backpack.exchange'


# -- resolve_proxy ---------------------------------------------------------------------------

def test_explicit_proxy_wins_over_the_environment():
    env = {'HTTPS_PROXY': 'http://env:1'}
    assert resolve_proxy('socks5://explicit:1080', API, env) == 'socks5://explicit:1080'


def test_no_proxy_configured_means_direct():
    assert resolve_proxy(None, API, {}) is None


@pytest.mark.parametrize('env, url, expected', [
    ({'HTTPS_PROXY': 'http://p:3128'}, API, 'http://p:3128'),
    ({'https_proxy': 'http://lower:1'}, API, 'http://lower:1'),
    ({'HTTPS_PROXY': 'http://upper:1', 'https_proxy': 'http://lower:1'}, API, 'http://upper:1'),
    ({'ALL_PROXY': 'socks5://p:1080'}, API, 'socks5://p:1080'),
    ({'all_proxy': 'socks5h://p:1080'}, 'wss://ws.backpack.exchange', 'socks5h://p:1080'),
    ({'HTTPS_PROXY': 'http://s:1', 'ALL_PROXY': 'socks5://a:1'}, API, 'http://s:1'),
    ({'HTTPS_PROXY': 'http://s:1'}, 'http://127.0.0.1:8080', 'http://s:1'),   # D7: one setting for all targets
    ({'HTTP_PROXY': 'http://plain:1'}, API, None),                            # not a variable we read
    ({'HTTPS_PROXY': '  ', 'ALL_PROXY': 'socks5://a:1'}, API, 'socks5://a:1'),
])
def test_environment_fallback(env, url, expected):
    assert resolve_proxy(None, url, env) == expected


@pytest.mark.parametrize('no_proxy, url, bypassed', [
    ('*', API, True),
    ('api.backpack.exchange', API, True),
    ('.backpack.exchange', API, True),
    ('backpack.exchange', API, True),
    ('*.backpack.exchange', API, True),
    ('api.backpack.exchange:443', API, True),
    ('localhost, 127.0.0.1', API, False),
    ('exchange.example', API, False),
    ('notbackpack.exchange', API, False),
    ('127.0.0.1', 'http://127.0.0.1:8080', True),
    ('127.0.0.0/8', 'http://127.0.0.1:8080', True),
    ('10.0.0.0/8', 'http://127.0.0.1:8080', False),
    ('::1', 'http://[::1]:8080', True),
])
def test_no_proxy(no_proxy, url, bypassed):
    env = {'HTTPS_PROXY': 'http://p:1', 'no_proxy': no_proxy}
    assert (resolve_proxy(None, url, env) is None) is bypassed


@pytest.mark.parametrize('env', [
    {}, {'HTTPS_PROXY': 'http://p:1'}, {'https_proxy': 'http://l:1', 'ALL_PROXY': 'socks5://a:1'},
    {'all_proxy': 'socks5h://a:1'}, {'HTTPS_PROXY': 'http://p:1', 'NO_PROXY': '.backpack.exchange'},
    {'HTTPS_PROXY': 'http://p:1', 'no_proxy': 'api.backpack.exchange:443'},
    {'HTTPS_PROXY': 'http://p:1', 'NO_PROXY': '*'},
    {'HTTPS_PROXY': ' ', 'ALL_PROXY': 'socks5://a:1'}, {'HTTPS_PROXY': 'http://p:1', 'NO_PROXY': '127.0.0.0/8'},
])
@pytest.mark.parametrize('url', [API, 'http://127.0.0.1:9000'])
def test_resolve_proxy_agrees_with_backpack_config(env, url):
    from cryptofeed.exchanges.backpack.core.config import BackpackConfig
    cfg = BackpackConfig(rest_url=url, ws_url='ws://127.0.0.1:9000' if url.startswith('http:') else
                         'wss://ws.backpack.exchange')
    assert resolve_proxy(None, url, env) == cfg.proxy_for('rest', environ=env)



def test_bare_host_port_is_http_only_where_curl_would_take_it():
    assert resolve_proxy(None, API, {'HTTPS_PROXY': 'proxy.internal:3128'}) == 'http://proxy.internal:3128'
    assert resolve_proxy('proxy.internal:3128', API, {}) == 'http://proxy.internal:3128'
    with pytest.raises(ValueError, match='unsupported scheme'):
        validate_proxy_url('proxy.internal:3128', 'proxies.url')


def test_an_unusable_environment_proxy_names_the_variable_and_hides_the_password():
    with pytest.raises(ValueError) as info:
        resolve_proxy(None, API, {'ALL_PROXY': 'ftp://user:hunter2@p:21'})
    assert 'ALL_PROXY' in str(info.value) and 'hunter2' not in str(info.value)


def test_masking_hides_passwords_in_urls_and_in_free_text():
    assert mask_url('http://u:hunter2@h:1') == 'http://u:***@h:1'
    assert mask_url('socks5://h:bad') == '<unparseable URL>'
    text = scrub_urls("Cannot connect to proxy http://u:hunter2@h:1 ('socks5://a:b/c@d:2')")
    assert 'hunter2' not in text and 'a:b/c' not in text and 'http://***@h:1' in text
