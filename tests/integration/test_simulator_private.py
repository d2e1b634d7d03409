"""The simulator's private side over real sockets: signed REST and signed private streams.

The client side is the project's own ``BackpackSigner`` driving plain aiohttp HTTP and
WebSocket clients against ``BackpackSimulator`` on 127.0.0.1. The market is still
(``rate=0``) so every fill comes from the orders the tests send.
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
from decimal import Decimal as D

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

SECRET_A = base64.b64encode(bytes([1]) * 32).decode()
SECRET_B = base64.b64encode(bytes([2]) * 32).decode()
MARKETS = ['SOL_USDC', 'SOL_USDC_PERP']
JSON_HEADERS = {'Content-Type': 'application/json; charset=utf-8'}
ORDER_KEYS = {'e', 'E', 'T', 's', 'i', 'S', 'o', 'f', 'q', 'Q', 'X', 'z', 'Z', 't', 'V', 'O', 'r'}
FILL_KEYS = ORDER_KEYS | {'l', 'L', 'm', 'n', 'N'}


class Client:
    """Signed REST calls for one key."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, signer: BackpackSigner):
        self.http = http
        self.base = base_url
        self.signer = signer

    async def call(self, method: str, path: str, instruction: str, *, query=None, body=None, headers=None,
                   **sign_options):
        params = body if body is not None else query
        signed = self.signer.rest_headers(instruction, params, **sign_options)
        signed.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body)
            signed.update(JSON_HEADERS)
        async with self.http.request(method, self.base + path, params=query, data=data, headers=signed) as resp:
            return resp.status, await resp.json(), resp.headers

    async def ok(self, method: str, path: str, instruction: str, **kwargs):
        status, payload, _ = await self.call(method, path, instruction, **kwargs)
        assert status == 200, payload
        return payload

    async def capital(self):
        return await self.ok('GET', '/api/v1/capital', 'balanceQuery')

    async def order(self, payload: dict):
        return await self.ok('POST', '/api/v1/order', 'orderExecute', body=payload)


async def recv(ws, timeout: float = 5.0) -> dict:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise AssertionError(f'connection closed: {msg}')


async def recv_until(ws, predicate, limit: int = 50) -> list[dict]:
    frames = []
    for _ in range(limit):
        frame = await recv(ws)
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f'condition not met in {limit} frames: {frames}')


