"""BackpackRestClient against a real aiohttp server on 127.0.0.1: responses, errors, retries,
signing, the circuit breaker, timeouts, raw-data recording and session ownership."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time

import aiohttp
import pytest

from cryptofeed.connection import Connection
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.errors import (
    BackpackAuthError, BackpackMaintenanceError, BackpackProtocolError, BackpackRateLimitedError,
    BackpackRegionRestrictedError, BackpackRequestError, is_retryable,
)
from cryptofeed.exchanges.backpack.core.rest.client import BackpackCircuitOpenError, BackpackRestClient, CircuitBreaker
from tests.integration.rest_server import RestServer, json_reply, slow_reply, text_reply, verify_signature

SEED = bytes([1]) * 32
DEPTH = {'asks': [['100.65', '65.5']], 'bids': [['100.62', '168.89']], 'lastUpdateId': '4324522523',
         'timestamp': 1788285151254895}
MAINTENANCE = {'code': 'MAINTENANCE', 'message': 'System under maintenance'}


class FakeClock:
    def __init__(self, now: float = 500.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server():
    srv = await RestServer().start()
    yield srv
    await srv.stop()


@pytest.fixture
async def make_client(server):
    clients = []

    def make(**kwargs):
        kwargs.setdefault('backoff_base_s', 0.001)
        kwargs.setdefault('backoff_max_s', 0.01)
        kwargs.setdefault('rng', random.Random(5))
        kwargs.setdefault('proxy', None)
        client = BackpackRestClient(kwargs.pop('base_url', server.url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY'):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def stepping_signer():
    """A signer whose clock moves 1 ms per reading: every signature gets its own timestamp."""
    ticks = itertools.count()
    return BackpackSigner(SEED, clock=lambda: 1_788_285_000.0 + next(ticks) / 1000)


# -- successful responses ------------------------------------------------------------------

async def test_public_endpoints_return_parsed_json_with_strings_untouched(server, make_client):
    market = {'symbol': 'SOL_USDC', 'filters': {'price': {'tickSize': '0.01'}}}
    server.script('/api/v1/markets', json_reply([market]))
    server.script('/api/v1/market', json_reply(market))
    server.script('/api/v1/depth', json_reply(DEPTH))
    server.script('/api/v1/trades', json_reply([{'id': 1, 'price': '100.67', 'quantity': '0.22'}]))
    server.script('/api/v1/trades/history', json_reply([{'id': 0, 'price': '1'}]))
    server.script('/api/v1/klines', json_reply([{'start': '2026-09-01 16:52:00', 'open': '101.05'}]))
    server.script('/api/v1/markPrices', json_reply([{'symbol': 'SOL_USDC_PERP', 'fundingRate': '0.0000125'}]))
    server.script('/api/v1/fundingRates', json_reply([{'fundingRate': '0.0001'}]))
    server.script('/api/v1/openInterest', json_reply([{'openInterest': '206529.68'}]))
    server.script('/api/v1/status', json_reply({'status': 'Ok', 'message': None}))
    client = make_client()

    assert await client.markets(['SPOT', 'PERP']) == [market]
    assert await client.market('SOL_USDC') == market
    assert await client.depth('SOL_USDC') == DEPTH
    assert (await client.trades('SOL_USDC', limit=5))[0]['price'] == '100.67'
    assert await client.trades_history('SOL_USDC', limit=10, offset=1000) == [{'id': 0, 'price': '1'}]
    assert (await client.klines('SOL_USDC', '1m', 1788285000, 1788285600))[0]['open'] == '101.05'
    assert (await client.mark_prices('SOL_USDC_PERP'))[0]['fundingRate'] == '0.0000125'
    assert await client.funding_rates('BTC_USDC_PERP', limit=3) == [{'fundingRate': '0.0001'}]
    assert await client.open_interest() == [{'openInterest': '206529.68'}]
    assert await client.status() == {'status': 'Ok', 'message': None}

    queries = {hit.path: hit.query for hit in server.hits}
    assert queries['/api/v1/depth'] == {'symbol': 'SOL_USDC', 'limit': '1000'}
    assert queries['/api/v1/trades/history'] == {'symbol': 'SOL_USDC', 'limit': '10', 'offset': '1000'}
    assert queries['/api/v1/klines'] == {'symbol': 'SOL_USDC', 'interval': '1m', 'startTime': '1788285000',
                                         'endTime': '1788285600'}
    assert queries['/api/v1/fundingRates'] == {'symbol': 'BTC_USDC_PERP', 'limit': '3', 'offset': '0'}
    assert queries['/api/v1/openInterest'] == {}
    assert all('X-Signature' not in hit.headers for hit in server.hits)
    assert client.stats.requests == 10 and client.stats.failures == 0
    assert client.stats.last_status == 200 and client.stats.last_latency_s > 0


async def test_repeated_query_parameters(server, make_client):
    seen = []

    def record(request):
        seen.append(request.query.getall('marketType'))
        return json_reply([])(request)
    server.script('/api/v1/markets', record)
    await make_client().markets(['SPOT', 'PERP'])
    assert seen == [['SPOT', 'PERP']]


async def test_text_endpoints(server, make_client):
    server.script('/api/v1/ping', text_reply('pong'))
    server.script('/api/v1/time', text_reply('1788285151083'))
    client = make_client()
    assert await client.ping() == 'pong'
    assert await client.server_time_ms() == 1788285151083


async def test_unreadable_time_is_a_protocol_error(server, make_client):
    server.script('/api/v1/time', text_reply('soon'))
    with pytest.raises(BackpackProtocolError):
        await make_client().server_time_ms()


async def test_ticker_204_returns_none(server, make_client):
    from aiohttp import web
    server.script('/api/v1/ticker', lambda request: web.Response(status=204))
    assert await make_client().ticker('SOL_USDC') is None


async def test_200_with_a_non_json_body_is_a_protocol_error_not_retried(server, make_client):
    server.script('/api/v1/depth', text_reply('<html>cdn</html>'))
    client = make_client()
    with pytest.raises(BackpackProtocolError, match='not JSON'):
        await client.depth('SOL_USDC')
    assert len(server.hits) == 1


# -- error translation ---------------------------------------------------------------------

async def test_json_error_body_is_parsed(server, make_client):
    body = {'code': 'INVALID_SYMBOL', 'message': 'Invalid symbol'}
    server.script('/api/v1/depth', json_reply(body, status=400))
    with pytest.raises(BackpackRequestError) as info:
        await make_client().depth('NOPE')
    exc = info.value
    assert (exc.status, exc.code, exc.path) == (400, 'INVALID_SYMBOL', '/api/v1/depth')
    assert json.loads(exc.body) == body
    assert 'Invalid symbol' in str(exc)
    assert not is_retryable(exc)
    assert len(server.hits) == 1


async def test_non_json_400_body_is_kept_as_text(server, make_client):
    server.script('/api/v1/klines', text_reply('failed to parse parameter interval: 7m', status=400))
    with pytest.raises(BackpackRequestError) as info:
        await make_client().klines('SOL_USDC', '7m', 0)
    assert info.value.status == 400 and info.value.code is None
    assert info.value.body == 'failed to parse parameter interval: 7m'


@pytest.mark.parametrize('status', [401, 403])
async def test_auth_failures_never_leak_headers(server, make_client, status, caplog):
    server.script('/api/v1/capital', json_reply({'code': 'INVALID_SIGNATURE', 'message': 'Invalid signature'},
                                                status=status))
    client = make_client(signer=BackpackSigner(SEED))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BackpackAuthError) as info:
            await client.balances()
    sent = server.hits[0].headers
    text = str(info.value) + caplog.text
    assert 'INVALID_SIGNATURE' in str(info.value) and str(status) in str(info.value)
    assert sent['X-Signature'] not in text and sent['X-API-Key'] not in text
    assert info.value.status == status
    assert len(server.hits) == 1


async def test_other_status_codes(server, make_client):
    server.script('/api/v1/market', json_reply({'code': 'RESOURCE_NOT_FOUND', 'message': 'Market not found'},
                                               status=404))
    with pytest.raises(BackpackRequestError) as info:
        await make_client().market('NOPE')
    assert type(info.value) is BackpackRequestError and info.value.status == 404


async def test_signed_call_without_a_signer_says_to_configure_keys(server, make_client):
    client = make_client()
    with pytest.raises(BackpackAuthError, match='configure'):
        await client.balances()
    assert server.hits == []
    assert client.session is None


# -- retries -------------------------------------------------------------------------------

async def test_429_honours_retry_after(server, make_client):
    server.script('/api/v1/depth',
                  json_reply({'code': 'TOO_MANY_REQUESTS', 'message': 'slow down'}, status=429,
                             headers={'Retry-After': '0.2'}),
                  json_reply(DEPTH))
    client = make_client()
    started = time.monotonic()
    assert await client.depth('SOL_USDC') == DEPTH
    assert time.monotonic() - started >= 0.2
    assert client.stats.retries == 1
    assert client.stats.failures_by_status == {'429': 1}
    assert len(server.hits) == 2


async def test_429_exhausted_raises_rate_limited_with_retry_after(server, make_client):
    server.script('/api/v1/depth', json_reply({'code': 'TOO_MANY_REQUESTS', 'message': 'slow down'}, status=429,
                                              headers={'Retry-After': '0.01'}))
    client = make_client(max_retries=2)
    with pytest.raises(BackpackRateLimitedError) as info:
        await client.depth('SOL_USDC')
    assert info.value.retry_after == pytest.approx(0.01)
    assert len(server.hits) == 3 and client.stats.retries == 2 and client.stats.failures == 1
    assert client.breaker.state == 'closed'


async def test_503_is_retried_then_raised_as_maintenance(server, make_client, caplog):
    server.script('/api/v1/depth', json_reply(MAINTENANCE, status=503))
    client = make_client(max_retries=3)
    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        with pytest.raises(BackpackMaintenanceError) as info:
            await client.depth('SOL_USDC')
    assert info.value.code == 'MAINTENANCE'
    assert len(server.hits) == 4
    assert client.stats.retries == 3 and client.stats.failures_by_status == {'503': 4}
    retries = [r.getMessage() for r in caplog.records if 'retry' in r.getMessage()]
    assert len(retries) == 3
    assert all('/api/v1/depth' in m and 'status=503' in m for m in retries)
    assert retries[0].endswith(' s') and 'retry 1/3 in ' in retries[0]


async def test_server_error_then_success(server, make_client):
    server.script('/api/v1/status', json_reply({'code': 'SERVER_ERROR', 'message': 'oops'}, status=500),
                  json_reply({'code': 'SERVER_ERROR', 'message': 'oops'}, status=502),
                  json_reply({'status': 'Ok', 'message': None}))
    client = make_client()
    assert await client.status() == {'status': 'Ok', 'message': None}
    assert client.stats.retries == 2 and client.stats.failures == 0


async def test_signed_get_is_verifiable_and_re_signed_on_every_retry(server, make_client, caplog):
    server.script('/api/v1/capital', json_reply(MAINTENANCE, status=503), json_reply(MAINTENANCE, status=503),
                  json_reply({'USDC': {'available': '120', 'locked': '0', 'staked': '0'}}))
    signer = stepping_signer()
    client = make_client(signer=signer)
    with caplog.at_level(logging.DEBUG):
        assert await client.balances() == {'USDC': {'available': '120', 'locked': '0', 'staked': '0'}}
    hits = server.hits_for('/api/v1/capital')
    assert len(hits) == 3
    for hit in hits:
        verify_signature(hit, 'balanceQuery')
        assert hit.headers['X-API-Key'] == signer.public_key and hit.headers['X-Window'] == '5000'
    assert len({hit.headers['X-Timestamp'] for hit in hits}) == 3
    assert len({hit.headers['X-Signature'] for hit in hits}) == 3
    assert all(hit.headers['X-Signature'] not in caplog.text for hit in hits)


async def test_signed_get_with_query_parameters(server, make_client):
    server.script('/wapi/v1/history/fills', json_reply([]))
    client = make_client(signer=stepping_signer())
    assert await client.fill_history('SOL_USDC', from_ms=1788285000000, limit=50, sort_direction='Desc') == []
    hit = server.hits[0]
    assert hit.query == {'symbol': 'SOL_USDC', 'from': '1788285000000', 'limit': '50', 'offset': '0',
                         'sortDirection': 'Desc'}
    verify_signature(hit, 'fillHistoryQueryAll')


async def test_signed_post_sends_a_json_body_and_signs_it(server, make_client):
    server.script('/api/v1/order', json_reply({'id': '59669287267', 'status': 'New'}))
    client = make_client(signer=stepping_signer())
    body = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '100.5', 'quantity': '1',
            'postOnly': True}
    assert await client.signed_post('orderExecute', '/api/v1/order', body) == {'id': '59669287267',
                                                                                'status': 'New'}
    hit = server.hits[0]
    assert hit.method == 'POST'
    assert hit.headers['Content-Type'] == 'application/json; charset=utf-8'
    assert json.loads(hit.body) == body
    verify_signature(hit, 'orderExecute')


async def test_signed_bodies_leave_out_the_null_members_the_signature_skipped(server, make_client):
    server.script('/api/v1/order', json_reply({'id': '1', 'status': 'New'}))
    server.script('/api/v1/orders', json_reply([]))
    client = make_client(signer=stepping_signer())
    body = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '100.5', 'quantity': '1',
            'clientId': None, 'timeInForce': None}
    await client.signed_post('orderExecute', '/api/v1/order', body)
    batch = [{'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '99', 'quantity': '1',
              'postOnly': None}, {'symbol': 'SOL_USDC', 'side': 'Ask', 'orderType': 'Market', 'quantity': '2',
                                  'quoteQuantity': None}]
    await client.signed_post('orderExecute', '/api/v1/orders', batch)
    await client.signed_delete('orderCancel', '/api/v1/order', {'symbol': 'SOL_USDC', 'orderId': '7', 'clientId': None})
    single, many, cancel = server.hits
    assert json.loads(single.body) == {k: v for k, v in body.items() if v is not None}
    assert b'null' not in single.body and b'null' not in many.body and b'null' not in cancel.body
    assert json.loads(many.body) == [{k: v for k, v in item.items() if v is not None} for item in batch]
    # The server's own check (written independently: it would sign "clientId=None") verifies.
    verify_signature(single, 'orderExecute')
    verify_signature(cancel, 'orderCancel')
    assert body['clientId'] is None  # the caller's dict is left as it was


async def test_signed_delete(server, make_client):
    server.script('/api/v1/order', json_reply({'id': '28', 'status': 'Cancelled'}, status=202))
    client = make_client(signer=stepping_signer())
    result = await client.signed_delete('orderCancel', '/api/v1/order', {'orderId': '28', 'symbol': 'BTC_USDT'})
    assert result == {'id': '28', 'status': 'Cancelled'}
    assert server.hits[0].method == 'DELETE'
    verify_signature(server.hits[0], 'orderCancel')


async def test_post_is_not_retried_after_an_ambiguous_server_error(server, make_client):
    server.script('/api/v1/order', json_reply({'code': 'SERVER_ERROR', 'message': 'oops'}, status=500))
    client = make_client(signer=stepping_signer())
    with pytest.raises(BackpackRequestError) as info:
        await client.signed_post('orderExecute', '/api/v1/order', {'symbol': 'SOL_USDC'})
    assert info.value.status == 500
    assert len(server.hits) == 1


async def test_post_is_retried_when_the_exchange_certainly_did_not_act(server, make_client):
    server.script('/api/v1/order', json_reply(MAINTENANCE, status=503), json_reply({'id': '1'}))
    client = make_client(signer=stepping_signer())
    assert await client.signed_post('orderExecute', '/api/v1/order', {'symbol': 'SOL_USDC'}) == {'id': '1'}
    hits = server.hits_for('/api/v1/order')
    assert len(hits) == 2 and hits[0].headers['X-Timestamp'] != hits[1].headers['X-Timestamp']
    for hit in hits:
        verify_signature(hit, 'orderExecute')


# -- region restriction --------------------------------------------------------------------

async def test_451_is_raised_once_then_fails_fast_until_the_next_trial_on_a_growing_schedule(server, make_client,
                                                                                            caplog):
    server.script('/api/v1/depth', text_reply('Unavailable For Legal Reasons', status=451))
    server.script('/api/v1/ping', text_reply('Unavailable For Legal Reasons', status=451),
                  text_reply('Unavailable For Legal Reasons', status=451), text_reply('pong'))
    clock = FakeClock()
    client = make_client(max_retries=5, clock=clock, region_retry_base_s=30, region_retry_max_s=900)
    with caplog.at_level(logging.ERROR, logger=package_log.root()):
        with pytest.raises(BackpackRegionRestrictedError) as first:
            await client.depth('SOL_USDC')
    assert 'proxy' in str(first.value) and 'BackpackConfig.proxies' in str(first.value)
    assert first.value.status == 451 and 15 <= first.value.retry_in <= 30
    assert len(server.hits) == 1 and client.stats.retries == 0
    assert client.region_restricted
    assert len([r for r in caplog.records if 'refuses requests' in r.getMessage()]) == 1

    for _ in range(3):                                       # within the cooldown: nothing is sent
        with pytest.raises(BackpackRegionRestrictedError, match='no request sent; next trial in'):
            await client.ping()
    assert len(server.hits) == 1 and client.stats.fail_fast == 3
    assert client.breaker.state == 'closed'

    waits = [first.value.retry_in]
    for _ in range(2):                                       # trials refused again: longer waits
        clock.now += waits[-1]
        with pytest.raises(BackpackRegionRestrictedError) as again:
            await client.ping()
        waits.append(again.value.retry_in)
    assert len(server.hits) == 3 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120

    clock.now += waits[-1]                                   # the route is served again: recovered
    assert await client.ping() == 'pong'
    assert not client.region_restricted and await client.ping() == 'pong'
    assert len(server.hits) == 5


async def test_the_451_cooldown_is_capped(server, make_client):
    server.script('/api/v1/ping', text_reply('Unavailable For Legal Reasons', status=451))
    clock = FakeClock()
    client = make_client(clock=clock, region_retry_base_s=30, region_retry_max_s=900)
    waits = []
    for _ in range(12):
        with pytest.raises(BackpackRegionRestrictedError) as refused:
            await client.ping()
        waits.append(refused.value.retry_in)
        clock.now += waits[-1]
    assert max(waits) <= 900 and min(waits[6:]) >= 450       # 'equal' jitter: at least half the cap


# -- circuit breaker -----------------------------------------------------------------------

async def test_breaker_opens_after_n_failures_and_half_opens_after_the_timeout(server, make_client):
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=30, clock=clock)
    server.script('/api/v1/status', json_reply({'code': 'SERVER_ERROR', 'message': 'down'}, status=500))
    client = make_client(max_retries=0, breaker=breaker)
    for _ in range(3):
        with pytest.raises(BackpackRequestError) as info:
            await client.status()
        assert info.value.status == 500
    assert breaker.state == 'open' and client.stats.breaker_opens == 1

    with pytest.raises(BackpackCircuitOpenError, match='circuit open') as info:
        await client.status()
    assert info.value.retry_in == pytest.approx(30)
    assert len(server.hits) == 3                       # failed fast: nothing sent

    clock.now += 30
    assert breaker.state == 'half-open'
    with pytest.raises(BackpackRequestError):          # the trial fails: open again
        await client.status()
    assert len(server.hits) == 4 and breaker.state == 'open' and client.stats.breaker_opens == 2

    clock.now += 30
    server.script('/api/v1/status', slow_reply(0.2, json_reply({'status': 'Ok', 'message': None})))
    trial, other = await asyncio.gather(client.status(), client.status(), return_exceptions=True)
    assert trial == {'status': 'Ok', 'message': None}
    assert isinstance(other, BackpackCircuitOpenError)  # one trial only while half-open
    assert len(server.hits) == 5 and breaker.state == 'closed'
    assert await client.status() == {'status': 'Ok', 'message': None}


async def test_breaker_opening_stops_the_retry_loop(server, make_client):
    server.script('/api/v1/status', json_reply({'code': 'SERVER_ERROR', 'message': 'down'}, status=500))
    client = make_client(max_retries=10, breaker=CircuitBreaker(failure_threshold=2, reset_timeout_s=60))
    with pytest.raises(BackpackRequestError) as info:
        await client.status()
    assert info.value.status == 500               # the real failure, not a generic "circuit open"
    assert len(server.hits) == 2 and client.stats.retries == 1
    with pytest.raises(BackpackCircuitOpenError):
        await client.status()
    assert len(server.hits) == 2


async def test_client_errors_do_not_trip_the_breaker(server, make_client):
    server.script('/api/v1/market', json_reply({'code': 'INVALID_SYMBOL', 'message': 'no'}, status=400))
    client = make_client(breaker=CircuitBreaker(failure_threshold=1))
    for _ in range(3):
        with pytest.raises(BackpackRequestError):
            await client.market('NOPE')
    assert client.breaker.state == 'closed' and len(server.hits) == 3


# -- transport failures --------------------------------------------------------------------

async def test_timeout_is_a_request_error_without_status(server, make_client):
    server.script('/api/v1/depth', slow_reply(2.0, json_reply(DEPTH)))
    client = make_client(timeout_s=0.2, max_retries=0)
    started = time.monotonic()
    with pytest.raises(BackpackRequestError, match='timed out') as info:
        await client.depth('SOL_USDC')
    assert info.value.status is None and is_retryable(info.value)
    assert time.monotonic() - started < 1.5
    assert client.stats.failures_by_status == {'transport': 1}


async def test_connection_refused_is_retried_then_raised(make_client, refused_port):
    client = make_client(base_url=f'http://127.0.0.1:{refused_port}', max_retries=2)
    with pytest.raises(BackpackRequestError, match='could not connect') as info:
        await client.ping()
    assert info.value.status is None
    assert client.stats.requests == 3 and client.stats.retries == 2
    assert client.stats.failures_by_status == {'transport': 3}


# -- raw data hook -------------------------------------------------------------------------


async def test_the_line_recorder_gets_every_response(server, make_client, monkeypatch):
    """2.x's raw-data callback is called with each body; 3.x's recorder gets ``on_http``."""
    records = []

    class Recorder:  # both lines' recorder protocols
        async def __call__(self, data, timestamp, uuid, endpoint=None, send=None, connect=None, header=None):
            records.append((data, timestamp, uuid, endpoint))

        async def on_http(self, conn, address, params, header, data, timestamp):
            records.append((data, timestamp, conn.id, address))

    monkeypatch.setattr(Connection, 'raw_data_callback', Recorder())
    server.script('/api/v1/depth', json_reply(MAINTENANCE, status=503), json_reply(DEPTH))
    client = make_client(conn_id='BACKPACK.rest.test')
    before = time.time()
    await client.depth('SOL_USDC', limit=5)
    assert [r[0] for r in records] == [json.dumps(MAINTENANCE), json.dumps(DEPTH)]
    assert all(r[2] == 'BACKPACK.rest.test' for r in records)
    assert all(before <= r[1] <= time.time() for r in records)
    assert records[1][3] == f'{server.url}/api/v1/depth?symbol=SOL_USDC&limit=5'


# -- session ownership ---------------------------------------------------------------------

async def test_session_is_created_lazily_and_closed_by_close(server, make_client):
    server.script('/api/v1/ping', text_reply('pong'))
    client = make_client()
    assert client.session is None
    await client.ping()
    session = client.session
    assert isinstance(session, aiohttp.ClientSession) and not session.closed
    await client.close()
    assert session.closed and client.session is None


async def test_injected_session_is_used_and_not_closed(server, make_client):
    server.script('/api/v1/ping', text_reply('pong'))
    async with aiohttp.ClientSession() as session:
        client = make_client(session=session)
        assert client.session is session
        assert await client.ping() == 'pong'
        await client.close()
        assert not session.closed
        assert await client.ping() == 'pong'   # still usable: it is the caller's session
