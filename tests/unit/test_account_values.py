"""What the account side accepts and refuses, field by field, on the streams and over REST.

The stream frames are refused where they are decoded (``messages.py``: the router counts and drops
them as ``invalid``), the REST rows where they are parsed (``parse.py``: ``ValueError`` naming the
row's ids, which the account channel counts and skips). Legitimately signed values (PnL, fees,
position sizes) pass; everything non-finite, absurd (``1E+400``) or negative where a price or an
amount is meant does not, nor does an implausible time.
"""
from __future__ import annotations

import copy
import json
from decimal import Decimal

import msgspec
import pytest

from cryptofeed.exchanges.backpack.core.wire import messages as bp
from cryptofeed.exchanges.backpack.core.wire import parse as ad
from cryptofeed.exchanges.backpack.core.wire.router import Router
from tests.conftest import load_fixture

HOSTILE = ('NaN', 'sNaN', 'Infinity', '-Infinity', '1E+400')


def frame(fixture: str, name: str, **changes) -> dict:
    data = dict(load_fixture(fixture)[name]['data'])
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def decode(kind: str, data: dict):
    return bp.PAYLOAD_DECODERS[kind].decode(json.dumps(data).encode())


def refused(kind: str, data: dict) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        decode(kind, data)
    return str(info.value)


# ------------------------------------------------------------------ account.orderUpdate

ORDER = 'account.orderUpdate'
FILL = ('ws_orderUpdate.json', 'partial_maker_fill')          # q 5, z 2, l 2 at L 98.50, fee 0.0394


@pytest.mark.parametrize('field', ['p', 'P', 'l', 'L'])
@pytest.mark.parametrize('value', HOSTILE + ('0', '-1'))
def test_order_prices_and_the_fill_quantity_must_be_positive(field, value):
    message = refused(ORDER, frame(*FILL, **{field: value}))
    assert message.startswith('order 59887375400 trade 77120 (SOL_USDC_PERP): ') and f'{field}=' in message


@pytest.mark.parametrize('field', ['q', 'Q', 'z', 'Z'])
@pytest.mark.parametrize('value', HOSTILE + ('-1',))
def test_order_quantities_must_be_finite_and_not_negative(field, value):
    refused(ORDER, frame(*FILL, **{field: value}))


def test_executed_above_the_quantity_is_refused_equal_is_not():
    assert 'z=9 (executed) is above q=5' in refused(ORDER, frame(*FILL, z='9'))
    assert decode(ORDER, frame(*FILL, z='5')).z == Decimal(5)


@pytest.mark.parametrize('value', HOSTILE)
def test_the_fee_may_be_negative_but_must_be_finite(value):
    refused(ORDER, frame(*FILL, n=value))
    assert decode(ORDER, frame(*FILL, n='-0.0394')).n == Decimal('-0.0394')    # a maker rebate


@pytest.mark.parametrize('field', ['E', 'T'])
@pytest.mark.parametrize('value', [-1, 0, 1788368391000, 10 ** 20, 4_102_444_800_000_000])
def test_order_times_must_be_microseconds_between_2015_and_2100(field, value):
    assert 'is not a time in microseconds' in refused(ORDER, frame(*FILL, **{field: value}))


def test_trade_and_client_ids_must_be_ids():
    assert 't=-1 is not a trade id' in refused(ORDER, frame(*FILL, t=-1))
    assert 'not a client id' in refused(ORDER, frame(*FILL, c=-1))
    assert 'not a client id' in refused(ORDER, frame(*FILL, c=2 ** 32))


def test_sound_order_frames_still_decode():
    for name in ('accepted', 'cancelled', 'fill', 'fill_string_times', 'partial_maker_fill', 'expired_ioc',
                 'trigger_placed', 'quote_market_accepted', 'modified_reduce_only', 'trigger_failed',
                 'trigger_fired_limit_fill', 'triggered_status'):
        data = load_fixture('ws_orderUpdate.json')[name]['data']
        bp.PAYLOAD_DECODERS[ORDER].decode(json.dumps(data).encode())
    assert decode(ORDER, frame('ws_orderUpdate.json', 'trigger_placed')).q == 0          # q "0" on a trigger