async def assert_silent(ws, seconds: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await recv(ws, seconds)


@pytest.fixture
async def sim():
    async with BackpackSimulator(markets=MARKETS, seed=0, rate=0, strict_keys=None) as simulator:
        yield simulator


@pytest.fixture
def alice(sim, http):
    return Client(http, sim.rest_url, BackpackSigner(SECRET_A))


@pytest.fixture
def bob(sim, http):
    return Client(http, sim.rest_url, BackpackSigner(SECRET_B))


def order_data(frames):
    return [f['data'] for f in frames if f.get('stream', '').startswith('account.orderUpdate')]


# ------------------------------------------------------------------ signed REST


async def test_signed_rest_is_accepted_and_new_accounts_are_funded(alice):
    assert await alice.capital() == {
        'BTC': {'available': '10', 'locked': '0', 'staked': '0'},
        'ETH': {'available': '100', 'locked': '0', 'staked': '0'},
        'SOL': {'available': '1000', 'locked': '0', 'staked': '0'},
        'USDC': {'available': '100000', 'locked': '0', 'staked': '0'},
    }
    assert await alice.ok('GET', '/api/v1/position', 'positionQuery') == []
    assert await alice.ok('GET', '/api/v1/orders', 'orderQueryAll', query={'symbol': 'SOL_USDC'}) == []


async def test_rejected_signatures_get_the_documented_responses(alice, bob, sim):
    status, body, _ = await alice.call('GET', '/api/v1/capital', 'balanceQuery',
                                       headers={'X-Signature': bob.signer.sign('instruction=balanceQuery')})
    assert (status, body) == (401, {'code': 'INVALID_SIGNATURE', 'message': 'Invalid signature'})

    payload = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'}
    signed = alice.signer.rest_headers('orderExecute', payload)
    tampered = json.dumps(dict(payload, quantity='2'))
    url = sim.rest_url + '/api/v1/order'
    async with alice.http.post(url, data=tampered, headers={**signed, **JSON_HEADERS}) as resp:
        assert resp.status == 401
        assert (await resp.json())['code'] == 'INVALID_SIGNATURE'

    status, body, _ = await bob.call('GET', '/api/v1/capital', 'balanceQuery',
                                     headers={'X-API-Key': alice.signer.public_key})
    assert (status, body['code']) == (401, 'INVALID_SIGNATURE')

    stale = int(time.time() * 1000) - 10_000
    status, body, _ = await alice.call('GET', '/api/v1/capital', 'balanceQuery', timestamp_ms=stale, window_ms=5000)
    assert (status, body['code']) == (401, 'UNAUTHORIZED')
    assert 'expired' in body['message']

    status, body, _ = await alice.call('GET', '/api/v1/capital', 'balanceQuery', window_ms=60000,
                                       headers={'X-Window': '60001'})
    assert (status, body['code']) == (400, 'INVALID_CLIENT_REQUEST')

    async with alice.http.get(sim.rest_url + '/api/v1/capital') as resp:
        assert resp.status == 401
        assert (await resp.json())['code'] == 'UNAUTHORIZED'

    status, body, _ = await alice.call('GET', '/api/v1/capital', 'balanceQuery', headers={'X-API-Key': 'bm90LWEta2V5'})
    assert (status, body['code']) == (400, 'INVALID_CLIENT_REQUEST')
    assert await alice.capital()


async def test_orders_fills_and_history_over_rest(alice):
    before = await alice.capital()
    filled = await alice.order({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '2',
                                'clientId': 42})
    assert filled['status'] == 'Filled' and filled['executedQuantity'] == '2' and filled['clientId'] == 42
    after = await alice.capital()
    cost = D(filled['executedQuoteQuantity'])
    assert D(after['USDC']['available']) == D(before['USDC']['available']) - cost
    assert D(after['SOL']['available']) == D('1000') + 2 - D('2') * D('0.0005')

    fills = await alice.ok('GET', '/wapi/v1/history/fills', 'fillHistoryQueryAll', query={'symbol': 'SOL_USDC'})
    assert sum(D(f['quantity']) for f in fills) == D('2')
    assert {f['orderId'] for f in fills} == {filled['id']} and all(f['feeSymbol'] == 'SOL' for f in fills)
    assert all(len(f['timestamp']) == 23 and 'T' in f['timestamp'] for f in fills)
    status, page, headers = await alice.call('GET', '/wapi/v1/history/fills', 'fillHistoryQueryAll',
                                             query={'limit': '1', 'offset': '0'})
    assert status == 200 and len(page) == 1 and headers['X-TOTAL'] == str(len(fills))
    history = await alice.ok('GET', '/wapi/v1/history/orders', 'orderHistoryQueryAll', query={'symbol': 'SOL_USDC'})
    assert [(o['id'], o['status'], o['expiryReason']) for o in history] == [(filled['id'], 'Filled', None)]

    resting = await alice.order({'symbol': 'SOL_USDC', 'side': 'Ask', 'orderType': 'Limit', 'price': '120',
                                 'quantity': '3'})
    assert resting['status'] == 'New' and resting['postOnly'] is False
    assert (await alice.capital())['SOL']['locked'] == '3'
    listed = await alice.ok('GET', '/api/v1/orders', 'orderQueryAll', query={'symbol': 'SOL_USDC'})
    assert [o['id'] for o in listed] == [resting['id']] and listed[0] == resting  # no systemOrderType
    assert set(history[0]) >= {'slippageTolerance', 'slippageToleranceType', 'systemOrderType'}
    got = await alice.ok('GET', '/api/v1/order', 'orderQuery', query={'symbol': 'SOL_USDC', 'orderId': resting['id']})
    assert got == resting
    cancelled = await alice.ok('DELETE', '/api/v1/order', 'orderCancel',
                               body={'symbol': 'SOL_USDC', 'orderId': resting['id']})
    assert cancelled['status'] == 'Cancelled'
    assert (await alice.capital())['SOL']['locked'] == '0'

    status, body, _ = await alice.call('GET', '/api/v1/order', 'orderQuery',
                                       query={'symbol': 'SOL_USDC', 'orderId': resting['id']})
    assert (status, body['code']) == (404, 'RESOURCE_NOT_FOUND')
    status, body, _ = await alice.call('DELETE', '/api/v1/order', 'orderCancel',
                                       body={'symbol': 'SOL_USDC', 'orderId': '1'})
    assert (status, body['code']) == (404, 'RESOURCE_NOT_FOUND')


async def test_invalid_orders_say_what_is_wrong(alice):
    cases = [
        ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '99.001', 'quantity': '1'},
         'INVALID_PRICE', 'decimal too long'),
        ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '99', 'quantity': '0.001'},
         'INVALID_QUANTITY', 'decimal too long'),
        ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'quantity': '1'}, 'INVALID_PRICE', 'price'),
        ({'symbol': 'SOL_USDC', 'side': 'Long', 'orderType': 'Market', 'quantity': '1'}, 'INVALID_ORDER', 'side'),
        ({'symbol': 'DOGE_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'}, 'INVALID_SYMBOL', 'DOGE'),
        ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '99999'}, 'INSUFFICIENT_FUNDS',
         'USDC'),
    ]
    for payload, code, words in cases:
        status, body, _ = await alice.call('POST', '/api/v1/order', 'orderExecute', body=payload)
        assert (status, body['code']) == (400, code), body
        assert words in body['message']
    assert await alice.ok('GET', '/wapi/v1/history/orders', 'orderHistoryQueryAll') == []


