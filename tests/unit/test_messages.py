"""Typed wire messages: every documented Backpack WS payload decodes to its struct, exactly."""
from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import msgspec
import pytest

from cryptofeed.exchanges.backpack.core.wire import messages as bp
from tests.conftest import FIXTURES, load_fixture

STREAM_FIXTURES = sorted(p.name for p in FIXTURES.glob('ws_*.json') if p.name != 'ws_error.json')


def frame(fixture: str, case: str) -> bytes:
    return json.dumps(load_fixture(fixture)[case]).encode()


def cases(fixture: str):
    return [name for name in load_fixture(fixture) if not name.startswith('_')]


def all_frames():
    for fixture in STREAM_FIXTURES:
        for case in cases(fixture):
            yield fixture, case


def strict(fixture: str, case: str):
    return bp.ENVELOPE_DECODER.decode(frame(fixture, case))


def lax(fixture: str, case: str):
    return bp.ENVELOPE_DECODER_LAX.decode(frame(fixture, case))


def test_fixture_files_cover_every_stream_kind():
    kinds = {name[len('ws_'):-len('.json')] for name in STREAM_FIXTURES}
    expected = {kind.split('.')[-1] for kind in bp.STREAM_PAYLOADS}
    assert kinds == expected


@pytest.mark.parametrize('fixture,case', list(all_frames()))
def test_every_fixture_frame_decodes_to_the_payload_of_its_stream(fixture, case):
    raw = load_fixture(fixture)[case]
    if 'e' not in raw['data']:
        payload = bp.PAYLOAD_DECODERS['account.positionUpdate'].decode(json.dumps(raw['data']).encode())
    else:
        payload = lax(fixture, case).data
    kind = raw['stream'].split('.')[0]
    if kind == 'account':
        kind = '.'.join(raw['stream'].split('.')[:2])
    assert isinstance(payload, bp.STREAM_PAYLOADS[kind])
    assert type(payload) in bp.PAYLOAD_TYPES[kind]


def test_trade_documented_example():
    env = strict('ws_trade.json', 'documented')
    assert env.stream == 'trade.SOL_USDC'
    assert env.data == bp.Trade(p=Decimal('218.50'), q=Decimal('0.07'), t=341399899, m=True,
                                T=1736186248744398)  # order ids b/a, symbol s and emit time E are skipped
    assert str(env.data.p) == '218.50'  # the exchange's scale is kept


def test_depth_levels_are_decimal_tuples_and_zero_quantities_compare_zero():
    agg = strict('ws_depth.json', 'aggregated').data
    assert (agg.U, agg.u) == (1802083134, 1802083137)
    assert agg.a == [(Decimal('219.00'), Decimal('2.98'))]
    assert agg.b == [(Decimal('218.12'), Decimal('0.02')), (Decimal('218.60'), Decimal('22.35')),
                     (Decimal('218.61'), Decimal('13.88'))]
    # Prices are interned ``levels.BookPrice`` objects: a Decimal subclass with nothing of its own.
    assert all(type(level) is tuple and isinstance(level[0], Decimal) and type(level[1]) is Decimal
               for level in agg.a + agg.b)
    zero = strict('ws_depth.json', 'zero_quantities').data
    assert [q == 0 for _, q in zero.a + zero.b] == [True, True, True, False]
    realtime = strict('ws_depth.json', 'realtime').data
    assert realtime.b == [] and realtime.U == realtime.u == 4330360996


def test_book_ticker_documented_example():
    data = strict('ws_bookTicker.json', 'documented').data
    assert (data.b, data.B, data.a, data.A) == (Decimal('98.96'), Decimal('288.77'), Decimal('98.97'),
                                                Decimal('22.39'))
    assert (data.u, data.E, data.T) == (4330360995, 1788367430247487, 1788367430246081)