# ------------------------------------------------------------------ account.positionUpdate

POSITION = 'account.positionUpdate'
SNAPSHOT = ('ws_positionUpdate.json', 'snapshot')              # a short: q -5, Q -5, P -4.12


@pytest.mark.parametrize('field', ['q', 'Q', 'n', 'b', 'P', 'p'])
def test_position_size_exposure_break_even_and_pnl_are_signed_but_finite(field):
    assert decode(POSITION, frame(*SNAPSHOT, **{field: '-7.5'})) is not None
    for value in HOSTILE:
        assert f'{field}=' in refused(POSITION, frame(*SNAPSHOT, **{field: value}))


@pytest.mark.parametrize('field', ['B', 'M', 'l', 'f', 'm'])
def test_position_prices_and_margin_fractions_are_not_negative(field):
    assert decode(POSITION, frame(*SNAPSHOT, **{field: '0'})) is not None
    for value in HOSTILE + ('-1',):
        refused(POSITION, frame(*SNAPSHOT, **{field: value}))


def test_position_times_when_present_must_be_plausible():
    assert decode(POSITION, frame(*SNAPSHOT, E=..., T=...)).T is None               # none at all is fine
    for value in (-1, 10 ** 20):
        assert refused(POSITION, frame(*SNAPSHOT, T=value)).startswith('position 5411399050 (SOL_USDC_PERP): T=')


def test_json_number_positions_are_checked_too():
    assert 'q=' in refused(POSITION, frame('ws_positionUpdate.json', 'docs_numbers', q=1E+40))
    assert 'B=' in refused(POSITION, frame('ws_positionUpdate.json', 'docs_numbers', B=-1))
    assert decode(POSITION, frame('ws_positionUpdate.json', 'docs_numbers')).q == Decimal(-5)


# ------------------------------------------------------------------ account.balanceUpdate

BALANCE = 'account.balanceUpdate'
DOCUMENTED = ('ws_balanceUpdate.json', 'documented')


@pytest.mark.parametrize('field', ['A', 'L', 'S'])
def test_balances_are_finite_and_not_negative(field):
    assert decode(BALANCE, frame(*DOCUMENTED, **{field: '0'})) is not None
    for value in HOSTILE + ('-1', '-3'):
        assert refused(BALANCE, frame(*DOCUMENTED, **{field: value})).startswith('balance of USDT: ')


def test_balance_times_must_be_plausible():
    for field, value in (('E', -1), ('E', 10 ** 20), ('T', -1)):
        refused(BALANCE, frame(*DOCUMENTED, **{field: value}))


# ------------------------------------------------------------------ the router counts them as invalid

def test_the_router_drops_a_hostile_private_frame_as_invalid_and_routes_the_next():
    seen, reasons = [], []
    router = Router({'account.balanceUpdate': lambda msg, *_: seen.append(msg)}, {}, on_drop=reasons.append)
    bad = {'stream': 'account.balanceUpdate', 'data': frame(*DOCUMENTED, A='NaN')}
    good = {'stream': 'account.balanceUpdate', 'data': frame(*DOCUMENTED)}
    router.route(json.dumps(bad), 0.0)
    router.route(json.dumps(good), 0.0)
    assert reasons == ['invalid'] and len(seen) == 1 and seen[0].A == Decimal(10)


# ------------------------------------------------------------------ REST rows

def rest(name: str, index: int = None) -> dict:
    value = load_fixture('rest_account.json')[name]
    return copy.deepcopy(value if index is None else value[index])


