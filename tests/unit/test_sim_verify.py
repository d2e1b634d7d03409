"""Server-side signature verification of the simulator (simulator/verify.py).

The client side is the project's own ``BackpackSigner``; the golden vectors are those of
backpack-api.md §4. No event loop, no network.
"""
from __future__ import annotations

import base64
import json

import pytest
from multidict import CIMultiDict, MultiDict

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.simulator.verify import (
    DEFAULT_WINDOW_MS, FUTURE_TOLERANCE_MS, MAX_WINDOW_MS, KeyRegistry, SimAuthError, instruction_for,
    rest_signing_string, verify_rest, verify_ws,
)

SECRET = 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE='
API_KEY = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
OTHER_SECRET = base64.b64encode(bytes([2]) * 32).decode()
TS = 1614550000000
BALANCE_SIG = 'Z84gQTC7cBU2B7ntts0up1fqeLuPKUdNaYqZ8hMecImH8gBJzdntZ8AedhMlKMqLYysELwKES3SFW+k8i+JuDA=='
SUBSCRIBE_SIG = 'yswB5uivS+qIvjPNQnZnzehOHlD2VoNq/Gw1ulFrdZAK1efuvzKIO7b+AuYIn+OA5XQ1WTgs0JQoKnK7r+fWDg=='
CANCEL_SIG = '5JNvIFup6BvOx0ITxfxtEn5ac317vAI78vza6AWOyTvrzDTlVnO/T0dQazXuJmS4WJbLnm17ydL4EwqW5+6aBA=='


@pytest.fixture
def signer():
    return BackpackSigner(SECRET, clock=lambda: TS / 1000)


def _raises(fn, *args, **kwargs) -> SimAuthError:
    with pytest.raises(SimAuthError) as info:
        fn(*args, **kwargs)
    return info.value


def _body(obj) -> bytes:
    return json.dumps(obj).encode()


# ------------------------------------------------------------------ golden vectors


def test_balance_query_golden_vector_verifies():
    headers = {'X-API-Key': API_KEY, 'X-Signature': BALANCE_SIG, 'X-Timestamp': str(TS), 'X-Window': '5000'}
    assert verify_rest('GET', '/api/v1/capital', {}, None, headers, TS) == API_KEY


def test_missing_window_header_means_5000_and_is_still_signed():
    headers = {'X-API-Key': API_KEY, 'X-Signature': BALANCE_SIG, 'X-Timestamp': str(TS)}
    assert verify_rest('GET', '/api/v1/capital', {}, None, headers, TS + DEFAULT_WINDOW_MS) == API_KEY
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS + DEFAULT_WINDOW_MS + 1)
    assert (err.status, err.code) == (401, 'UNAUTHORIZED')


def test_order_cancel_golden_vector_verifies_from_raw_body():
    headers = {'X-API-Key': API_KEY, 'X-Signature': CANCEL_SIG, 'X-Timestamp': str(TS), 'X-Window': '5000'}
    body = b'{"symbol": "BTC_USDT", "orderId": "28"}'
    assert verify_rest('DELETE', '/api/v1/order', {}, body, headers, TS) == API_KEY


def test_subscribe_golden_vector_verifies():
    assert verify_ws([API_KEY, SUBSCRIBE_SIG, str(TS), '5000'], TS) == API_KEY


def test_batch_signing_string_matches_the_reference_example():
    body = [
        {'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Limit', 'price': '141', 'quantity': '12'},
        {'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Limit', 'price': '140', 'quantity': '11'},
    ]
    expected = ('instruction=orderExecute&orderType=Limit&price=141&quantity=12&side=Bid&symbol=SOL_USDC_PERP'
                '&instruction=orderExecute&orderType=Limit&price=140&quantity=11&side=Bid&symbol=SOL_USDC_PERP'
                '&timestamp=1750793021519&window=5000')
    assert rest_signing_string('orderExecute', [], body, '1750793021519', '5000') == expected


def test_instruction_table_maps_the_private_endpoints():
    assert instruction_for('GET', '/api/v1/capital') == 'balanceQuery'
    assert instruction_for('post', '/api/v1/orders') == 'orderExecute'
    assert instruction_for('DELETE', '/api/v1/orders') == 'orderCancelAll'
    assert instruction_for('GET', '/wapi/v1/history/fills') == 'fillHistoryQueryAll'
    assert instruction_for('GET', '/wapi/v1/history/orders/') == 'orderHistoryQueryAll'
    assert instruction_for('GET', '/api/v1/depth') is None


