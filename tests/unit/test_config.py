"""BackpackConfig: validation of every option, key normalization, loaders and secret hiding."""
from __future__ import annotations

import base64
import json
import logging
import math
import os
import ssl
from pathlib import Path

import pytest
import trustme
from cryptofeed.config import Config
from pydantic import BaseModel, TypeAdapter, ValidationError

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.config import (
    DEFAULT_REST_URL, DEFAULT_WS_URL, BackpackAuth, BackpackConfig, BackpackProxies, ProxyURL,
)
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError, BackpackError
from cryptofeed.exchanges.backpack.core.transport.net import is_loopback_host, mask_url

# backpack-api.md section 4 test vector: seed = 32 x 0x01.
KEY_B64 = 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE='
KEY_HEX = '01' * 32
PUB_B64 = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
PUB_HEX = base64.b64decode(PUB_B64).hex()
BALANCE_SIG = 'Z84gQTC7cBU2B7ntts0up1fqeLuPKUdNaYqZ8hMecImH8gBJzdntZ8AedhMlKMqLYysELwKES3SFW+k8i+JuDA=='
OTHER_PUB_B64 = BackpackSigner(bytes([2]) * 32).public_key

# A distinctive key for the secret-hiding tests, so that a leak cannot go unnoticed.
SECRET_SEED = bytes(range(100, 132))
SECRET_B64 = base64.b64encode(SECRET_SEED).decode()
SECRET_HEX = SECRET_SEED.hex()
PROXY_PASSWORD = 'pr0xyPa55w0rd'


