"""The signer: key parsing, the exact signing string, headers, WS signature, golden vectors."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from cryptofeed.exchanges.backpack.core.auth import (
    BackpackSigner, match_public_key, parse_private_key, parse_public_key, public_key_from_seed, signing_string,
)
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError

# RFC 8032 section 7.1, TEST 1 (empty message).
RFC_SEED_HEX = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'
RFC_PUBLIC_HEX = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
RFC_SIGNATURE_HEX = ('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555'
                     'fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')

# backpack-api.md section 4: seed = 32 bytes of 0x01.
VECTOR_SECRET = 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE='
VECTOR_API_KEY = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
VECTOR_TS = 1614550000000
VECTORS = [
    ('balanceQuery', None,
     'instruction=balanceQuery&timestamp=1614550000000&window=5000',
     'Z84gQTC7cBU2B7ntts0up1fqeLuPKUdNaYqZ8hMecImH8gBJzdntZ8AedhMlKMqLYysELwKES3SFW+k8i+JuDA=='),
    ('subscribe', None,
     'instruction=subscribe&timestamp=1614550000000&window=5000',
     'yswB5uivS+qIvjPNQnZnzehOHlD2VoNq/Gw1ulFrdZAK1efuvzKIO7b+AuYIn+OA5XQ1WTgs0JQoKnK7r+fWDg=='),
    ('orderCancel', {'symbol': 'BTC_USDT', 'orderId': '28'},
     'instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp=1614550000000&window=5000',
     '5JNvIFup6BvOx0ITxfxtEn5ac317vAI78vza6AWOyTvrzDTlVnO/T0dQazXuJmS4WJbLnm17ydL4EwqW5+6aBA=='),
]


def test_rfc8032_vector_1_through_hex_key_parsing():
    seed, fmt = parse_private_key(RFC_SEED_HEX)
    assert fmt == 'hex'
    assert public_key_from_seed(seed).hex() == RFC_PUBLIC_HEX
    signer = BackpackSigner(RFC_SEED_HEX)
    assert base64.b64decode(signer.sign('')).hex() == RFC_SIGNATURE_HEX
    assert base64.b64decode(signer.public_key).hex() == RFC_PUBLIC_HEX


def test_rfc8032_vector_1_through_base64_key_parsing():
    b64 = base64.b64encode(bytes.fromhex(RFC_SEED_HEX)).decode()
    seed, fmt = parse_private_key(b64)
    assert fmt == 'base64' and seed.hex() == RFC_SEED_HEX
    assert base64.b64decode(BackpackSigner(b64).sign('')).hex() == RFC_SIGNATURE_HEX


@pytest.mark.parametrize('instruction,params,expected_string,expected_signature', VECTORS)
def test_backpack_fixed_vectors(instruction, params, expected_string, expected_signature):
    signer = BackpackSigner(VECTOR_SECRET)
    assert signer.public_key == VECTOR_API_KEY
    message = signing_string(instruction, params, VECTOR_TS, 5000)
    assert message == expected_string
    assert signer.sign(message) == expected_signature


def test_rest_headers_and_ws_signature_use_the_injected_clock_and_offset():
    signer = BackpackSigner(VECTOR_SECRET, clock=lambda: 1614549999.5, clock_offset_ms=500)
    headers = signer.rest_headers('balanceQuery')
    assert headers == {'X-API-Key': VECTOR_API_KEY, 'X-Signature': VECTORS[0][3],
                       'X-Timestamp': '1614550000000', 'X-Window': '5000'}
    assert signer.ws_signature() == [VECTOR_API_KEY, VECTORS[1][3], '1614550000000', '5000']


def test_signing_string_renders_values_raw_and_skips_none():
    from decimal import Decimal
    params = {'symbol': 'SOL_USDC', 'postOnly': True, 'reduceOnly': False, 'price': Decimal('1E+2'),
              'quantity': Decimal('0.10'), 'clientId': 7, 'triggerQuantity': '80%', 'triggerPrice': None}
    assert signing_string('orderExecute', params, 1, 5000) == (
        'instruction=orderExecute&clientId=7&postOnly=true&price=100&quantity=0.10&reduceOnly=false'
        '&symbol=SOL_USDC&triggerQuantity=80%&timestamp=1&window=5000')


def test_batch_signing_string_follows_the_documented_example():
    orders = [
        {'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Limit', 'price': '141', 'quantity': '12'},
        {'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Limit', 'price': '140', 'quantity': '11'},
    ]
    assert signing_string('orderExecute', orders, 1750793021519, 5000) == (
        'instruction=orderExecute&orderType=Limit&price=141&quantity=12&side=Bid&symbol=SOL_USDC_PERP'
        '&instruction=orderExecute&orderType=Limit&price=140&quantity=11&side=Bid&symbol=SOL_USDC_PERP'
        '&timestamp=1750793021519&window=5000')


def test_64_byte_secret_accepted_only_when_it_holds_its_own_public_key():
    seed = bytes.fromhex(RFC_SEED_HEX)
    good = base64.b64encode(seed + public_key_from_seed(seed)).decode()
    assert parse_private_key(good)[0] == seed
    bad = base64.b64encode(seed + bytes(32)).decode()
    with pytest.raises(BackpackConfigError, match='second half'):
        parse_private_key(bad)


@pytest.mark.parametrize('value,message', [
    ('', 'empty'),
    ('not a key!', 'neither hex nor standard base64'),
    (base64.b64encode(bytes(16)).decode(), 'decodes to 16 bytes'),
    ('ab' * 31, 'decodes to'),
])
def test_malformed_private_keys_fail_with_a_message_that_does_not_echo_the_key(value, message):
    with pytest.raises(BackpackConfigError, match=message) as info:
        parse_private_key(value)
    if value:
        assert value not in str(info.value)


def test_public_key_parsing_accepts_hex_and_base64():
    assert parse_public_key(RFC_PUBLIC_HEX) == (bytes.fromhex(RFC_PUBLIC_HEX), 'hex')
    assert parse_public_key(VECTOR_API_KEY)[1] == 'base64'
    with pytest.raises(BackpackConfigError, match='public key is 32 bytes'):
        parse_public_key(base64.b64encode(bytes(31)).decode())


def test_match_public_key_reports_format_and_what_is_wrong():
    seed = base64.b64decode(VECTOR_SECRET)
    public_hex = base64.b64decode(VECTOR_API_KEY).hex()
    assert match_public_key(VECTOR_API_KEY, seed) == ('base64', None)
    assert match_public_key(public_hex.upper(), seed) == ('hex', None)
    other = BackpackSigner(bytes(range(32))).public_key
    fmt, problem = match_public_key(other, seed, 'api_key', 'the private key')
    assert fmt == 'base64'
    assert problem.startswith(f'api_key does not match the public key derived from the private key ({VECTOR_API_KEY})')
    # The secret given where the public key belongs, and its public key as the private key.
    fmt, problem = match_public_key(VECTOR_SECRET, base64.b64decode(VECTOR_API_KEY), 'api_key')
    assert fmt == 'base64' and 'api_key and private_key look swapped' in problem
    assert VECTOR_SECRET not in problem
    fmt, problem = match_public_key('not-a-key', seed, 'api_key')
    assert fmt is None and problem.startswith('api_key is neither hex nor standard base64')
    assert 'API key is the base64 public key' in problem


def test_signer_repr_never_contains_the_secret():
    signer = BackpackSigner(VECTOR_SECRET)
    assert VECTOR_SECRET not in repr(signer) and VECTOR_API_KEY in repr(signer)


def test_window_outside_the_exchange_limit_is_rejected():
    with pytest.raises(BackpackConfigError, match='window_ms'):
        BackpackSigner(VECTOR_SECRET, window_ms=60001)


_keys = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12)
_values = st.one_of(st.booleans(), st.integers(-10**12, 10**12),
                    st.decimals(allow_nan=False, allow_infinity=False, places=6),
                    st.text(st.characters(blacklist_characters='&=', blacklist_categories=('Cs',)), max_size=20))


@settings(max_examples=150, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), params=st.dictionaries(_keys, _values, max_size=6),
       ts=st.integers(0, 2**41), window=st.integers(1, 60000))
def test_signatures_verify_under_the_derived_public_key(seed, params, ts, window):
    signer = BackpackSigner(seed, window_ms=window, clock=lambda: ts / 1000)
    headers = signer.rest_headers('orderExecute', params, timestamp_ms=ts)
    message = signing_string('orderExecute', params, ts, window)
    verify_key = VerifyKey(base64.b64decode(headers['X-API-Key']))
    verify_key.verify(message.encode(), base64.b64decode(headers['X-Signature']))
    assert message.startswith('instruction=orderExecute')
    assert message.endswith(f'&timestamp={ts}&window={window}')
    keys = [pair.split('=', 1)[0] for pair in message.split('&')[1:-2]] if params else []
    assert keys == sorted(keys)
    with pytest.raises(BadSignatureError):
        verify_key.verify((message + 'x').encode(), base64.b64decode(headers['X-Signature']))
