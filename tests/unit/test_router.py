"""Router: exact stream splitting, table dispatch, and counted, rate-limited drops (no event loop)."""
from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.wire import messages as bp
from cryptofeed.exchanges.backpack.core.wire.router import (
    DROP_REASONS, ERROR_FRAME, INVALID, MALFORMED, UNKNOWN_STREAM, UNKNOWN_SYMBOL, Router, split_stream,
)
from tests.conftest import load_fixture

LOGGER = package_log.root() + '.backpack.router'
SYMBOLS = {
    'SOL_USDC': 'SOL-USDC', 'ETH_USDC': 'ETH-USDC', 'USDT_USDC': 'USDT-USDC', 'SPCX.US_USDC': 'SPCX.US-USDC',
    'SOL_USDC_PERP': 'SOL-USDC-PERP', 'ETH_USDC_PERP': 'ETH-USDC-PERP',
    'FDVEXTD1B_USDC_PREDICTION': 'FDVEXTD1B-USDC-PREDICTION',
}


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A handler table that records every call and returns a token per call."""

    def __init__(self):
        self.calls = []

    def handler(self, kind):
        def handle(payload, symbol, interval, receipt_ts):
            self.calls.append((kind, payload, symbol, interval, receipt_ts))
            return ('handled', len(self.calls))
        return handle

    def table(self, kinds=tuple(bp.STREAM_PAYLOADS)):
        return {kind: self.handler(kind) for kind in kinds}


def make_router(kinds=tuple(bp.STREAM_PAYLOADS), **kwargs):
    rec = Recorder()
    kwargs.setdefault('clock', FakeClock())
    return Router(rec.table(kinds), SYMBOLS, **kwargs), rec


def frame(fixture: str, case: str) -> bytes:
    return json.dumps(load_fixture(fixture)[case]).encode()


def all_frames():
    for fixture in ('ws_trade.json', 'ws_depth.json', 'ws_bookTicker.json', 'ws_ticker.json', 'ws_kline.json',
                    'ws_markPrice.json', 'ws_openInterest.json', 'ws_liquidation.json', 'ws_orderUpdate.json',
                    'ws_positionUpdate.json', 'ws_balanceUpdate.json'):
        for case in load_fixture(fixture):
            if not case.startswith('_'):
                yield fixture, case


# -- split_stream ------------------------------------------------------------------------------

@pytest.mark.parametrize('name,expected', [
    ('trade.SOL_USDC', ('trade', None, 'SOL_USDC')),
    ('trade.SPCX.US_USDC', ('trade', None, 'SPCX.US_USDC')),
    ('depth.SOL_USDC', ('depth', None, 'SOL_USDC')),
    ('depth.SPCX.US_USDC', ('depth', None, 'SPCX.US_USDC')),
    ('depth.200ms.SOL_USDC', ('depth', '200ms', 'SOL_USDC')),
    ('depth.1000ms.SPCX.US_USDC', ('depth', '1000ms', 'SPCX.US_USDC')),
    ('depth.200ms', ('depth', None, '200ms')),
    ('bookTicker.QQQ.US_USDC_PERP', ('bookTicker', None, 'QQQ.US_USDC_PERP')),
    ('kline.1m.SOL_USDC', ('kline', '1m', 'SOL_USDC')),
    ('kline.1month.SPCX.US_USDC', ('kline', '1month', 'SPCX.US_USDC')),
    ('kline.1m', ('kline', '1m', None)),
    ('markPrice.kPEPE_USDC_PERP', ('markPrice', None, 'kPEPE_USDC_PERP')),
    ('account.orderUpdate', ('account.orderUpdate', None, None)),
    ('account.orderUpdate.SOL_USDC', ('account.orderUpdate', None, 'SOL_USDC')),
    ('account.positionUpdate.QQQ.US_USDC_PERP', ('account.positionUpdate', None, 'QQQ.US_USDC_PERP')),
    ('account.balanceUpdate', ('account.balanceUpdate', None, None)),
    ('liquidation', ('liquidation', None, None)),
    ('trade', ('trade', None, None)),
    ('trade.', ('trade', None, None)),
    ('', ('', None, None)),
    ('foo.bar.baz', ('foo', None, 'bar.baz')),
])
def test_split_stream_is_exact(name, expected):
    assert split_stream(name) == expected


@given(st.text())
def test_split_stream_is_total(name):
    kind, interval, symbol = split_stream(name)
    assert isinstance(kind, str)
    assert interval is None or isinstance(interval, str)
    assert symbol is None or (isinstance(symbol, str) and symbol and name.endswith(symbol))


# -- dispatch ---------------------------------------------------------------------------------

EXPECTED_ROUTES = {
    ('ws_trade.json', 'documented'): ('trade', bp.Trade, 'SOL-USDC', None),
    ('ws_trade.json', 'dotted_symbol'): ('trade', bp.Trade, 'SPCX.US-USDC', None),
    ('ws_depth.json', 'realtime'): ('depth', bp.Depth, 'SOL-USDC', None),
    ('ws_depth.json', 'aggregated'): ('depth', bp.Depth, 'SOL-USDC', '200ms'),
    ('ws_depth.json', 'dotted_symbol_aggregated'): ('depth', bp.Depth, 'SPCX.US-USDC', '1000ms'),
    ('ws_bookTicker.json', 'documented'): ('bookTicker', bp.BookTicker, 'SOL-USDC', None),
    ('ws_ticker.json', 'documented'): ('ticker', bp.Ticker24h, 'SOL-USDC', None),
    ('ws_kline.json', 'documented'): ('kline', bp.Kline, 'ETH-USDC', '2h'),
    ('ws_kline.json', 'no_trades'): ('kline', bp.Kline, 'SPCX.US-USDC', '1m'),
    ('ws_markPrice.json', 'documented'): ('markPrice', bp.MarkPrice, 'SOL-USDC-PERP', None),
    ('ws_openInterest.json', 'documented'): ('openInterest', bp.OpenInterest, 'SOL-USDC-PERP', None),
    ('ws_liquidation.json', 'documented'): ('liquidation', bp.Liquidation, 'SOL-USDC-PERP', None),
    ('ws_liquidation.json', 'ask_side'): ('liquidation', bp.Liquidation, 'ETH-USDC-PERP', None),
    ('ws_orderUpdate.json', 'fill'): ('account.orderUpdate', bp.OrderFill, 'ETH-USDC', None),
    ('ws_orderUpdate.json', 'partial_maker_fill'): ('account.orderUpdate', bp.OrderFill, 'SOL-USDC-PERP', None),
    ('ws_positionUpdate.json', 'opened'): ('account.positionUpdate', bp.PositionOpened, 'ETH-USDC-PERP', None),
    ('ws_positionUpdate.json', 'snapshot'): ('account.positionUpdate', bp.PositionUpdate, 'SOL-USDC-PERP', None),
    ('ws_balanceUpdate.json', 'documented'): ('account.balanceUpdate', bp.BalanceUpdate, None, None),
}


@pytest.mark.parametrize('key', list(EXPECTED_ROUTES), ids=lambda k: f'{k[0]}:{k[1]}')
def test_frames_reach_their_handler_with_symbol_and_interval(key):
    router, rec = make_router()
    result = router.route(frame(*key), 123.5)
    kind, cls, symbol, interval = EXPECTED_ROUTES[key]
    assert result == ('handled', 1)
    assert len(rec.calls) == 1
    got_kind, payload, got_symbol, got_interval, receipt = rec.calls[0]
    assert (got_kind, type(payload), got_symbol, got_interval, receipt) == (kind, cls, symbol, interval, 123.5)
    assert router.dropped == 0


@pytest.mark.parametrize('fixture,case', list(all_frames()))
def test_every_fixture_frame_is_routed_from_bytes_and_from_str(fixture, case):
    router, rec = make_router()
    raw = frame(fixture, case)
    router.route(raw, 1.0)
    router.route(raw.decode(), 2.0)
    assert router.drops == dict.fromkeys(DROP_REASONS, 0)
    assert len(rec.calls) == 2
    assert rec.calls[0][1:4] == rec.calls[1][1:4]


def test_async_handler_result_is_returned_for_the_feed_to_await():
    seen = []

    async def on_trade(payload, symbol, interval, receipt_ts):
        seen.append(payload)

    router = Router({'trade': on_trade}, SYMBOLS)
    pending = router.route(frame('ws_trade.json', 'documented'), 1.0)
    try:
        with pytest.raises(StopIteration):
            pending.send(None)  # drive the coroutine by hand: no event loop needed
    finally:
        pending.close()
    assert [p.t for p in seen] == [341399899]
    assert router.route(b'garbage', 1.0) is None


def test_payload_is_exactly_the_decoded_struct():
    router, rec = make_router()
    router.route(frame('ws_depth.json', 'aggregated'), 1.0)
    payload = rec.calls[0][1]
    assert payload == bp.ENVELOPE_DECODER.decode(frame('ws_depth.json', 'aggregated')).data
    assert payload.b[0] == (Decimal('218.12'), Decimal('0.02'))


def test_symbol_comes_from_the_stream_name_not_the_payload():
    router, rec = make_router()
    raw = load_fixture('ws_trade.json')['documented']
    raw['data']['s'] = 'ETH_USDC'
    router.route(json.dumps(raw), 1.0)
    assert rec.calls[0][2] == 'SOL-USDC'


def test_quoted_numbers_switch_the_router_to_the_lax_decoder():
    router, rec = make_router()
    assert router.lenient is False
    router.route(frame('ws_trade.json', 'string_times'), 1.0)
    assert router.lenient is True
    router.route(frame('ws_trade.json', 'documented'), 2.0)
    assert rec.calls[0][1] == rec.calls[1][1]
    assert router.dropped == 0


def test_quoted_update_id_on_book_ticker():
    router, rec = make_router()
    router.route(frame('ws_bookTicker.json', 'string_update_id'), 1.0)
    assert rec.calls[0][1].u == 111063070525358080


def test_unknown_order_event_reaches_the_handler_as_a_generic_update():
    router, rec = make_router()
    raw = load_fixture('ws_orderUpdate.json')['accepted']
    raw['data']['e'] = 'orderRepriced'
    router.route(json.dumps(raw), 1.0)
    payload = rec.calls[0][1]
    assert type(payload) is bp.OrderUpdate and payload.event is None and payload.i == '59887375336'


def test_symbol_learned_later_is_routed():
    symbols = {}
    rec = Recorder()
    router = Router(rec.table(), symbols, clock=FakeClock())
    router.route(frame('ws_trade.json', 'documented'), 1.0)
    assert router.drops[UNKNOWN_SYMBOL] == 1 and rec.calls == []
    symbols['SOL_USDC'] = 'SOL-USDC'
    router.route(frame('ws_trade.json', 'documented'), 2.0)
    assert rec.calls[0][2] == 'SOL-USDC'


def test_symbols_added_and_removed_while_running_route_and_then_drop_quietly(caplog):
    drops = []
    rec = Recorder()
    router = Router(rec.table(), {}, clock=FakeClock(), on_drop=drops.append)
    router.add_symbol('SOL_USDC', 'SOL-USDC')
    router.route(frame('ws_trade.json', 'documented'), 1.0)
    assert rec.calls[-1][2] == 'SOL-USDC'           # routed (and the route cached)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        router.remove_symbol('SOL_USDC')
        router.route(frame('ws_trade.json', 'documented'), 2.0)   # in flight after the UNSUBSCRIBE
        router.route(frame('ws_trade.json', 'documented'), 3.0)
    assert len(rec.calls) == 1                       # the cached route is gone too
    assert router.drops[UNKNOWN_SYMBOL] == 2 and drops == [UNKNOWN_SYMBOL, UNKNOWN_SYMBOL]
    assert caplog.records == []                      # expected after an unsubscribe: no warning
    router.add_symbol('SOL_USDC', 'SOL-USDC')        # subscribed again
    router.route(frame('ws_trade.json', 'documented'), 4.0)
    assert len(rec.calls) == 2


def test_constructor_rejects_unknown_kinds():
    with pytest.raises(ValueError, match='tardes'):
        Router({'tardes': lambda *a: None}, SYMBOLS)


# -- drops ------------------------------------------------------------------------------------

def envelope(stream, data):
    return json.dumps({'stream': stream, 'data': data})


TRADE_DATA = load_fixture('ws_trade.json')['documented']['data']
DEPTH_DATA = load_fixture('ws_depth.json')['realtime']['data']

DROPS = [
    (MALFORMED, b''),
    (MALFORMED, b'{"stream": "trade.SOL_USDC", "data": {'),
    (MALFORMED, b'\xff\xfe\x00'),
    (MALFORMED, b'[1, 2, 3]'),
    (MALFORMED, b'"just a string"'),
    (MALFORMED, b'null'),
    (MALFORMED, b'{}'),
    (MALFORMED, b'{"stream": "trade.SOL_USDC"}'),
    (MALFORMED, b'{"data": {"e": "trade"}}'),
    (MALFORMED, b'{"stream": "trade.SOL_USDC", "data": null}'),
    (MALFORMED, b'{"stream": 5, "data": {}}'),
    (MALFORMED, None),
    (MALFORMED, 12345),
    (MALFORMED, b'[' * 50000),
    (INVALID, envelope('trade.SOL_USDC', dict(TRADE_DATA, p=218.5, q=None))),
    (INVALID, envelope('trade.SOL_USDC', dict(TRADE_DATA, p='not-a-number'))),
    (INVALID, envelope('trade.SOL_USDC', dict(TRADE_DATA, t='abc'))),
    (INVALID, envelope('trade.SOL_USDC', {k: v for k, v in TRADE_DATA.items() if k != 'T'})),
    (INVALID, envelope('trade.SOL_USDC', dict(TRADE_DATA, e='tradeV2'))),
    (INVALID, envelope('trade.SOL_USDC', DEPTH_DATA)),
    (INVALID, envelope('depth.SOL_USDC', dict(DEPTH_DATA, a=[['1', '2', '3']]))),
    (INVALID, envelope('depth.SOL_USDC', dict(DEPTH_DATA, b='[]'))),
    (INVALID, envelope('depth.SOL_USDC', [])),
    (INVALID, envelope('liquidation', dict(load_fixture('ws_liquidation.json')['documented']['data'], S='Buy'))),
    (INVALID, envelope('kline.1m.SOL_USDC', dict(load_fixture('ws_kline.json')['closed']['data'], t='yesterday'))),
    (UNKNOWN_STREAM, envelope('tradez.SOL_USDC', TRADE_DATA)),
    (UNKNOWN_STREAM, envelope('trade', TRADE_DATA)),
    (UNKNOWN_STREAM, envelope('kline.SOL_USDC', load_fixture('ws_kline.json')['closed']['data'])),
    (UNKNOWN_STREAM, envelope('account.balanceUpdate.USDT',
                              load_fixture('ws_balanceUpdate.json')['documented']['data'])),
    (UNKNOWN_STREAM, envelope('', TRADE_DATA)),
    (UNKNOWN_SYMBOL, envelope('trade.XRP_USDC', dict(TRADE_DATA, s='XRP_USDC'))),
    (UNKNOWN_SYMBOL, envelope('trade.sol_usdc', TRADE_DATA)),
    (UNKNOWN_SYMBOL, envelope('liquidation', dict(load_fixture('ws_liquidation.json')['documented']['data'],
                                                  s='DOGE_USDC_PERP'))),
    (ERROR_FRAME, json.dumps(load_fixture('ws_error.json')['invalid_signature'])),
    (ERROR_FRAME, json.dumps(load_fixture('ws_error.json')['invalid_stream'])),
    (ERROR_FRAME, b'{"id": 7, "error": "boom"}'),
]


@pytest.mark.parametrize('reason,raw', DROPS, ids=[f'{i}-{r}' for i, (r, _) in enumerate(DROPS)])
def test_bad_frames_are_counted_and_dropped_without_exceptions(reason, raw):
    router, rec = make_router()
    assert router.route(raw, 1.0) is None
    assert rec.calls == []
    assert router.drops == dict(dict.fromkeys(DROP_REASONS, 0), **{reason: 1})
    assert router.dropped == 1


def test_kinds_without_handler_are_unknown_streams():
    router, rec = make_router(kinds=('trade',))
    router.route(frame('ws_depth.json', 'realtime'), 1.0)
    router.route(frame('ws_orderUpdate.json', 'fill'), 1.0)
    router.route(frame('ws_positionUpdate.json', 'snapshot'), 1.0)
    assert router.drops[UNKNOWN_STREAM] == 3 and rec.calls == []


def test_drops_is_a_snapshot():
    router, _ = make_router()
    snapshot = router.drops
    router.route(b'x', 1.0)
    assert snapshot[MALFORMED] == 0 and router.drops[MALFORMED] == 1


def test_error_frames_reach_on_error():
    errors = []

    def on_error(err, receipt_ts):
        errors.append((err, receipt_ts))
        return 'auth-failed'

    router = Router({}, SYMBOLS, on_error=on_error, clock=FakeClock())
    assert router.route(json.dumps(load_fixture('ws_error.json')['invalid_signature']), 9.0) == 'auth-failed'
    assert errors == [(bp.ErrorFrame(error=bp.ErrorBody(code=4003, message='Invalid signature')), 9.0)]
    router.route(b'{"id": null, "error": [1]}', 10.0)
    assert errors[1][0].error.code is None and '[1]' in errors[1][0].error.message
    assert router.drops[ERROR_FRAME] == 2


# -- rate-limited warnings --------------------------------------------------------------------

def test_warning_names_reason_stream_and_symbol(caplog):
    router, _ = make_router()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        router.route(envelope('trade.XRP_USDC', dict(TRADE_DATA, s='XRP_USDC')), 1.0)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert 'unknown_symbol' in record.getMessage()
    assert 'stream=trade.XRP_USDC' in record.getMessage() and 'symbol=XRP_USDC' in record.getMessage()


def test_warnings_are_rate_limited_per_reason_and_stream(caplog):
    clock = FakeClock(1000.0)
    router, _ = make_router(clock=clock, log_interval=10.0)
    bad = envelope('trade.XRP_USDC', dict(TRADE_DATA, s='XRP_USDC'))
    other = envelope('depth.XRP_USDC', dict(DEPTH_DATA, s='XRP_USDC'))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(5):
            router.route(bad, 1.0)
        router.route(other, 1.0)
        router.route(b'not json', 1.0)
        assert len(caplog.records) == 3
        clock.now += 9.99
        router.route(bad, 1.0)
        assert len(caplog.records) == 3
        clock.now += 0.01
        router.route(bad, 1.0)
        assert len(caplog.records) == 4
    assert '(5 more since the last report)' in caplog.records[-1].getMessage()
    assert router.drops[UNKNOWN_SYMBOL] == 8 and router.drops[MALFORMED] == 1


def test_error_frames_are_rate_limited_per_code(caplog):
    router, _ = make_router()
    sig = json.dumps(load_fixture('ws_error.json')['invalid_signature'])
    stream = json.dumps(load_fixture('ws_error.json')['invalid_stream'])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for raw in (sig, sig, stream, stream):
            router.route(raw, 1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert '4003: Invalid signature' in messages[0] and '4006: Invalid stream' in messages[1]


def test_successful_frames_never_log(caplog):
    router, _ = make_router()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for fixture, case in EXPECTED_ROUTES:
            router.route(frame(fixture, case), 1.0)
    assert caplog.records == []


# -- fuzzing: nothing gets out of the router --------------------------------------------------

def assert_one_outcome(router, rec, raw):
    before_calls, before_drops = len(rec.calls), router.dropped
    router.route(raw, 1.0)
    outcomes = (len(rec.calls) - before_calls) + (router.dropped - before_drops)
    assert outcomes == 1, raw


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(raw):
    router, rec = make_router()
    assert_one_outcome(router, rec, raw)


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(raw):
    router, rec = make_router()
    assert_one_outcome(router, rec, raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=5),
    max_leaves=20,
)
stream_names = st.sampled_from([
    'trade.SOL_USDC', 'depth.SOL_USDC', 'depth.200ms.SOL_USDC', 'bookTicker.SOL_USDC', 'ticker.SOL_USDC',
    'kline.1m.SOL_USDC', 'markPrice.SOL_USDC_PERP', 'openInterest.SOL_USDC_PERP', 'liquidation',
    'account.orderUpdate', 'account.positionUpdate', 'account.balanceUpdate', 'trade.SPCX.US_USDC',
    'kline.1m', 'nope.SOL_USDC', '']) | st.text(max_size=20)


@FUZZ
@given(stream=stream_names, data=json_values, error=st.none() | json_values)
def test_fuzz_envelopes_with_arbitrary_payloads(stream, data, error):
    router, rec = make_router()
    doc = {'stream': stream, 'data': data}
    if error is not None:
        doc['error'] = error
    assert_one_outcome(router, rec, json.dumps(doc))


documented = [load_fixture(f)[c] for f, c in all_frames()]


@FUZZ
@given(base=st.sampled_from(documented), key=st.text(min_size=1, max_size=2), value=json_values, drop=st.booleans())
def test_fuzz_mutated_documented_frames(base, key, value, drop):
    router, rec = make_router()
    data = dict(base['data'])
    if drop and data:
        data.pop(sorted(data)[len(key) % len(data)])
    else:
        data[key] = value
    assert_one_outcome(router, rec, json.dumps({'stream': base['stream'], 'data': data}))


def test_a_flood_of_distinct_unknown_streams_gives_a_bounded_number_of_short_warnings(caplog):
    clock = FakeClock(1000.0)
    router, _ = make_router(clock=clock, log_interval=10.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for i in range(5000):
            router.route(envelope(f'nosuch{i}.SOL_USDC', TRADE_DATA), 1.0)
        assert router.drops['unknown_stream'] == 5000
        assert len(caplog.records) == 20
        clock.now += 10.0
        router.route(envelope('x' * 1_000_000, TRADE_DATA), 1.0)
    assert len(caplog.records) == 21
    last = caplog.records[-1].getMessage()
    assert len(last) < 600 and '(1000000 characters)' in last
    assert '4980 more unknown_stream frames of other streams not reported one by one' in last