def _env_without_proxies(monkeypatch):
    for name in ('HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy',
                 'CRYPTOFEED_CONFIG'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    _env_without_proxies(monkeypatch)


def _error(**kwargs) -> str:
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig(**kwargs)
    return str(info.value)


# ------------------------------------------------------------------------------ defaults

def test_defaults():
    cfg = BackpackConfig()
    assert cfg.enable_private_channels is False
    assert cfg.auth is None and cfg.proxies is None and cfg.ca_file is None
    assert cfg.window_ms == 5000
    assert cfg.use_sandbox is False
    assert cfg.rest_url == DEFAULT_REST_URL == 'https://api.backpack.exchange'
    assert cfg.ws_url == DEFAULT_WS_URL == 'wss://ws.backpack.exchange'
    assert (cfg.symbol_cache_ttl_s, cfg.request_timeout_s, cfg.max_retries) == (900, 10, 5)
    assert cfg.listing_poll_s == 300  # the cache lifetime of /api/v1/markets
    assert (cfg.retry_backoff_base_s, cfg.retry_backoff_max_s, cfg.clock_offset_ms) == (0.25, 10, 0)
    assert cfg.signer() is None
    assert cfg.ssl_context() is None
    assert cfg.rest_proxy is None and cfg.ws_proxy is None


def test_config_errors_belong_to_the_package_tree():
    with pytest.raises(BackpackError):
        BackpackConfig(window_ms=0)
    with pytest.raises(ValueError):
        BackpackConfig(window_ms=0)


# ------------------------------------------------------------------------------ keys

@pytest.mark.parametrize('given', [KEY_HEX, KEY_HEX.upper(), KEY_B64, KEY_B64.rstrip('='), f'  {KEY_B64}\n',
                                   bytes([1]) * 32, (bytes([1]) * 32 + base64.b64decode(PUB_B64)).hex()])
def test_private_key_is_normalized_to_base64_seed(given):
    auth = BackpackAuth(private_key=given)
    assert auth.private_key.get_secret_value() == KEY_B64
    assert auth.derived_public_key == PUB_B64
    assert auth.api_key == PUB_B64
    assert auth.public_key == PUB_B64


@pytest.mark.parametrize('given', [PUB_B64, PUB_HEX, PUB_HEX.upper(), PUB_B64.rstrip('=')])
def test_matching_api_key_and_public_key_in_hex_or_base64_are_accepted_and_normalized(given):
    auth = BackpackAuth(private_key=KEY_HEX, api_key=given, public_key=given)
    assert auth.api_key == PUB_B64
    assert auth.public_key == PUB_B64


@pytest.mark.parametrize('field', ['api_key', 'public_key'])
def test_mismatching_key_is_rejected_with_the_derived_key_in_the_message(field):
    message = _error(auth={'private_key': KEY_B64, field: OTHER_PUB_B64})
    assert f'auth.{field} does not match the public key derived from private_key' in message
    assert PUB_B64 in message
    assert 'same key pair' in message


def test_api_key_is_the_public_key_hint_for_unreadable_api_key():
    message = _error(auth={'private_key': KEY_B64, 'api_key': 'not-a-key'})
    assert 'auth.api_key' in message
    assert 'API key is the base64 public key' in message


def test_swapped_private_and_public_key_are_recognised_without_echoing_either():
    message = _error(auth={'private_key': PUB_B64, 'api_key': KEY_B64})
    assert 'look swapped' in message
    assert KEY_B64 not in message and KEY_HEX not in message


@pytest.mark.parametrize('bad, reason', [
    ('!!' + KEY_HEX[2:], 'neither hex nor standard base64'),
    (base64.b64encode(bytes(31)).decode(), 'decodes to 31 bytes'),
    (KEY_HEX[:-2], 'is 32 bytes'),
    (base64.b64encode(bytes(33)).decode(), 'decodes to 33 bytes'),
    ('', 'is empty'),
    (bytes([1]) * 32 + bytes(32), 'second half is not the public key'),
])
def test_malformed_private_key_is_rejected(bad, reason):
    message = _error(auth={'private_key': bad})
    assert message.startswith('invalid Backpack configuration: auth.private_key')
    assert reason in message


def test_private_key_given_as_number_asks_to_quote_it():
    message = _error(auth={'private_key': 10 ** 70})
    assert 'auth.private_key' in message and 'quote it in YAML' in message
    assert str(10 ** 70) not in message


def test_auth_without_private_key_is_rejected():
    message = _error(auth={'api_key': PUB_B64})
    assert 'auth.private_key: is required' in message


def test_passphrase_is_accepted_and_ignored():
    with_passphrase = BackpackAuth(private_key=KEY_B64, passphrase='hunter2-phrase')
    without = BackpackAuth(private_key=KEY_B64)
    assert with_passphrase.passphrase.get_secret_value() == 'hunter2-phrase'
    a = with_passphrase.signer().rest_headers('balanceQuery', timestamp_ms=1614550000000)
    b = without.signer().rest_headers('balanceQuery', timestamp_ms=1614550000000)
    assert a == b
    assert 'hunter2-phrase' not in repr(with_passphrase)


def test_auth_signer_uses_window_and_clock_offset():
    auth = BackpackAuth(private_key=KEY_HEX)
    signer = auth.signer(3000, 250, clock=lambda: 1614550000.0)
    assert isinstance(signer, BackpackSigner)
    assert signer.window_ms == 3000
    assert signer.now_ms() == 1614550000250
    assert signer.public_key == PUB_B64


def test_config_signer_produces_the_golden_signature():
    cfg = BackpackConfig(auth={'private_key': KEY_HEX}, window_ms=5000)
    headers = cfg.signer().rest_headers('balanceQuery', timestamp_ms=1614550000000)
    assert headers['X-Signature'] == BALANCE_SIG
    assert headers['X-API-Key'] == PUB_B64


def test_config_signer_carries_window_and_clock_offset():
    cfg = BackpackConfig(auth={'private_key': KEY_HEX}, window_ms=1234, clock_offset_ms=-500)
    signer = cfg.signer(clock=lambda: 100.0)
    assert signer.window_ms == 1234
    assert signer.now_ms() == 100000 - 500


def test_private_channels_need_credentials():
    message = _error(enable_private_channels=True)
    assert 'enable_private_channels=True needs credentials' in message
    assert 'auth.private_key' in message and 'BACKPACK_PRIVATE_KEY' in message
    cfg = BackpackConfig(enable_private_channels=True, auth={'private_key': KEY_B64})
    assert cfg.signer() is not None


# ------------------------------------------------------------------------------ numbers

@pytest.mark.parametrize('field, good, bad', [
    ('window_ms', [1, 5000, 10000, '2500'], [0, -1, 10001, 60000, 'abc', 1.5]),
    ('symbol_cache_ttl_s', [0.001, 900, 86400], [0, -1, math.inf, math.nan]),
    ('listing_poll_s', [0.001, 300, 86400], [0, -1, math.inf, math.nan, True]),
    ('request_timeout_s', [0.1, 10, 120], [0, -5, math.inf, math.nan]),
    ('max_retries', [0, 5, 20], [-1, 21, 2.5]),
    ('retry_backoff_base_s', [0.01, 0.25, 10], [0, -0.1, math.nan]),
    ('retry_backoff_max_s', [0.25, 10, 600], [0, -1, math.inf]),
    ('clock_offset_ms', [-60000, 0, 60000, 1500], [-60001, 60001]),
])
def test_numeric_bounds(field, good, bad):
    for value in good:
        assert getattr(BackpackConfig(**{field: value}), field) == type(getattr(BackpackConfig(), field))(value)
    for value in bad:
        message = _error(**{field: value})
        assert message.startswith(f'invalid Backpack configuration: {field}'), message


def test_backoff_max_must_not_be_below_base():
    message = _error(retry_backoff_base_s=5, retry_backoff_max_s=1)
    assert 'retry_backoff_max_s (1.0) must be >= retry_backoff_base_s (5.0)' in message
    assert BackpackConfig(retry_backoff_base_s=2, retry_backoff_max_s=2).retry_backoff_max_s == 2


def test_bool_options_reject_nonsense():
    assert 'enable_private_channels' in _error(enable_private_channels='maybe')


# ------------------------------------------------------------------------------ sandbox, URLs

def test_sandbox_is_refused_with_a_pointer_to_the_simulator():
    message = _error(use_sandbox=True)
    assert 'Backpack has no sandbox' in message
    assert 'rest_url/ws_url' in message
    assert 'python -m cryptofeed.exchanges.backpack.simulator' in message


@pytest.mark.parametrize('given, expected', [
    ('https://api.backpack.exchange/', 'https://api.backpack.exchange'),
    ('https://api.backpack.exchange', 'https://api.backpack.exchange'),
    ('HTTPS://example.org:8443/prefix/', 'https://example.org:8443/prefix'),
    ('http://127.0.0.1:8080/', 'http://127.0.0.1:8080'),
    ('http://127.9.8.7:1', 'http://127.9.8.7:1'),
    ('http://localhost:9000', 'http://localhost:9000'),
    ('http://[::1]:9000/', 'http://[::1]:9000'),
])
def test_rest_url_accepted_and_normalized(given, expected):
    assert BackpackConfig(rest_url=given).rest_url == expected


@pytest.mark.parametrize('given, expected', [
    ('wss://ws.backpack.exchange/', 'wss://ws.backpack.exchange'),
    ('ws://127.0.0.1:8765', 'ws://127.0.0.1:8765'),
    ('ws://localhost:8765/', 'ws://localhost:8765'),
    ('ws://[::1]:8765', 'ws://[::1]:8765'),
])
def test_ws_url_accepted_and_normalized(given, expected):
    assert BackpackConfig(ws_url=given).ws_url == expected


@pytest.mark.parametrize('field, value, expected', [
    ('rest_url', 'http://api.backpack.exchange', 'only allowed to loopback hosts'),
    ('rest_url', 'http://10.0.0.1:8080', 'only allowed to loopback hosts'),
    ('rest_url', 'http://128.0.0.1', 'only allowed to loopback hosts'),
    ('rest_url', 'http://localhost.example.com', 'only allowed to loopback hosts'),
    ('ws_url', 'ws://ws.backpack.exchange', 'only allowed to loopback hosts'),
    ('rest_url', 'wss://api.backpack.exchange', 'must start with https://'),
    ('rest_url', 'ftp://api.backpack.exchange', 'must start with https://'),
    ('rest_url', 'api.backpack.exchange', 'must start with https://'),
    ('ws_url', 'https://ws.backpack.exchange', 'must start with wss://'),
    ('rest_url', 'https://', 'has no host'),
    ('rest_url', 'https://user:pw@api.backpack.exchange', 'must not contain a user name or password'),
    ('rest_url', 'https://api.backpack.exchange/?x=1', 'must not contain a query string'),
    ('rest_url', 'https://api.backpack.exchange:notaport', 'is not a valid URL'),
])
def test_bad_urls_are_rejected(field, value, expected):
    message = _error(**{field: value})
    assert f'{field} ' in message and expected in message


def test_plain_http_message_names_the_loopback_rule():
    message = _error(rest_url='http://api.backpack.exchange')
    assert '127.0.0.0/8, ::1, localhost' in message and 'use https://' in message


@pytest.mark.parametrize('host, expected', [
    ('localhost', True), ('LOCALHOST', True), ('127.0.0.1', True), ('127.255.0.3', True), ('::1', True),
    ('[::1]', True), ('128.0.0.1', False), ('10.1.1.1', False), ('example.com', False), ('', False), (None, False),
])
def test_is_loopback_host(host, expected):
    assert is_loopback_host(host) is expected


# ------------------------------------------------------------------------------ CA file

@pytest.fixture(scope='module')
def ca_pem(tmp_path_factory) -> Path:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp('ca') / 'ca.pem'
    ca.cert_pem.write_to_path(str(path))
    return path


def test_ca_file_builds_an_ssl_context_with_system_trust_and_the_ca(ca_pem):
    cfg = BackpackConfig(ca_file=str(ca_pem))
    assert cfg.ca_file == ca_pem
    context = cfg.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(item[0] for item in cert['subject']) for cert in context.get_ca_certs()]
    assert any('trustme' in subject.get('organizationName', '') for subject in subjects)
    assert cfg.ssl_context() is not context  # a fresh context each call