# ------------------------------------------------------------------ the project's signer is accepted


def test_signed_get_with_query_is_accepted(signer):
    query = {'symbol': 'SOL_USDC', 'limit': '10', 'from': '1614540000000'}
    headers = signer.rest_headers('fillHistoryQueryAll', query)
    assert verify_rest('GET', '/wapi/v1/history/fills', query, None, headers, TS) == signer.public_key


def test_repeated_query_keys_are_all_signed(signer):
    query = MultiDict([('marketType', 'SPOT'), ('marketType', 'PERP')])
    message = 'instruction=orderQueryAll&marketType=SPOT&marketType=PERP&timestamp=%d&window=5000' % TS
    headers = {'X-API-Key': signer.public_key, 'X-Signature': signer.sign(message), 'X-Timestamp': str(TS)}
    assert verify_rest('GET', '/api/v1/orders', query, None, headers, TS) == signer.public_key


def test_signed_post_with_booleans_and_integers_is_accepted(signer):
    payload = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '99.5', 'quantity': '1.25',
               'postOnly': True, 'reduceOnly': False, 'clientId': 4294967295}
    headers = signer.rest_headers('orderExecute', payload)
    assert verify_rest('POST', '/api/v1/order', {}, _body(payload), headers, TS) == signer.public_key


def test_signed_batch_is_accepted(signer):
    payload = [{'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '99', 'quantity': '1'},
               {'symbol': 'SOL_USDC', 'side': 'Ask', 'orderType': 'Market', 'quantity': '2'}]
    headers = signer.rest_headers('orderExecute', payload)
    assert verify_rest('POST', '/api/v1/orders', {}, _body(payload), headers, TS) == signer.public_key


def test_header_names_are_case_insensitive(signer):
    headers = {k.lower(): v for k, v in signer.rest_headers('balanceQuery').items()}
    assert verify_rest('GET', '/api/v1/capital', {}, None, headers, TS) == signer.public_key
    assert verify_rest('GET', '/api/v1/capital', {}, None, CIMultiDict(headers), TS) == signer.public_key


# ------------------------------------------------------------------ rejections


def test_tampered_body_is_invalid_signature(signer):
    payload = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'}
    headers = signer.rest_headers('orderExecute', payload)
    tampered = dict(payload, quantity='100')
    err = _raises(verify_rest, 'POST', '/api/v1/order', {}, _body(tampered), headers, TS)
    assert (err.status, err.code, err.message) == (401, 'INVALID_SIGNATURE', 'Invalid signature')
    assert err.body() == {'code': 'INVALID_SIGNATURE', 'message': 'Invalid signature'}


def test_signature_for_another_instruction_is_rejected(signer):
    headers = signer.rest_headers('positionQuery')
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS)
    assert err.code == 'INVALID_SIGNATURE'


def test_signature_made_with_another_key_is_rejected(signer):
    other = BackpackSigner(OTHER_SECRET, clock=lambda: TS / 1000)
    headers = dict(other.rest_headers('balanceQuery'), **{'X-API-Key': signer.public_key})
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS)
    assert (err.status, err.code) == (401, 'INVALID_SIGNATURE')


@pytest.mark.parametrize('bad', ['not base64!!', base64.b64encode(b'short').decode(), ''])
def test_garbage_signature_is_invalid_signature(signer, bad):
    headers = dict(signer.rest_headers('balanceQuery'), **{'X-Signature': bad or '='})
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS)
    assert err.code == 'INVALID_SIGNATURE'


def test_window_boundaries(signer):
    assert verify_rest('GET', '/api/v1/capital', {}, None,
                       signer.rest_headers('balanceQuery', window_ms=MAX_WINDOW_MS), TS + MAX_WINDOW_MS)
    headers = signer.rest_headers('balanceQuery', window_ms=1000)
    headers['X-Window'] = str(MAX_WINDOW_MS + 1)
    headers['X-Signature'] = signer.sign(f'instruction=balanceQuery&timestamp={TS}&window={MAX_WINDOW_MS + 1}')
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS)
    assert (err.status, err.code) == (400, 'INVALID_CLIENT_REQUEST')
    assert '60000' in err.message
    headers['X-Window'] = '0'
    assert _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS).status == 400