def test_ticker_documented_example_has_no_engine_time():
    data = strict('ws_ticker.json', 'documented').data
    assert data == bp.Ticker24h(s='SOL_USDC', v=Decimal('15089.56'), V=Decimal('1498114.9234'), n=6796,
                                E=1788367430549233, o=Decimal('100.87'), c=Decimal('98.98'),
                                h=Decimal('101.19'), l=Decimal('97.38'))
    assert not hasattr(data, 'T')


def test_kline_times_are_naive_utc_datetimes_and_prices_keep_padding():
    data = strict('ws_kline.json', 'documented').data
    assert data.t == datetime(2025, 8, 6, 22, 0) and data.t.tzinfo is None
    assert data.T == datetime(2025, 8, 7, 0, 0)
    assert (data.o, data.c) == (Decimal('3670.150000000'), Decimal('3680.520000000'))
    assert str(data.v) == '62.2621000'
    assert (data.n, data.X, data.E) == (255, False, 1754519557526056)


def test_kline_without_trades_has_null_prices():
    data = strict('ws_kline.json', 'no_trades').data
    assert (data.o, data.h, data.l, data.c) == (None, None, None, None)
    assert (data.v, data.n, data.X) == (Decimal('0'), 0, True)


def test_mark_price_fields_and_prediction_market_without_funding():
    data = strict('ws_markPrice.json', 'documented').data
    assert (data.p, data.f, data.i, data.n) == (Decimal('98.94'), Decimal('0.0000125'), Decimal('98.94998504'),
                                                1788368400000)
    prediction = strict('ws_markPrice.json', 'prediction_market').data
    assert (prediction.p, prediction.f, prediction.i, prediction.n) == (Decimal('0.42'), None, None, None)


def test_open_interest_and_liquidation_documented_examples():
    oi = strict('ws_openInterest.json', 'documented').data
    assert oi == bp.OpenInterest(s='SOL_USDC_PERP', o=Decimal('100'), E=1694687965941000)
    liq = strict('ws_liquidation.json', 'documented').data
    assert liq == bp.Liquidation(s='SOL_USDC_PERP', p=Decimal('18.70'), q=Decimal('10'), S='Bid',
                                 E=1694688638091000, T=1694688638090000)


def test_order_events_decode_to_their_subclass_with_event_name():
    expected = {'accepted': (bp.OrderAccepted, 'orderAccepted'), 'cancelled': (bp.OrderCancelled, 'orderCancelled'),
                'fill': (bp.OrderFill, 'orderFill'), 'expired_ioc': (bp.OrderExpired, 'orderExpired'),
                'trigger_placed': (bp.TriggerPlaced, 'triggerPlaced')}
    for case, (cls, event) in expected.items():
        data = strict('ws_orderUpdate.json', case).data
        assert type(data) is cls and data.event == event


def test_order_fill_recorded_frame():
    data = strict('ws_orderUpdate.json', 'fill').data
    assert (data.s, data.i, data.S, data.o, data.X, data.f) == ('ETH_USDC', '5406825793', 'Bid', 'MARKET', 'Filled',
                                                                'GTC')
    assert (data.l, data.L, data.n, data.N, data.m, data.t) == (Decimal('0.0010'), Decimal('4299.16'),
                                                                Decimal('0.000001'), 'ETH', False, 2888471)
    assert (data.q, data.Q, data.z, data.Z, data.p) == (Decimal('0.0010'), Decimal('4.30'), Decimal('0.0010'),
                                                        Decimal('4.299160'), None)
    assert (data.O, data.V, data.r, data.c) == ('USER', 'RejectTaker', False, None)


def test_order_accepted_has_null_trade_id_and_post_only_flag():
    data = strict('ws_orderUpdate.json', 'accepted').data
    assert data.t is None and data.y is True and data.l is None
    assert (data.p, data.q, data.Q) == (Decimal('1.0076'), Decimal('20'), Decimal('20.1520'))