async def test_batch_orders_and_cancel_all(alice):
    results = await alice.ok('POST', '/api/v1/orders', 'orderExecute', body=[
        {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '90', 'quantity': '1'},
        {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '90', 'quantity': '-1'},
        {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '91', 'quantity': '1', 'postOnly': True},
    ])
    assert [r['operation'] for r in results] == ['Ok', 'Err', 'Ok']
    assert results[1]['code'] == 'INVALID_QUANTITY'
    cancelled = await alice.ok('DELETE', '/api/v1/orders', 'orderCancelAll', body={'symbol': 'SOL_USDC'})
    assert sorted(o['price'] for o in cancelled) == ['90', '91']
    assert await alice.ok('DELETE', '/api/v1/orders', 'orderCancelAll', body={'symbol': 'SOL_USDC'}) == []
    assert (await alice.capital())['USDC'] == {'available': '100000', 'locked': '0', 'staked': '0'}


# ------------------------------------------------------------------ private streams


async def test_private_streams_snapshot_then_order_lifecycle(sim, http, alice, bob):
    opened = await alice.order({'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'})
    assert opened['status'] == 'Filled'
    await bob.order({'symbol': 'SOL_USDC_PERP', 'side': 'Ask', 'orderType': 'Market', 'quantity': '1'})

    ws = await http.ws_connect(sim.ws_url)
    await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate', 'account.positionUpdate'],
                        'signature': alice.signer.ws_signature()})
    snapshot = await recv(ws)
    assert snapshot['stream'] == 'account.positionUpdate'
    data = snapshot['data']
    assert 'e' not in data and data['s'] == 'SOL_USDC_PERP' and data['q'] == '1'
    assert isinstance(data['i'], int) and isinstance(data['E'], int) and data['l'] == '0'
    await assert_silent(ws)

    placed = await alice.order({'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Market', 'quantity': '2'})
    frames = await recv_until(ws, lambda f: f['stream'] == 'account.positionUpdate')
    updates = order_data(frames)
    assert [u['e'] for u in updates][0] == 'orderAccepted' and set(updates[0]) == ORDER_KEYS
    assert all(u['e'] == 'orderFill' and set(u) == FILL_KEYS for u in updates[1:])
    assert (updates[-1]['X'], updates[-1]['z'], updates[-1]['Z']) == ('Filled', '2', placed['executedQuoteQuantity'])
    assert all(u['i'] == placed['id'] and u['o'] == 'MARKET' and u['N'] == 'USDC' and isinstance(u['t'], int)
               for u in updates[1:])
    position = frames[-1]['data']
    assert position['e'] == 'positionAdjusted' and position['q'] == '3' and position['i'] == data['i']
    times = [u['T'] for u in updates]
    assert times == sorted(times)

    fees = sum(D(f['fee']) for f in await alice.ok('GET', '/wapi/v1/history/fills', 'fillHistoryQueryAll'))
    assert D((await alice.capital())['USDC']['available']) == D('100000') - fees
    (rest_position,) = await alice.ok('GET', '/api/v1/position', 'positionQuery')
    assert rest_position['netQuantity'] == '3' and rest_position['positionId'] == str(data['i'])
    assert rest_position['cumulativeInterest'] == '0'  # still sent live, though announced as removed
    await ws.close()