def test_expired_and_future_timestamps(signer):
    headers = signer.rest_headers('balanceQuery', window_ms=2000)
    assert verify_rest('GET', '/api/v1/capital', {}, None, headers, TS + 2000)
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS + 2001)
    assert (err.status, err.code) == (401, 'UNAUTHORIZED')
    assert 'expired' in err.message
    assert verify_rest('GET', '/api/v1/capital', {}, None, headers, TS - FUTURE_TOLERANCE_MS)
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS - FUTURE_TOLERANCE_MS - 1)
    assert (err.status, err.code) == (401, 'UNAUTHORIZED')
    assert 'future' in err.message


def test_missing_headers_are_unauthorized(signer):
    headers = signer.rest_headers('balanceQuery')
    for name in ('X-API-Key', 'X-Signature', 'X-Timestamp'):
        partial = {k: v for k, v in headers.items() if k != name}
        err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, partial, TS)
        assert (err.status, err.code) == (401, 'UNAUTHORIZED')
        assert name in err.message


@pytest.mark.parametrize('key', ['%%%', base64.b64encode(b'x' * 31).decode(), base64.b64encode(b'x' * 33).decode()])
def test_malformed_api_key_is_a_client_error(signer, key):
    headers = dict(signer.rest_headers('balanceQuery'), **{'X-API-Key': key})
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS)
    assert (err.status, err.code) == (400, 'INVALID_CLIENT_REQUEST')


def test_non_integer_timestamp_is_a_client_error(signer):
    headers = dict(signer.rest_headers('balanceQuery'), **{'X-Timestamp': '1614550000.5'})
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS)
    assert (err.status, err.code) == (400, 'INVALID_CLIENT_REQUEST')


def test_invalid_json_body_is_a_client_error(signer):
    headers = signer.rest_headers('orderExecute', {'a': 1})
    err = _raises(verify_rest, 'POST', '/api/v1/order', {}, b'{"a":', headers, TS)
    assert (err.status, err.code) == (400, 'INVALID_CLIENT_REQUEST')


def test_unknown_private_path_is_not_found(signer):
    err = _raises(verify_rest, 'GET', '/api/v1/nothing', {}, None, signer.rest_headers('balanceQuery'), TS)
    assert (err.status, err.code) == (404, 'RESOURCE_NOT_FOUND')


def test_strict_mode_admits_only_registered_keys(signer):
    headers = signer.rest_headers('balanceQuery')
    registry = KeyRegistry(set())
    err = _raises(verify_rest, 'GET', '/api/v1/capital', {}, None, headers, TS, accounts=registry)
    assert (err.status, err.code) == (401, 'UNAUTHORIZED')
    registry.register(signer.public_key)
    assert verify_rest('GET', '/api/v1/capital', {}, None, headers, TS, accounts=registry) == signer.public_key
    assert registry.strict and not KeyRegistry().strict


# ------------------------------------------------------------------ WebSocket


def test_ws_signature_from_the_signer_is_accepted(signer):
    assert verify_ws(signer.ws_signature(), TS) == signer.public_key
    integers = signer.ws_signature()
    integers[2], integers[3] = int(integers[2]), int(integers[3])
    assert verify_ws(integers, TS) == signer.public_key


@pytest.mark.parametrize('mutate', [
    lambda s: None,
    lambda s: s[:3],
    lambda s: [s[0], s[1][:-4] + 'AAA=', s[2], s[3]],
    lambda s: [s[0], s[1], str(int(s[2]) + 1), s[3]],
    lambda s: ['%%%', s[1], s[2], s[3]],
    lambda s: [s[0], s[1], s[2], '60001'],
    lambda s: [s[0], s[1], 'soon', s[3]],
])
def test_ws_bad_signatures_are_4003(signer, mutate):
    err = _raises(verify_ws, mutate(signer.ws_signature()), TS)
    assert err.code == 4003
    assert err.ws_frame() == {'id': None, 'error': {'code': 4003, 'message': 'Invalid signature'}}


def test_ws_expired_and_strict(signer):
    sig = signer.ws_signature(window_ms=1000)
    assert verify_ws(sig, TS + 1000)
    assert _raises(verify_ws, sig, TS + 1001).code == 4003
    err = _raises(verify_ws, sig, TS, accounts=KeyRegistry({API_KEY[::-1]}))
    assert err.code == 4003 and 'registered' in err.detail