def test_order_expiry_reason_and_trigger_price():
    assert strict('ws_orderUpdate.json', 'expired_ioc').data.R == 'ImmediateOrCancel'
    trigger = strict('ws_orderUpdate.json', 'trigger_placed').data
    assert (trigger.P, trigger.X, trigger.q) == (Decimal('95.00'), 'TriggerPending', Decimal('0'))


def test_position_snapshot_without_event_decodes_to_the_base_class_only():
    raw = frame('ws_positionUpdate.json', 'snapshot')
    with pytest.raises(msgspec.ValidationError, match='`e`'):
        bp.ENVELOPE_DECODER.decode(raw)
    data = bp.PAYLOAD_DECODERS['account.positionUpdate'].decode(json.dumps(json.loads(raw)['data']))
    assert type(data) is bp.PositionUpdate and data.event is None
    assert (data.q, data.B, data.P, data.i) == (Decimal('-5'), Decimal('98.12'), Decimal('-4.12'), '5411399050')


def test_position_fields_decode_from_json_numbers_exactly():
    data = strict('ws_positionUpdate.json', 'docs_numbers').data
    assert type(data) is bp.PositionAdjusted
    assert (data.B, data.M, data.q, data.m, data.b) == (Decimal('98.12'), Decimal('98.94'), Decimal('-5'),
                                                        Decimal('0.0125'), Decimal('98.2'))


def test_position_opened_recorded_frame():
    data = strict('ws_positionUpdate.json', 'opened').data
    assert type(data) is bp.PositionOpened and data.event == 'positionOpened'
    assert (data.B, data.b, data.q, data.P, data.i, data.T) == (Decimal('4236.36'), Decimal('4238.479'),
                                                                Decimal('0.0010'), Decimal('-0.000473'),
                                                                5411399049, 1754943862040487)


def test_balance_update_documented_example():
    data = strict('ws_balanceUpdate.json', 'documented').data
    assert data == bp.BalanceUpdate(a='USDT', A=Decimal('10'), L=Decimal('20'), S=Decimal('0'),
                                    E=1788368290063168, T=1788368290062981)


@pytest.mark.parametrize('fixture,string_case,int_case', [
    ('ws_trade.json', 'string_times', 'documented'),
    ('ws_depth.json', 'string_times', 'realtime'),
    ('ws_bookTicker.json', 'string_times', 'documented'),
    ('ws_bookTicker.json', 'string_update_id', 'documented'),
    ('ws_ticker.json', 'string_time', 'documented'),
    ('ws_kline.json', 'string_time', 'documented'),
    ('ws_markPrice.json', 'string_times', 'documented'),
    ('ws_openInterest.json', 'string_time', 'documented'),
    ('ws_liquidation.json', 'string_times', 'documented'),
    ('ws_orderUpdate.json', 'fill_string_times', 'fill'),
])
def test_quoted_numbers_need_the_lax_decoder_and_then_decode_to_integers(fixture, string_case, int_case):
    with pytest.raises(msgspec.ValidationError):
        strict(fixture, string_case)
    quoted = lax(fixture, string_case).data
    plain = strict(fixture, int_case).data
    assert type(quoted.E if hasattr(quoted, 'E') else quoted.T) is int  # trades do not decode E
    if string_case == 'string_update_id':
        assert quoted.u == 111063070525358080
        assert msgspec.structs.replace(quoted, u=plain.u) == plain
    else:
        assert quoted == plain


def test_lax_decoder_still_rejects_non_numeric_times():
    bad = frame('ws_trade.json', 'documented').replace(b'"T": 1736186248744398', b'"T": "soon"')
    with pytest.raises(msgspec.ValidationError, match=r'\$\.data\.T'):
        bp.ENVELOPE_DECODER_LAX.decode(bad)