def test_relative_ca_file_is_made_absolute(ca_pem, monkeypatch):
    monkeypatch.chdir(ca_pem.parent)
    assert BackpackConfig(ca_file='ca.pem').ca_file == ca_pem


def test_missing_ca_file(tmp_path):
    message = _error(ca_file=tmp_path / 'nope.pem')
    assert 'ca_file' in message and 'does not exist' in message


def test_ca_file_that_is_a_directory(tmp_path):
    assert 'is not a file' in _error(ca_file=tmp_path)


def test_ca_file_without_certificates(tmp_path):
    path = tmp_path / 'junk.pem'
    path.write_text('this is not a certificate\n')
    assert 'holds no PEM certificate' in _error(ca_file=path)


def test_unreadable_ca_file(ca_pem, monkeypatch):
    # The suite may run as root, for whom chmod cannot make a file unreadable; ask os.access instead.
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: False if Path(path) == ca_pem else real_access(path, mode))
    assert 'is not readable' in _error(ca_file=ca_pem)


# ------------------------------------------------------------------------------ proxies

@pytest.mark.parametrize('url, stored', [
    ('http://proxy.corp:3128', 'http://proxy.corp:3128'),
    ('https://proxy.corp:3129', 'https://proxy.corp:3129'),
    ('socks5://127.0.0.1:1080', 'socks5://127.0.0.1:1080'),
    ('socks5h://user:pw@proxy.corp:1080', 'socks5h://user:pw@proxy.corp:1080'),
    (' HTTP://Proxy.Corp:3128/ ', 'http://Proxy.Corp:3128'),
    ('socks5://[::1]:1080', 'socks5://[::1]:1080'),
])
def test_supported_proxy_schemes(url, stored):
    cfg = BackpackConfig(proxies={'url': url})
    assert cfg.rest_proxy == stored and cfg.ws_proxy == stored
    assert cfg.proxies.url.scheme == stored.split(':')[0]


@pytest.mark.parametrize('url', ['ftp://proxy:21', 'socks4://proxy:1080', 'proxy.corp:3128', 'wss://proxy:1'])
def test_unsupported_proxy_schemes(url):
    message = _error(proxies={'url': url})
    assert 'proxies.url has unsupported scheme' in message
    assert 'socks5://' in message and 'http://' in message


@pytest.mark.parametrize('url', ['http://', 'socks5://h:1/some/path', 'http://h:notaport'])
def test_malformed_proxy_urls(url):
    assert 'proxies.url' in _error(proxies={'url': url})


def test_separate_rest_and_websocket_proxies_override_url():
    cfg = BackpackConfig(proxies={'url': 'http://both:1', 'websocket': 'socks5://ws-only:2'})
    assert cfg.rest_proxy == 'http://both:1'
    assert cfg.ws_proxy == 'socks5://ws-only:2'
    cfg = BackpackConfig(proxies={'rest': 'http://rest-only:3'})
    assert cfg.rest_proxy == 'http://rest-only:3'
    assert cfg.ws_proxy is None


