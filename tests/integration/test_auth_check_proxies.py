"""``backpack-auth-check --server`` through real proxies on 127.0.0.1.

The CLI takes its proxy from the environment exactly as a feed does (``BackpackConfig`` resolves
it, ``BackpackRestClient`` uses it): these run the CLI as a subprocess against the TLS simulator
through the SOCKS5 relay and proxy.py, and check that NO_PROXY, a dead proxy and a malformed proxy
variable behave as documented, without the proxy password or the private key in the output.
"""
from __future__ import annotations

import json

import pytest

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.proxy_servers import ProxyPyProcess, Socks5Server
from tests.unit.test_auth_check import KEY_B64, assert_no_secret, run_async

PASSWORD = 's3cr%t'


@pytest.fixture
async def sim():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, tls=True) as simulator:
        yield simulator


@pytest.fixture
async def socks5():
    server = await Socks5Server().start()
    yield server
    await server.stop()


@pytest.fixture(scope='module')
def proxy_py_with_auth(tmp_path_factory):
    proc = ProxyPyProcess(tmp_path_factory.mktemp('proxy_py_auth'), ['--basic-auth', f'feed:{PASSWORD}']).start()
    yield proc
    proc.stop()


async def check(sim, **env):
    result = await run_async('--server', sim.rest_url, '--ca-file', sim.ca_file, '--json',
                             env={'BACKPACK_PRIVATE_KEY': KEY_B64, **env})
    assert_no_secret(result)
    return result


async def test_all_proxy_socks5_carries_the_server_check(sim, socks5):
    result = await check(sim, ALL_PROXY=socks5.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)['server']['accepted'] is True
    port = int(sim.rest_url.rsplit(':', 1)[1])
    assert socks5.connects and set(socks5.connects) == {('127.0.0.1', port)}


async def test_https_proxy_with_credentials_carries_it_and_the_password_stays_hidden(sim, proxy_py_with_auth):
    proxy = f'http://feed:s3cr%25t@127.0.0.1:{proxy_py_with_auth.port}'
    result = await check(sim, HTTPS_PROXY=proxy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)['server']['accepted'] is True
    port = int(sim.rest_url.rsplit(':', 1)[1])
    await proxy_py_with_auth.wait_for_log(f'CONNECT 127.0.0.1:{port} ')
    assert 's3cr' not in result.stdout + result.stderr


async def test_no_proxy_keeps_the_simulator_direct(sim, refused_port):
    result = await check(sim, ALL_PROXY=f'socks5://127.0.0.1:{refused_port}', NO_PROXY='127.0.0.1')
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_dead_proxy_is_exit_3_not_a_direct_connection(sim, refused_port):
    result = await check(sim, HTTPS_PROXY=f'http://127.0.0.1:{refused_port}')
    assert result.returncode == 3
    server = json.loads(result.stdout)['server']
    assert server['status'] is None and 'request failed' in server['error']


async def test_a_malformed_proxy_variable_is_a_usage_error_without_its_password(sim):
    result = await check(sim, ALL_PROXY='ftp://feed:hunter2@127.0.0.1:21')
    assert result.returncode == 2
    assert 'ALL_PROXY' in result.stderr and 'unsupported scheme' in result.stderr
    assert 'hunter2' not in result.stdout + result.stderr