def test_unknown_side_is_invalid_instead_of_guessed():
    bad = frame('ws_liquidation.json', 'documented').replace(b'"Bid"', b'"Buy"')
    with pytest.raises(msgspec.ValidationError, match=r'\$\.data\.S'):
        bp.ENVELOPE_DECODER_LAX.decode(bad)


def test_unknown_keys_are_ignored_for_forward_compatibility():
    raw = load_fixture('ws_trade.json')['documented']
    raw['data']['X'] = {'new': ['field']}
    raw['extra'] = 1
    assert bp.ENVELOPE_DECODER.decode(json.dumps(raw)).data == strict('ws_trade.json', 'documented').data


def test_envelope_key_order_does_not_matter():
    raw = load_fixture('ws_depth.json')['aggregated']
    flipped = json.dumps({'data': raw['data'], 'stream': raw['stream']})
    assert bp.ENVELOPE_DECODER.decode(flipped) == strict('ws_depth.json', 'aggregated')


def test_unknown_event_type_is_rejected_by_the_union():
    bad = frame('ws_trade.json', 'documented').replace(b'"e": "trade"', b'"e": "tradeV2"')
    with pytest.raises(msgspec.ValidationError, match="tradeV2"):
        bp.ENVELOPE_DECODER_LAX.decode(bad)


def test_structs_are_frozen():
    data = strict('ws_trade.json', 'documented').data
    with pytest.raises(AttributeError):
        data.p = Decimal('1')


def test_decoding_str_and_bytes_gives_equal_results():
    raw = frame('ws_depth.json', 'aggregated')
    assert bp.ENVELOPE_DECODER.decode(raw.decode()) == bp.ENVELOPE_DECODER.decode(raw)


@pytest.mark.parametrize('case,code,message', [
    ('invalid_signature', 4003, 'Invalid signature'),
    ('invalid_stream', 4006, 'Invalid stream'),
])
def test_error_frames(case, code, message):
    raw = json.dumps(load_fixture('ws_error.json')[case])
    err = bp.ERROR_DECODER.decode(raw)
    assert err == bp.ErrorFrame(error=bp.ErrorBody(code=code, message=message), id=None)
    with pytest.raises(msgspec.ValidationError):
        bp.ENVELOPE_DECODER.decode(raw)
    probe = bp.PROBE_DECODER.decode(raw)
    assert probe.stream is None and bytes(probe.error).startswith(b'{') and not probe.data


def test_probe_keeps_the_raw_payload():
    raw = frame('ws_positionUpdate.json', 'snapshot')
    probe = bp.PROBE_DECODER.decode(raw)
    assert probe.stream == 'account.positionUpdate'
    assert json.loads(bytes(probe.data)) == json.loads(raw)['data']


def test_payload_types_cover_event_subclasses():
    assert set(bp.PAYLOAD_TYPES['account.orderUpdate']) == {
        bp.OrderUpdate, bp.OrderAccepted, bp.OrderCancelled, bp.OrderExpired, bp.OrderFill, bp.OrderModified,
        bp.TriggerPlaced, bp.TriggerFailed}
    assert set(bp.PAYLOAD_TYPES['account.positionUpdate']) == {
        bp.PositionUpdate, bp.PositionOpened, bp.PositionAdjusted, bp.PositionClosed}
    assert bp.PAYLOAD_TYPES['trade'] == (bp.Trade,)


# -- hostile values (issue 10 item 5) -----------------------------------------------------------

HOSTILE = ['NaN', '-NaN', 'sNaN', 'Infinity', '-Infinity', '1E+400', '-1', '-0.5', '1E-400']

