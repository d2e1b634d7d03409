"""levels.py: depth prices validated and interned at decode; impossible ones make the frame invalid."""
from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest

from cryptofeed.exchanges.backpack.core.wire import levels
from cryptofeed.exchanges.backpack.core.wire import messages as bp
from cryptofeed.exchanges.backpack.core.wire.router import INVALID, Router

SYMBOLS = {'SOL_USDC': 'SOL-USDC'}
BAD_PRICES = ['NaN', 'nan', 'sNaN', 'Infinity', '-Infinity', 'inf', '-1', '0', '0.00', '1E+400', '1E+20', 'abc', '']


def depth_frame(bids, asks=(), first=5, last=5) -> str:
    return json.dumps({'stream': 'depth.SOL_USDC', 'data': {
        'E': 1, 'T': 1, 'U': first, 'u': last, 'e': 'depth', 's': 'SOL_USDC', 'b': list(bids), 'a': list(asks)}})


@pytest.mark.parametrize('bad', BAD_PRICES)
def test_a_depth_frame_with_an_impossible_price_is_refused_by_the_decoder(bad):
    with pytest.raises(msgspec.ValidationError, match=r'\$\.data\.b\[1\]\[0\]'):
        bp.ENVELOPE_DECODER.decode(depth_frame([['100.5', '1'], [bad, '2']]))


@pytest.mark.parametrize('bad', BAD_PRICES + [True, None, [1], {'p': 1}])
def test_the_router_drops_and_counts_it_like_any_invalid_frame_and_never_raises(bad):
    seen = []
    dropped = []
    router = Router({'depth': lambda *args: seen.append(args)}, SYMBOLS, on_drop=dropped.append)
    router.route(depth_frame([], [['101', '1'], [bad, '2']]), 1.0)
    assert seen == [] and dropped == [INVALID] and router.drops[INVALID] == 1
    router.route(depth_frame([['100.5', '1']]), 1.0)           # the next good frame goes through
    assert len(seen) == 1 and seen[0][0].b == [(Decimal('100.5'), Decimal('1'))]


def test_prices_are_decimals_interned_by_their_text():
    one = bp.ENVELOPE_DECODER.decode(depth_frame([['100.50', '1']])).data.b[0][0]
    two = bp.ENVELOPE_DECODER.decode(depth_frame([['100.50', '2']])).data.b[0][0]
    other = bp.ENVELOPE_DECODER.decode(depth_frame([['100.5', '2']])).data.b[0][0]
    assert one is two and isinstance(one, Decimal) and str(one) == '100.50'
    assert other == one and hash(other) == hash(one) and str(other) == '100.5'
    assert type(one + 1) is Decimal


def test_json_number_prices_are_accepted_exactly():
    data = bp.ENVELOPE_DECODER_LAX.decode(
        '{"stream":"depth.SOL_USDC","data":{"E":1,"T":1,"U":5,"u":5,"e":"depth","s":"SOL_USDC",'
        '"b":[[100,"1"],[100.25,"2"]],"a":[]}}').data
    assert data.b == [(Decimal(100), Decimal(1)), (Decimal('100.25'), Decimal(2))]


def test_the_intern_table_is_bounded(monkeypatch):
    monkeypatch.setattr(levels, 'CACHE_LIMIT', 16)
    levels._prices.clear()
    for n in range(100):
        assert levels.dec_hook(levels.BookPrice, f'{n}.5') == Decimal(f'{n}.5')
        assert len(levels._prices) <= 16
    with pytest.raises(NotImplementedError):
        levels.dec_hook(Decimal, '1')
