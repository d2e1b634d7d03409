"""BackpackRestClient through real proxies on 127.0.0.1, to a TLS server signed by a test CA.

* HTTP CONNECT: proxy.py (``python -m proxy``) in its own process; its access log must show
  ``CONNECT 127.0.0.1:<server port>`` -- the tunnel our HTTPS request went through.
* SOCKS5: the relay in ``proxy_servers.py``; its CONNECT log must show the target, as an IP
  for ``socks5://`` and as the host name for ``socks5h://`` (resolved by the proxy).
* Environment fallback (``HTTPS_PROXY``, ``ALL_PROXY``) when no proxy is passed explicitly.
* Certificate checking stays on end to end: without the test CA the request is refused.
"""
from __future__ import annotations

import ssl

import pytest
import trustme

from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError, BackpackRequestError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from tests.integration.proxy_servers import ProxyPyProcess, Socks5Server
from tests.integration.rest_server import RestServer, json_reply, text_reply

DEPTH = {'asks': [['100.65', '65.5']], 'bids': [], 'lastUpdateId': '7', 'timestamp': 1788285151254895}
PROXY_VARS = ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY')


@pytest.fixture(scope='module')
def ca():
    return trustme.CA()


@pytest.fixture(scope='module')
def client_ssl(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture(scope='module')
def proxy_py(tmp_path_factory):
    proc = ProxyPyProcess(tmp_path_factory.mktemp('proxy_py')).start()
    yield proc
    proc.stop()


@pytest.fixture(scope='module')
def proxy_py_with_auth(tmp_path_factory):
    proc = ProxyPyProcess(tmp_path_factory.mktemp('proxy_py_auth'), ['--basic-auth', 'feed:s3cr%t']).start()
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
async def tls_server(ca):
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert('127.0.0.1', 'localhost').configure_cert(server_ctx)
    srv = await RestServer(ssl_context=server_ctx).start()
    srv.script('/api/v1/depth', json_reply(DEPTH))
    srv.script('/api/v1/ping', text_reply('pong'))
    yield srv
    await srv.stop()


@pytest.fixture
async def socks5():
    server = await Socks5Server().start()
    yield server
    await server.stop()


async def fetch_depth(base_url, **kwargs):
    client = BackpackRestClient(base_url, max_retries=0, **kwargs)
    try:
        return await client.depth('SOL_USDC')
    finally:
        await client.close()   # closing ends the tunnel, which is when proxy.py writes its access line


async def test_https_through_http_connect_proxy(tls_server, proxy_py, client_ssl):
    assert await fetch_depth(tls_server.url, proxy=proxy_py.url, ssl=client_ssl) == DEPTH
    line = await proxy_py.wait_for_log(f'CONNECT 127.0.0.1:{tls_server.port} ')
    assert 'bytes' in line
    assert len(tls_server.hits) == 1


async def test_proxy_credentials_from_the_url_are_sent_and_never_shown(tls_server, proxy_py_with_auth, client_ssl,
                                                                       caplog):
    port = proxy_py_with_auth.port
    good = f'http://feed:s3cr%25t@127.0.0.1:{port}'        # percent-encoded '%' in the password
    assert await fetch_depth(tls_server.url, proxy=good, ssl=client_ssl) == DEPTH
    await proxy_py_with_auth.wait_for_log(f'CONNECT 127.0.0.1:{tls_server.port} ')

    bad = f'http://feed:wrong-password@127.0.0.1:{port}'
    client = BackpackRestClient(tls_server.url, proxy=bad, ssl=client_ssl, max_retries=3, backoff_base_s=0.001,
                                backoff_max_s=0.001)
    try:
        with pytest.raises(BackpackConfigError, match='rejected our credentials') as info:
            await client.depth('SOL_USDC')
    finally:
        await client.close()
    assert client.stats.requests == 1          # a wrong password is not retried
    assert 'wrong-password' not in str(info.value) + caplog.text + repr(client)
    assert len(tls_server.hits) == 1


async def test_plain_http_through_the_http_proxy(proxy_py):
    server = await RestServer().start()
    try:
        server.script('/api/v1/ping', text_reply('pong'))
        client = BackpackRestClient(server.url, proxy=proxy_py.url, max_retries=0)
        try:
            assert await client.ping() == 'pong'
        finally:
            await client.close()
        await proxy_py.wait_for_log(f'GET 127.0.0.1:{server.port}/api/v1/ping')
    finally:
        await server.stop()


async def test_https_through_socks5_resolving_locally(tls_server, socks5, client_ssl):
    assert await fetch_depth(tls_server.url, proxy=socks5.url, ssl=client_ssl) == DEPTH
    assert socks5.connects == [('127.0.0.1', tls_server.port)]
    assert len(tls_server.hits) == 1


async def test_https_through_socks5h_resolving_at_the_proxy(tls_server, socks5, client_ssl):
    url = f'https://localhost:{tls_server.port}'
    proxy = f'socks5h://127.0.0.1:{socks5.port}'
    assert await fetch_depth(url, proxy=proxy, ssl=client_ssl) == DEPTH
    assert socks5.connects == [('localhost', tls_server.port)]


async def test_https_proxy_environment_variable_is_used_when_none_is_given(tls_server, proxy_py, client_ssl,
                                                                           monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', proxy_py.url)
    client = BackpackRestClient(tls_server.url, ssl=client_ssl, max_retries=0)
    assert client.proxy == proxy_py.url
    try:
        assert await client.depth('SOL_USDC') == DEPTH
    finally:
        await client.close()
    marker = f'CONNECT 127.0.0.1:{tls_server.port} '
    await proxy_py.wait_for_log(marker)


async def test_all_proxy_environment_variable_with_socks5(tls_server, socks5, client_ssl, monkeypatch):
    monkeypatch.setenv('ALL_PROXY', socks5.url)
    assert await fetch_depth(tls_server.url, ssl=client_ssl) == DEPTH
    assert socks5.connects == [('127.0.0.1', tls_server.port)]


async def test_no_proxy_sends_matching_hosts_direct(tls_server, socks5, client_ssl, monkeypatch):
    monkeypatch.setenv('ALL_PROXY', socks5.url)
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    assert await fetch_depth(tls_server.url, ssl=client_ssl) == DEPTH
    assert socks5.connects == []
    assert len(tls_server.hits) == 1


@pytest.mark.parametrize('scheme', ['http', 'socks5'])
async def test_a_dead_proxy_fails_instead_of_going_direct(tls_server, client_ssl, scheme, refused_port):
    with pytest.raises(BackpackRequestError) as info:
        await fetch_depth(tls_server.url, proxy=f'{scheme}://127.0.0.1:{refused_port}', ssl=client_ssl)
    assert info.value.status is None
    assert tls_server.hits == []


async def test_untrusted_certificate_is_a_config_error_not_retried(tls_server, proxy_py):
    client = BackpackRestClient(tls_server.url, proxy=proxy_py.url, max_retries=3, backoff_base_s=0.001,
                                backoff_max_s=0.01)
    try:
        with pytest.raises(BackpackConfigError, match='ca_file'):
            await client.depth('SOL_USDC')
    finally:
        await client.close()
    assert client.stats.requests == 1 and client.stats.retries == 0
    assert client.stats.failures_by_status == {'config': 1}
    assert tls_server.hits == []


async def test_untrusted_certificate_through_socks5_is_a_config_error_too(tls_server, socks5):
    client = BackpackRestClient(tls_server.url, proxy=socks5.url, max_retries=3, backoff_base_s=0.001,
                                backoff_max_s=0.01)
    try:
        with pytest.raises(BackpackConfigError, match='ca_file'):
            await client.depth('SOL_USDC')
    finally:
        await client.close()
    assert client.stats.requests == 1
    assert socks5.connects == [('127.0.0.1', tls_server.port)]
    assert tls_server.hits == []