async def test_resting_order_fills_when_the_market_trades_through_it(sim, http, alice):
    model = sim.model
    best_bid = model.best_bid('SOL_USDC')
    top = model.book_snapshot('SOL_USDC', 1).bids[0][1]
    ws = await http.ws_connect(sim.ws_url)
    await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate.SOL_USDC'],
                        'signature': alice.signer.ws_signature()})
    await assert_silent(ws)
    resting = await alice.order({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': str(best_bid),
                                 'quantity': '1', 'postOnly': True})
    accepted = await recv(ws)
    assert accepted['stream'] == 'account.orderUpdate.SOL_USDC' and accepted['data']['y'] is True

    model.execute_taker('SOL_USDC', 'Ask', top, None)      # simulated flow sells the whole top level
    sim.pause()                                             # flushes the trade to the account side
    (fill,) = order_data(await recv_until(ws, lambda f: f['data']['e'] == 'orderFill'))
    assert fill['i'] == resting['id'] and fill['m'] is True and fill['X'] == 'Filled'
    assert fill['L'] == str(best_bid) and D(fill['n']) == D('0.0002')
    assert (await alice.capital())['SOL']['available'] == str(D('1000') + 1 - D('0.0002'))
    await ws.close()


async def test_private_subscribe_without_valid_signature_gets_4003(sim, http, alice, bob):
    error = {'id': None, 'error': {'code': 4003, 'message': 'Invalid signature'}}
    ws = await http.ws_connect(sim.ws_url)
    await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate']})
    assert await recv(ws) == error
    forged = alice.signer.ws_signature()
    forged[1] = bob.signer.ws_signature(timestamp_ms=int(forged[2]))[1]
    await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate'], 'signature': forged})
    assert await recv(ws) == error
    expired = alice.signer.ws_signature(timestamp_ms=int(time.time() * 1000) - 20_000)
    await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate'], 'signature': expired})
    assert await recv(ws) == error
    await alice.order({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'})
    await assert_silent(ws)
    await ws.close()


async def test_strict_mode_accepts_only_registered_keys(http):
    alice_signer, bob_signer = BackpackSigner(SECRET_A), BackpackSigner(SECRET_B)
    async with BackpackSimulator(markets=MARKETS, seed=0, rate=0, strict_keys=[alice_signer.public_key]) as strict:
        alice, bob = Client(http, strict.rest_url, alice_signer), Client(http, strict.rest_url, bob_signer)
        assert 'USDC' in await alice.capital()
        status, body, _ = await bob.call('GET', '/api/v1/capital', 'balanceQuery')
        assert (status, body['code']) == (401, 'UNAUTHORIZED')
        ws = await http.ws_connect(strict.ws_url)
        await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.balanceUpdate'],
                            'signature': bob_signer.ws_signature()})
        assert (await recv(ws))['error']['code'] == 4003
        await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.balanceUpdate'],
                            'signature': alice_signer.ws_signature()})
        await assert_silent(ws)
        await alice.order({'symbol': 'SOL_USDC', 'side': 'Ask', 'orderType': 'Market', 'quantity': '1'})
        balances = {f['data']['a']: f['data'] for f in await recv_until(ws, lambda f: f['data']['a'] == 'USDC')}
        assert balances['SOL']['A'] == '999' and balances['SOL']['e'] == 'balanceUpdate'
        assert balances['USDC']['A'] == (await alice.capital())['USDC']['available']
        await ws.close()