# (fixture, case, field): a price/size field of every public payload the feed turns into an object.
VALUE_FIELDS = [
    ('ws_trade.json', 'documented', 'p'), ('ws_trade.json', 'documented', 'q'),
    ('ws_bookTicker.json', 'documented', 'b'), ('ws_bookTicker.json', 'documented', 'a'),
    ('ws_bookTicker.json', 'documented', 'B'), ('ws_bookTicker.json', 'documented', 'A'),
    ('ws_ticker.json', 'documented', 'c'), ('ws_ticker.json', 'documented', 'v'),
    ('ws_kline.json', 'documented', 'o'), ('ws_kline.json', 'documented', 'h'),
    ('ws_kline.json', 'documented', 'l'), ('ws_kline.json', 'documented', 'c'), ('ws_kline.json', 'documented', 'v'),
    ('ws_markPrice.json', 'documented', 'p'), ('ws_markPrice.json', 'documented', 'i'),
    ('ws_markPrice.json', 'documented', 'f'),
    ('ws_openInterest.json', 'documented', 'o'),
    ('ws_liquidation.json', 'documented', 'p'), ('ws_liquidation.json', 'documented', 'q'),
]


def with_value(fixture: str, case: str, field: str, value) -> bytes:
    raw = json.loads(json.dumps(load_fixture(fixture)[case]))
    raw['data'][field] = value
    return json.dumps(raw).encode()


@pytest.mark.parametrize('value', HOSTILE)
@pytest.mark.parametrize('fixture,case,field', VALUE_FIELDS)
def test_hostile_prices_and_sizes_are_refused_by_every_decoder(fixture, case, field, value):
    if field == 'f' and value in ('-1', '-0.5', '1E-400'):
        value = '-1.5'  # a negative or tiny funding rate is real; beyond -100 % is not
    bad = with_value(fixture, case, field, value)
    for decoder in (bp.ENVELOPE_DECODER, bp.ENVELOPE_DECODER_LAX):
        with pytest.raises(msgspec.ValidationError, match=f'{field}=|not a plausible'):
            decoder.decode(bad)
    kind = load_fixture(fixture)[case]['stream'].split('.')[0]
    with pytest.raises(msgspec.ValidationError):
        bp.PAYLOAD_DECODERS[kind].decode(json.dumps(json.loads(bad)['data']).encode())


@pytest.mark.parametrize('value', ['1E+400', 1e300])
def test_hostile_values_sent_as_json_numbers_are_refused_too(value):
    raw = json.loads(frame('ws_trade.json', 'documented'))
    raw['data']['p'] = value
    text = json.dumps(raw).replace('1e+300', '1E+400') if isinstance(value, float) else json.dumps(raw)
    with pytest.raises(msgspec.ValidationError):
        bp.ENVELOPE_DECODER_LAX.decode(text.encode())


def test_value_bounds_never_raise_and_accept_real_values():
    for good in ('218.50', '0.000001', '0.00000001', '420000000000000', '100'):
        assert bp.is_price(Decimal(good)) and bp.is_size(Decimal(good))
    assert bp.is_size(Decimal('0')) and bp.is_size(Decimal('0.00')) and not bp.is_price(Decimal('0'))
    for bad in HOSTILE + ['1E+18']:
        assert not bp.is_price(Decimal(bad)) and not bp.is_size(Decimal(bad))
    assert bp.is_rate(Decimal('-0.0001703677559048204097085472')) and bp.is_rate(Decimal('0'))
    for bad in ('NaN', 'sNaN', 'Infinity', '1', '-1', '1E+400'):
        assert not bp.is_rate(Decimal(bad))
    assert not bp.is_price(None) and not bp.is_price('12')


def test_optional_prices_may_be_null_but_not_hostile():
    assert strict('ws_markPrice.json', 'prediction_market').data.f is None
    with pytest.raises(msgspec.ValidationError):
        bp.ENVELOPE_DECODER.decode(with_value('ws_markPrice.json', 'prediction_market', 'i', 'sNaN'))


def test_a_quiet_closed_kline_with_null_volume_decodes():
    data = strict('ws_kline.json', 'quiet_closed').data
    assert (data.o, data.h, data.l, data.c, data.v) == (None, None, None, None, None)
    assert (data.n, data.X) == (0, True)