@pytest.mark.parametrize('field,value', [
    ('quantity', 'abc'), ('quantity', '0'), ('quantity', '-1'), ('price', 'NaN'), ('price', '0'),
    ('price', 'Infinity'), ('fee', 'NaN'), ('fee', '1E+400'), ('side', 'Buy'), ('side', None), ('tradeId', None),
    ('tradeId', -1), ('tradeId', 'x1'), ('tradeId', True), ('orderId', None), ('timestamp', 'yesterday'),
    ('timestamp', -1), ('timestamp', 10 ** 20), ('timestamp', None),
])
def test_fill_rows_out_of_bounds_are_refused_naming_their_ids(field, value):
    row = dict(rest('fill_history', 0), **{field: value})
    with pytest.raises(ValueError) as info:
        ad.parse_rest_fill(row, 'ETH-USDC-PERP')
    message = str(info.value)
    assert message.startswith('fill row (') and f'{field}' in message
    if field != 'orderId':
        assert 'order 4238907375' in message


def test_a_negative_fee_row_is_a_rebate_and_is_kept():
    assert ad.parse_rest_fill(dict(rest('fill_history', 0), fee='-0.01'), 'ETH-USDC-PERP').fee == Decimal('-0.01')


@pytest.mark.parametrize('field,value', [
    ('price', '0'), ('price', '-1'), ('price', 'NaN'), ('quantity', 'Infinity'), ('quantity', '-1'),
    ('executedQuantity', 'sNaN'), ('executedQuantity', '21'), ('executedQuoteQuantity', '-1'), ('side', 'Sell'),
    ('id', None), ('status', None), ('orderType', 7),
])
def test_order_rows_out_of_bounds_are_refused(field, value):
    row = dict(rest('order_resting'), **{field: value})
    with pytest.raises(ValueError, match=r'^order row \('):
        ad.parse_rest_order(row, 'USDT-USDC', 0.0)


def test_history_times_must_be_plausible():
    assert ad.history_time('2025-07-27T17:39:00.092') == ad.history_seconds('2025-07-27T17:39:00.092')
    assert ad.history_time(1788285244094) == 1788285244.094
    for value in ('garbage', None, -1, 10 ** 20, True, float('nan')):
        with pytest.raises(ValueError):
            ad.history_time(value)


@pytest.mark.parametrize('field,value', [
    ('netQuantity', 'NaN'), ('netQuantity', '1E+400'), ('entryPrice', '-1'), ('entryPrice', 'Infinity'),
    ('pnlUnrealized', 'NaN'), ('markPrice', '-1'), ('pnlRealized', 'Infinity'),
])
def test_position_rows_out_of_bounds_are_refused(field, value):
    with pytest.raises(ValueError, match=r'^position row \(.*symbol ETH_USDC_PERP'):
        ad.parse_rest_position(dict(rest('position'), **{field: value}), 'ETH-USDC-PERP', 0.0)


def test_a_short_position_row_with_a_loss_is_kept():
    position = ad.parse_rest_position(dict(rest('position'), netQuantity='-2', pnlUnrealized='-3.5'), 'X', 0.0)
    assert (position.position, position.unrealised_pnl, position.side) == (Decimal(-2), Decimal('-3.5'), 'short')


@pytest.mark.parametrize('field,value', [('available', 'NaN'), ('available', 'Infinity'), ('available', '-1'),
                                         ('locked', '-3'), ('locked', 'sNaN'), ('staked', '1E+400'),
                                         ('available', None)])
def test_capital_entries_out_of_bounds_are_refused_naming_the_asset(field, value):
    capital = rest('capital')
    asset = sorted(capital)[0]
    capital[asset][field] = value
    with pytest.raises(ValueError, match=f'^capital entry \\(asset {asset}\\)'):
        ad.parse_capital_entry(asset, capital[asset])
    with pytest.raises(ValueError):
        ad.parse_capital(capital)                   # the REST method refuses the whole answer


def test_row_ids_name_what_a_row_has():
    assert ad.row_ids(rest('fill_history', 0)) == 'order 4238907375, trade 9748827, symbol ETH_USDC_PERP'
    assert ad.row_ids(['x']) == 'a list' and ad.row_ids({}) == 'no ids'