def test_proxy_string_is_shorthand_for_url():
    cfg = BackpackConfig(proxies='socks5://p:1080')
    assert cfg.proxies == BackpackProxies(url='socks5://p:1080')


def test_empty_proxies_block_is_rejected():
    assert 'proxies is empty' in _error(proxies={})


def test_env_proxy_used_when_none_configured(monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://envproxy:3128')
    cfg = BackpackConfig()
    assert cfg.rest_proxy == 'http://envproxy:3128'
    assert cfg.ws_proxy == 'http://envproxy:3128'


def test_configured_proxy_wins_over_env(monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://envproxy:3128')
    cfg = BackpackConfig(proxies={'rest': 'socks5://mine:1080'})
    assert cfg.rest_proxy == 'socks5://mine:1080'
    assert cfg.ws_proxy == 'http://envproxy:3128'


@pytest.mark.parametrize('environ, expected', [
    ({'HTTPS_PROXY': 'http://a:1', 'https_proxy': 'http://b:1', 'ALL_PROXY': 'socks5://c:1'}, 'http://a:1'),
    ({'https_proxy': 'http://b:1', 'ALL_PROXY': 'socks5://c:1'}, 'http://b:1'),
    ({'ALL_PROXY': 'socks5://c:1', 'all_proxy': 'socks5://d:1'}, 'socks5://c:1'),
    ({'all_proxy': 'socks5h://d:1'}, 'socks5h://d:1'),
    ({'HTTPS_PROXY': '', 'ALL_PROXY': 'socks5://c:1'}, 'socks5://c:1'),
    ({'HTTPS_PROXY': 'corp-proxy:8080'}, 'http://corp-proxy:8080'),
    ({'HTTP_PROXY': 'http://plain:1'}, None),
    ({}, None),
])
def test_env_proxy_precedence(environ, expected):
    assert BackpackConfig().proxy_for('rest', environ) == expected


@pytest.mark.parametrize('rest_url, no_proxy, bypass', [
    ('http://127.0.0.1:8080', '127.0.0.1', True),
    ('http://127.0.0.1:8080', 'localhost,127.0.0.1', True),
    ('http://127.0.0.1:8080', '127.0.0.0/8', True),
    ('http://127.0.0.1:8080', '*', True),
    ('http://127.0.0.1:8080', '127.0.0.1:8080', True),
    ('http://localhost:8080', 'localhost', True),
    ('http://[::1]:8080', '::1', True),
    ('http://[::1]:8080', '[::1]', True),
    ('http://127.0.0.1:8080', 'localhost', False),
    ('http://127.0.0.1:8080', '', False),
    ('https://api.backpack.exchange', 'backpack.exchange', True),
    ('https://api.backpack.exchange', '.backpack.exchange', True),
    ('https://api.backpack.exchange', 'example.com,localhost', False),
    ('https://api.backpack.exchange', 'exchange.example', False),
])
def test_no_proxy(rest_url, no_proxy, bypass):
    cfg = BackpackConfig(rest_url=rest_url)
    got = cfg.proxy_for('rest', {'HTTPS_PROXY': 'http://envproxy:3128', 'NO_PROXY': no_proxy})
    assert got == (None if bypass else 'http://envproxy:3128')


def test_lowercase_no_proxy_and_per_transport_targets():
    cfg = BackpackConfig(rest_url='http://127.0.0.1:1', ws_url='wss://ws.backpack.exchange')
    environ = {'ALL_PROXY': 'socks5://p:1080', 'no_proxy': '127.0.0.1'}
    assert cfg.proxy_for('rest', environ) is None
    assert cfg.proxy_for('websocket', environ) == 'socks5://p:1080'


def test_no_proxy_does_not_bypass_a_configured_proxy():
    cfg = BackpackConfig(rest_url='http://127.0.0.1:1', proxies={'url': 'http://mine:1'})
    assert cfg.proxy_for('rest', {'NO_PROXY': '*'}) == 'http://mine:1'


def test_env_proxy_with_bad_scheme_names_the_variable_and_hides_the_password():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig().proxy_for('rest', {'ALL_PROXY': f'ftp://user:{PROXY_PASSWORD}@p:21'})
    assert 'ALL_PROXY' in str(info.value)
    assert PROXY_PASSWORD not in str(info.value)


def test_proxy_for_rejects_unknown_transport():
    with pytest.raises(ValueError):
        BackpackConfig().proxy_for('ftp', {})


# ------------------------------------------------------------------------------ frozen, unknown options

def test_config_is_frozen():
    cfg = BackpackConfig(auth={'private_key': KEY_B64}, proxies={'url': 'http://p:1'})
    with pytest.raises(BackpackConfigError, match='frozen'):
        cfg.window_ms = 10
    with pytest.raises(BackpackConfigError, match='frozen'):
        cfg.auth.private_key = 'x'
    with pytest.raises(BackpackConfigError, match='frozen'):
        cfg.proxies.url = None
    with pytest.raises(BackpackConfigError, match='frozen'):
        del cfg.rest_url
    assert cfg.window_ms == 5000
    assert hash(cfg) == hash(BackpackConfig(auth={'private_key': KEY_HEX}, proxies={'url': 'http://p:1'}))


def test_replace_returns_a_validated_copy_keeping_secrets():
    cfg = BackpackConfig(auth={'private_key': KEY_B64}, proxies={'url': f'http://u:{PROXY_PASSWORD}@p:1'})
    changed = cfg.replace(window_ms=2000)
    assert changed.window_ms == 2000 and cfg.window_ms == 5000
    assert changed.auth.private_key.get_secret_value() == KEY_B64
    assert changed.rest_proxy == f'http://u:{PROXY_PASSWORD}@p:1'
    with pytest.raises(BackpackConfigError, match='window_ms'):
        cfg.replace(window_ms=0)


def test_unknown_options_are_rejected_and_the_valid_ones_listed():
    message = _error(windw_ms=100)
    assert 'windw_ms: is not a known option' in message
    assert 'window_ms' in message and 'rest_url' in message
    message = _error(auth={'private_key': KEY_B64, 'secret': 'x'})
    assert 'auth.secret: is not a known option' in message and 'passphrase' in message


def test_all_problems_reported_at_once():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig(window_ms=0, max_retries=99, rest_url='ftp://x')
    locations = [loc for loc, _ in info.value.problems]
    assert locations == [('window_ms',), ('rest_url',), ('max_retries',)]
    assert str(info.value).count('\n  - ') == 3


def test_model_validate_and_json_raise_config_errors():
    with pytest.raises(BackpackConfigError, match='window_ms'):
        BackpackConfig.model_validate({'window_ms': 0})
    cfg = BackpackConfig.model_validate_json(json.dumps({'auth': {'private_key': KEY_HEX}}))
    assert cfg.auth.api_key == PUB_B64
    with pytest.raises(BackpackConfigError, match='not valid JSON'):
        BackpackConfig.model_validate_json('{"auth": ')


# ------------------------------------------------------------------------------ loaders

def test_from_dict_with_our_names():
    cfg = BackpackConfig.from_dict({'auth': {'private_key': KEY_HEX}, 'window_ms': 3000,
                                    'proxies': {'websocket': 'socks5://p:1'}})
    assert cfg.auth.private_key.get_secret_value() == KEY_B64
    assert cfg.window_ms == 3000 and cfg.ws_proxy == 'socks5://p:1'


def test_from_dict_accepts_cryptofeed_credential_names():
    cfg = BackpackConfig.from_dict({'key_id': PUB_B64, 'key_secret': KEY_HEX, 'key_passphrase': 'x',
                                    'native_enabled': True, 'account_name': 'main'})
    assert cfg.auth.api_key == PUB_B64
    assert cfg.auth.private_key.get_secret_value() == KEY_B64
    assert cfg.auth.passphrase.get_secret_value() == 'x'


def test_from_dict_mismatch_via_cryptofeed_names():
    with pytest.raises(BackpackConfigError, match='auth.api_key does not match'):
        BackpackConfig.from_dict({'key_id': OTHER_PUB_B64, 'key_secret': KEY_HEX})


def test_from_dict_refuses_two_credential_spellings():
    with pytest.raises(BackpackConfigError, match='not both'):
        BackpackConfig.from_dict({'key_secret': KEY_HEX, 'auth': {'private_key': KEY_HEX}})


def test_from_dict_placeholder_credentials_mean_no_auth():
    cfg = BackpackConfig.from_dict({'key_id': None, 'key_secret': '', 'window_ms': 100})
    assert cfg.auth is None and cfg.window_ms == 100


def test_from_dict_rejects_non_mappings_and_unknown_keys():
    with pytest.raises(BackpackConfigError, match='expects a mapping'):
        BackpackConfig.from_dict(['window_ms'])
    with pytest.raises(BackpackConfigError, match='from dict: colour: is not a known option'):
        BackpackConfig.from_dict({'colour': 'blue'})


def _cryptofeed_config_dict():
    return {'log': {'filename': 'feedhandler.log', 'level': 'INFO'}, 'uvloop': False,
            'backpack': {'key_id': PUB_B64, 'key_secret': KEY_HEX, 'native_enabled': True,
                         'enable_private_channels': True, 'window_ms': 2500,
                         'rest_url': 'http://127.0.0.1:8123/', 'proxies': {'rest': 'http://p:1'}}}


def _check_loaded(cfg: BackpackConfig):
    assert cfg.enable_private_channels is True
    assert cfg.auth.api_key == PUB_B64
    assert cfg.auth.private_key.get_secret_value() == KEY_B64
    assert cfg.window_ms == 2500
    assert cfg.rest_url == 'http://127.0.0.1:8123'
    assert cfg.rest_proxy == 'http://p:1'


def test_from_cryptofeed_config_object():
    _check_loaded(BackpackConfig.from_cryptofeed_config(Config(_cryptofeed_config_dict())))


def test_from_cryptofeed_config_dict():
    _check_loaded(BackpackConfig.from_cryptofeed_config(_cryptofeed_config_dict()))


def test_from_cryptofeed_config_yaml_file(tmp_path):
    path = tmp_path / 'config.yaml'
    path.write_text(
        'log:\n  filename: feedhandler.log\n  level: WARNING\n'
        'backpack:\n'
        f'  key_id: "{PUB_B64}"\n'
        f'  key_secret: "{KEY_HEX}"\n'
        '  native_enabled: true\n'
        '  enable_private_channels: true\n'
        '  window_ms: 2500\n'
        '  rest_url: http://127.0.0.1:8123/\n'
        '  proxies:\n    rest: http://p:1\n')
    _check_loaded(BackpackConfig.from_cryptofeed_config(path))
    _check_loaded(BackpackConfig.from_cryptofeed_config(str(path)))
    _check_loaded(BackpackConfig.from_cryptofeed_config(Config(str(path))))


def test_from_cryptofeed_config_without_section_gives_defaults(tmp_path):
    assert BackpackConfig.from_cryptofeed_config({'log': {}}) == BackpackConfig()
    assert BackpackConfig.from_cryptofeed_config(Config({'log': {}})) == BackpackConfig()
    empty = tmp_path / 'empty.yaml'
    empty.write_text('')
    assert BackpackConfig.from_cryptofeed_config(empty) == BackpackConfig()


def test_from_cryptofeed_config_errors_name_the_source(tmp_path):
    with pytest.raises(BackpackConfigError, match='must be a mapping'):
        BackpackConfig.from_cryptofeed_config({'backpack': ['a']})
    with pytest.raises(BackpackConfigError, match='does not exist'):
        BackpackConfig.from_cryptofeed_config(tmp_path / 'missing.yaml')
    path = tmp_path / 'bad.yaml'
    path.write_text('backpack:\n  window_ms: 0\n')
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_cryptofeed_config(path)
    assert str(path) in str(info.value) and 'section backpack' in str(info.value)
    assert 'window_ms' in str(info.value)
    with pytest.raises(BackpackConfigError, match='expects a cryptofeed Config'):
        BackpackConfig.from_cryptofeed_config(42)
    listing = tmp_path / 'list.yaml'
    listing.write_text('- a\n- b\n')
    with pytest.raises(BackpackConfigError, match='mapping at its top level'):
        BackpackConfig.from_cryptofeed_config(listing)


def test_yaml_syntax_error_does_not_quote_the_file(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text(f'backpack:\n  key_secret: {SECRET_B64}\n  bad: [unclosed\n')
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_cryptofeed_config(path)
    assert 'is not valid YAML near line' in str(info.value)
    assert SECRET_B64 not in str(info.value)


def test_unquoted_numeric_hex_key_in_yaml_is_reported(tmp_path):
    path = tmp_path / 'digits.yaml'
    path.write_text('backpack:\n  key_secret: ' + '12' * 32 + '\n')
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_cryptofeed_config(path)
    assert 'quote it in YAML' in str(info.value)
    assert '12' * 32 not in str(info.value)


def test_from_env_reads_every_documented_variable(ca_pem):
    environ = {
        'BACKPACK_API_KEY': PUB_B64, 'BACKPACK_PUBLIC_KEY': PUB_HEX, 'BACKPACK_PRIVATE_KEY': KEY_HEX,
        'BACKPACK_WINDOW_MS': '7000', 'BACKPACK_REST_URL': 'http://127.0.0.1:9000/',
        'BACKPACK_WS_URL': 'ws://127.0.0.1:9001', 'BACKPACK_CA_FILE': str(ca_pem), 'UNRELATED': 'x',
    }
    cfg = BackpackConfig.from_env(environ)
    assert cfg.auth.private_key.get_secret_value() == KEY_B64
    assert cfg.auth.api_key == PUB_B64 and cfg.auth.public_key == PUB_B64
    assert cfg.window_ms == 7000
    assert cfg.rest_url == 'http://127.0.0.1:9000' and cfg.ws_url == 'ws://127.0.0.1:9001'
    assert cfg.ca_file == ca_pem


def test_from_env_defaults_to_os_environ_and_overrides_win(monkeypatch):
    monkeypatch.setenv('BACKPACK_PRIVATE_KEY', KEY_B64)
    monkeypatch.setenv('BACKPACK_WINDOW_MS', '7000')
    cfg = BackpackConfig.from_env(window_ms=100, enable_private_channels=True)
    assert cfg.window_ms == 100
    assert cfg.enable_private_channels is True
    assert cfg.auth.api_key == PUB_B64


def test_from_env_empty_variables_count_as_unset():
    cfg = BackpackConfig.from_env({'BACKPACK_PRIVATE_KEY': '', 'BACKPACK_API_KEY': '  ', 'BACKPACK_WINDOW_MS': ''})
    assert cfg == BackpackConfig()


def test_from_env_api_key_without_private_key():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_env({'BACKPACK_API_KEY': PUB_B64})
    assert 'BACKPACK_API_KEY is set but BACKPACK_PRIVATE_KEY is not' in str(info.value)


def test_from_env_errors_name_the_variable():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_env({'BACKPACK_PRIVATE_KEY': SECRET_B64[:-4], 'BACKPACK_WINDOW_MS': 'soon'})
    message = str(info.value)
    assert 'from environment' in message
    assert 'window_ms (from BACKPACK_WINDOW_MS)' in message
    assert 'auth.private_key (from BACKPACK_PRIVATE_KEY)' in message
    assert SECRET_B64[:-4] not in message


def test_from_env_mismatch_names_the_variable():
    with pytest.raises(BackpackConfigError, match=r'auth.api_key \(from BACKPACK_API_KEY\) does not match'):
        BackpackConfig.from_env({'BACKPACK_API_KEY': OTHER_PUB_B64, 'BACKPACK_PRIVATE_KEY': KEY_B64})


def test_coerce(tmp_path, monkeypatch):
    assert BackpackConfig.coerce(None) == BackpackConfig()
    cfg = BackpackConfig(window_ms=42)
    assert BackpackConfig.coerce(cfg) is cfg
    assert BackpackConfig.coerce({'window_ms': 43}).window_ms == 43
    assert BackpackConfig.coerce({'key_secret': KEY_HEX}).auth.api_key == PUB_B64
    _check_loaded(BackpackConfig.coerce(_cryptofeed_config_dict()))
    _check_loaded(BackpackConfig.coerce(Config(_cryptofeed_config_dict())))
    path = tmp_path / 'cf.yaml'
    path.write_text('backpack:\n  window_ms: 44\n')
    assert BackpackConfig.coerce(path).window_ms == 44
    assert BackpackConfig.coerce(str(path)).window_ms == 44
    monkeypatch.setenv('CRYPTOFEED_CONFIG', str(path))
    assert BackpackConfig.coerce(None).window_ms == 44
    with pytest.raises(BackpackConfigError, match='cannot build a BackpackConfig from int'):
        BackpackConfig.coerce(5)
    with pytest.raises(BackpackConfigError, match='does not exist'):
        BackpackConfig.coerce(str(tmp_path / 'missing.yaml'))


# ------------------------------------------------------------------------------ secret hiding

def _full_config(ca_pem=None) -> BackpackConfig:
    return BackpackConfig(
        enable_private_channels=True,
        auth={'private_key': SECRET_HEX, 'passphrase': 'pass-phrase-secret'},
        proxies={'url': f'socks5://alice:{PROXY_PASSWORD}@proxy.corp:1080',
                 'rest': f'http://bob:{PROXY_PASSWORD}@proxy.corp:3128'})


def _assert_clean(text: str):
    for secret in (SECRET_HEX, SECRET_HEX.upper(), SECRET_B64, SECRET_B64.rstrip('='), 'pass-phrase-secret',
                   PROXY_PASSWORD):
        assert secret not in text, f'secret leaked: {secret!r} in {text!r}'


def test_secrets_absent_from_repr_str_and_dumps():
    cfg = _full_config()
    for text in (repr(cfg), str(cfg), repr(cfg.auth), str(cfg.auth), repr(cfg.proxies), str(cfg.model_dump()),
                 repr(cfg.model_dump()), cfg.model_dump_json(), json.dumps(cfg.model_dump(mode='json')),
                 repr(cfg.proxies.url), str(cfg.proxies.rest), repr(cfg.signer())):
        _assert_clean(text)
    assert 'socks5://alice:***@proxy.corp:1080' in repr(cfg)
    assert cfg.model_dump(mode='json')['auth']['private_key'] == '**********'


def test_secret_values_remain_reachable_on_purpose():
    cfg = _full_config()
    assert cfg.auth.private_key.get_secret_value() == SECRET_B64
    assert cfg.proxies.url.get_secret_value() == f'socks5://alice:{PROXY_PASSWORD}@proxy.corp:1080'
    assert cfg.rest_proxy == f'http://bob:{PROXY_PASSWORD}@proxy.corp:3128'


def test_mask_url():
    assert mask_url(f'http://u:{PROXY_PASSWORD}@h:1') == 'http://u:***@h:1'
    assert mask_url('http://h:1') == 'http://h:1'
    assert mask_url('socks5://h:bad') == '<unparseable URL>'
    assert str(ProxyURL(f'socks5h://u:{PROXY_PASSWORD}@h:1')) == 'socks5h://u:***@h:1'


@pytest.mark.parametrize('bad_key', [SECRET_HEX[:-2], SECRET_HEX + 'zz', SECRET_B64[:-5] + '!!!!=',
                                     SECRET_HEX + SECRET_HEX])
def test_invalid_private_key_never_echoed_in_errors(bad_key):
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig(auth={'private_key': bad_key})
    for text in (str(info.value), repr(info.value), repr(info.value.problems)):
        assert bad_key not in text
        assert bad_key[:20] not in text
    assert info.value.__cause__ is None


def test_pydantic_validation_error_never_contains_the_private_key():
    # Embedded in another pydantic model, or validated by a TypeAdapter, our models raise
    # pydantic's own ValidationError; neither its message nor errors() may carry the key.
    bad_key = SECRET_HEX[:-2]

    class Outer(BaseModel):
        backpack: BackpackConfig

    with pytest.raises(ValidationError) as info:
        Outer(backpack={'auth': {'private_key': bad_key}, 'key_secret': bad_key})
    texts = [str(info.value), repr(info.value), repr(info.value.errors()), info.value.json()]
    with pytest.raises(ValidationError) as info:
        TypeAdapter(BackpackConfig).validate_python({'auth': {'private_key': bad_key, 'typo': bad_key}})
    texts += [str(info.value), repr(info.value.errors())]
    for text in texts:
        assert bad_key not in text
    assert 'backpack.auth.private_key' in texts[0]
    assert 'an ED25519 private key (seed) is 32 bytes' in texts[0]


def test_misplaced_secrets_are_not_echoed():
    # The key given at the wrong level, as the auth block itself, or under a misspelt name.
    for kwargs in ({'private_key': SECRET_B64}, {'auth': SECRET_B64}, {'auth': {'privat_key': SECRET_B64}},
                   {'key_secret': SECRET_B64}):
        with pytest.raises(BackpackConfigError) as info:
            BackpackConfig(**kwargs)
        _assert_clean(str(info.value))
        _assert_clean(repr(info.value.problems))


def test_proxy_password_not_echoed_in_errors():
    for kwargs in ({'proxies': {'url': f'ftp://u:{PROXY_PASSWORD}@h:1'}},
                   {'proxies': {'url': f'socks5://u:{PROXY_PASSWORD}@h:1/x'}},
                   {'proxies': {'rest': f'http://u:{PROXY_PASSWORD}@h:1', 'bad': f'http://u:{PROXY_PASSWORD}@h'}},
                   {'rest_url': f'https://u:{PROXY_PASSWORD}@api.backpack.exchange'}):
        with pytest.raises(BackpackConfigError) as info:
            BackpackConfig(**kwargs)
        _assert_clean(str(info.value))


def test_nothing_secret_is_logged(caplog, tmp_path, monkeypatch):
    caplog.set_level(logging.DEBUG)
    cfg = _full_config()
    cfg.rest_proxy
    cfg.ws_proxy
    BackpackConfig().proxy_for('rest', {'ALL_PROXY': f'socks5://u:{PROXY_PASSWORD}@h:1'})
    BackpackConfig.from_env({'BACKPACK_PRIVATE_KEY': SECRET_B64})
    BackpackConfig.from_dict({'key_secret': SECRET_HEX, 'key_passphrase': 'pass-phrase-secret'})
    path = tmp_path / 'c.yaml'
    path.write_text(f'backpack:\n  key_secret: "{SECRET_HEX}"\n')
    BackpackConfig.from_cryptofeed_config(path)
    with pytest.raises(BackpackConfigError):
        BackpackConfig(auth={'private_key': SECRET_HEX[:-2]})
    assert 'proxy from ALL_PROXY: socks5://u:***@h:1' in caplog.text  # logging did happen
    _assert_clean(caplog.text)
    for record in caplog.records:
        _assert_clean(repr(record.args))


@pytest.mark.parametrize('field', ['window_ms', 'max_retries', 'request_timeout_s', 'clock_offset_ms'])
def test_a_boolean_is_not_a_number(field):
    with pytest.raises(BackpackConfigError, match=f'{field} must be a number, got True'):
        BackpackConfig(**{field: True})


# ---- first-hour papercuts (issue 19): what a misspelt option or section tells the user ----

def test_a_misspelt_option_suggests_the_name_meant_and_lists_every_name_the_section_takes():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_cryptofeed_config({'backpack': {'native_enabled': True, 'windw_ms': 3000}})
    message = str(info.value)
    assert 'windw_ms: is not a known option (did you mean window_ms?)' in message
    valid = message.split('valid options here: ', 1)[1].split(', ')
    for name in ('window_ms', 'native_enabled', 'account_name', 'key_id', 'key_secret', 'key_passphrase'):
        assert name in valid
    with pytest.raises(BackpackConfigError, match=r'key_secrt: is not a known option \(did you mean key_secret\?\)'):
        BackpackConfig.from_dict({'key_secrt': KEY_B64})


def test_options_the_model_itself_takes_are_listed_without_the_section_only_names():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig(rest_ulr='http://127.0.0.1:1')
    message = str(info.value)
    assert 'rest_ulr: is not a known option (did you mean rest_url?)' in message
    assert 'key_id' not in message and 'native_enabled' not in message
    with pytest.raises(BackpackConfigError, match=r'auth.privat_key: is not a known option \(did you mean private_key\?\)'):
        BackpackConfig(auth={'private_key': KEY_B64, 'privat_key': 'x'})


def test_a_name_far_from_every_option_gets_no_suggestion():
    with pytest.raises(BackpackConfigError) as info:
        BackpackConfig.from_dict({'colour': 'blue'})
    assert 'did you mean' not in str(info.value)


def test_configuration_errors_are_the_public_class_itself_with_their_problems():
    for build in (lambda: BackpackConfig(window_ms=0), lambda: BackpackConfig.from_dict({'windw_ms': 1}),
                  lambda: BackpackConfig.from_env({'BACKPACK_WINDOW_MS': 'x'}),
                  lambda: BackpackAuth.model_validate({'private_key': 'short'})):
        with pytest.raises(BackpackConfigError) as info:
            build()
        assert type(info.value) is BackpackConfigError          # a traceback names the documented class
        assert type(info.value).__module__ == 'cryptofeed.exchanges.backpack.core.errors'
        assert info.value.problems and all(isinstance(loc, tuple) for loc, _ in info.value.problems)
    assert BackpackConfigError('plain').problems == []


@pytest.fixture
def fresh_section_warnings(monkeypatch):
    from cryptofeed.exchanges.backpack.core import config as config_module
    monkeypatch.setattr(config_module, '_warned_sections', set())


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize('key', ['backpak', 'Backpack', 'back-pack', 'bakpack'])
def test_a_misspelt_section_is_warned_about_instead_of_silently_giving_the_live_defaults(
        key, caplog, fresh_section_warnings, tmp_path):
    path = tmp_path / 'config.yaml'
    path.write_text(f'log:\n  level: WARNING\n{key}:\n  rest_url: http://127.0.0.1:8765\n')
    with caplog.at_level(logging.WARNING):
        config = BackpackConfig.from_cryptofeed_config(str(path))
    assert config.rest_url == DEFAULT_REST_URL                  # still the defaults: the section is not guessed
    (message,) = _warnings(caplog)
    assert f"section '{key}' but no backpack: section" in message and 'rename it to backpack:' in message
    assert DEFAULT_REST_URL in message and str(path) in message


def test_a_near_miss_beside_the_real_section_is_warned_about_too(caplog, fresh_section_warnings):
    root = {'backpack': {'window_ms': 3000}, 'backpak': {'rest_url': 'http://127.0.0.1:8765'}}
    with caplog.at_level(logging.WARNING):
        assert BackpackConfig.from_cryptofeed_config(root).window_ms == 3000
        BackpackConfig.from_cryptofeed_config(root)              # once per process and key
    (message,) = _warnings(caplog)
    assert "section 'backpak' besides backpack:" in message


def test_other_exchanges_sections_are_not_taken_for_misspellings(caplog, fresh_section_warnings):
    root = {'binance': {}, 'bitpanda': {}, 'backpack_ccxt': {}, 'log': {}, 'uvloop': True, 'backpack': {}}
    with caplog.at_level(logging.WARNING):
        BackpackConfig.from_cryptofeed_config(root)
    assert _warnings(caplog) == []


def test_the_feed_registry_warns_about_a_misspelt_section_holding_native_enabled(caplog, fresh_section_warnings):
    from cryptofeed.exchanges.backpack.hosts.registry import choose

    with caplog.at_level(logging.WARNING):
        choice = choose(Config(config={'backpak': {'native_enabled': True}}), environ={})
    assert choice.native is False                                 # the flag was not read ...
    assert any("section 'backpak'" in message for message in _warnings(caplog))   # ... and the user is told