async def test_python_api_and_query_validation(sim, http, alice):
    service = sim.account
    key = alice.signer.public_key
    ws = await http.ws_connect(sim.ws_url)
    await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate'],
                        'signature': alice.signer.ws_signature()})
    await assert_silent(ws)
    placed = service.place_order(key, {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '95',
                                       'quantity': '1', 'clientId': 77})
    assert (await recv(ws))['data']['e'] == 'orderAccepted'
    got = await alice.ok('GET', '/api/v1/order', 'orderQuery', query={'symbol': 'SOL_USDC', 'clientId': '77'})
    assert got['id'] == placed['id'] and got['clientId'] == 77
    cancelled = service.cancel_order(key, 'SOL_USDC', client_id=77)
    assert cancelled['status'] == 'Cancelled'
    frame = (await recv(ws))['data']
    assert (frame['e'], frame['c'], frame['X']) == ('orderCancelled', 77, 'Cancelled')
    assert service.snapshot_frames(key, 'account.orderUpdate') == []
    assert service.balances(key)['USDC']['locked'] == '0'

    bad_queries = (({'limit': '0'}, 'limit'), ({'limit': 'ten'}, 'limit'), ({'sortDirection': 'Up'}, 'sortDirection'),
                   ({'marketType': 'FUTURES'}, 'marketType'))
    for query, words in bad_queries:
        status, body, _ = await alice.call('GET', '/wapi/v1/history/fills', 'fillHistoryQueryAll', query=query)
        assert (status, body['code']) == (400, 'INVALID_CLIENT_REQUEST') and words in body['message']
    status, body, _ = await alice.call('GET', '/api/v1/order', 'orderQuery', query={'symbol': 'SOL_USDC'})
    assert (status, body['code']) == (400, 'INVALID_CLIENT_REQUEST')
    history = await alice.ok('GET', '/wapi/v1/history/orders', 'orderHistoryQueryAll',
                             query={'sortDirection': 'Asc', 'marketType': 'SPOT'})
    assert [(o['id'], o['status'], o['clientId']) for o in history] == [(placed['id'], 'Cancelled', 77)]
    assert await alice.ok('GET', '/wapi/v1/history/fills', 'fillHistoryQueryAll', query={'fillType': 'Adl'}) == []
    await ws.close()


async def test_an_independent_client_ccxt_trades_through_the_private_api(sim):
    exchange = ccxt_async.backpack({'apiKey': BackpackSigner(SECRET_A).public_key, 'secret': SECRET_A,
                                    'enableRateLimit': False})
    exchange.urls['api'] = {'public': sim.rest_url, 'private': sim.rest_url}
    try:
        await exchange.load_markets()
        assert (await exchange.fetch_balance())['total']['USDC'] == 100000
        bought = await exchange.create_order('SOL/USDC', 'market', 'buy', 1)
        assert (bought['status'], bought['filled']) == ('closed', 1)
        resting = await exchange.create_order('SOL/USDC', 'limit', 'buy', 1, 95, {'clientOrderId': 5})
        assert [o['id'] for o in await exchange.fetch_open_orders('SOL/USDC')] == [resting['id']]
        assert (await exchange.cancel_order(resting['id'], 'SOL/USDC'))['status'] == 'canceled'
        assert len(await exchange.fetch_my_trades('SOL/USDC')) >= 1
        assert {o['id'] for o in await exchange.fetch_orders('SOL/USDC')} == {bought['id'], resting['id']}
        await exchange.create_order('SOL/USDC:USDC', 'market', 'sell', 2)
        (position,) = await exchange.fetch_positions()
        assert (float(position['contracts']), position['side']) == (2.0, 'short')
    finally:
        await exchange.close()
