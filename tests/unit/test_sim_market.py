"""The simulator's market model, without sockets or an event loop (fake clock, explicit steps).

Checks the emulator contract of backpack-api.md §9 on the model's own events: one gap-free
sequence, realtime frames with one id each, aggregated frames that coalesce a window, trades
that consume the levels the depth frames then report, bookTicker ids on the same sequence.
Also the market definitions of §3.1 and the wire helpers the server builds frames with.
"""
from __future__ import annotations

import calendar
import json
from decimal import Decimal

import pytest

from cryptofeed.exchanges.backpack.simulator import markets as sim_markets
from cryptofeed.exchanges.backpack.simulator import wire
from cryptofeed.exchanges.backpack.simulator.market import (
    DAY_US, BookTop, DepthUpdate, KlineUpdate, LiquidationEvent, MarketModel, MarkPriceUpdate, OpenInterestUpdate,
    TickerUpdate, TradePrint, kline_bucket,
)
from tests.conftest import load_fixture

T0 = 1_788_285_151_000_000  # 2026-09-01 17:12:31 UTC, in µs


class Clock:
    def __init__(self, now: int = T0):
        self.now = now

    def __call__(self) -> int:
        return self.now


def model(symbols=('SOL_USDC',), seed=7, **kw) -> tuple[MarketModel, Clock]:
    clock = Clock()
    return MarketModel(list(symbols), seed=seed, clock=clock, **kw), clock


def run(m: MarketModel, clock: Clock, steps: int, dt_us: int = 1000) -> list:
    for _ in range(steps):
        clock.now += dt_us
        m.step()
        m.advance()
    return m.drain()


class Replay:
    """A book rebuilt from realtime DepthUpdates, checking their sequence as it goes."""

    def __init__(self, m: MarketModel, symbol: str):
        snap = m.book_snapshot(symbol)
        self.bids = dict(snap.bids)
        self.asks = dict(snap.asks)
        self.last = snap.sequence

    def apply(self, ev: DepthUpdate) -> None:
        assert ev.first_id == self.last + 1, 'gap-free'
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for price, qty in levels:
                if qty == 0:
                    assert price in side
                    del side[price]
                else:
                    side[price] = qty
        self.last = ev.last_id

    def top(self):
        bb, ba = max(self.bids), min(self.asks)
        return bb, self.bids[bb], ba, self.asks[ba]


# ------------------------------------------------------------------------------------ determinism

def test_same_seed_same_events_and_other_seed_other_events():
    a, ca = model(('SOL_USDC', 'BTC_USDC_PERP'), seed=11)
    b, cb = model(('SOL_USDC', 'BTC_USDC_PERP'), seed=11)
    c, cc = model(('SOL_USDC', 'BTC_USDC_PERP'), seed=12)
    ea, eb, ec = run(a, ca, 3000), run(b, cb, 3000), run(c, cc, 3000)
    assert ea == eb
    assert ea != ec
    assert a.book_snapshot('SOL_USDC') == b.book_snapshot('SOL_USDC')


# ------------------------------------------------------------------------------------ sequence and book

def test_realtime_depth_is_gap_free_and_rebuilds_the_book():
    m, clock = model(('SOL_USDC', 'ETH_USDC'))
    replays = {s: Replay(m, s) for s in m.symbols}
    events = run(m, clock, 4000)
    depth = [e for e in events if type(e) is DepthUpdate]
    assert len(depth) >= 4000
    for ev in depth:
        assert ev.first_id == ev.last_id and ev.window_ms == 0
        assert len(ev.bids) + len(ev.asks) == 1
        replays[ev.symbol].apply(ev)
    for symbol, replay in replays.items():
        snap = m.book_snapshot(symbol)
        assert replay.last == snap.sequence
        assert replay.bids == dict(snap.bids) and replay.asks == dict(snap.asks)
        assert [p for p, _ in snap.bids] == sorted(replay.bids, reverse=True)
        assert [p for p, _ in snap.asks] == sorted(replay.asks)
        assert snap.bids[0][0] < snap.asks[0][0], 'never crossed'
        assert 10 <= len(snap.bids) <= 60 and 10 <= len(snap.asks) <= 60


def test_prices_and_quantities_respect_tick_and_step():
    m, clock = model(('BTC_USDC', 'kPEPE_USDC_PERP', 'USDT_USDC'))
    events = run(m, clock, 3000)
    for ev in events:
        if type(ev) is DepthUpdate:
            tick, step = m.tick_size(ev.symbol), m.step_size(ev.symbol)
            for price, qty in ev.bids + ev.asks:
                assert price % tick == 0 and qty % step == 0 and qty >= 0
                assert 'E' not in wire.dstr(price) and 'E' not in wire.dstr(qty)
        elif type(ev) is TradePrint:
            assert ev.quantity > 0 and ev.quantity % m.step_size(ev.symbol) == 0


def test_trades_consume_the_levels_that_depth_then_reports():
    m, clock = model(('SOL_USDC',))
    replay = Replay(m, 'SOL_USDC')
    events = run(m, clock, 3000)
    trade_ids = []
    expected = None
    for ev in events:
        if type(ev) is TradePrint:
            side = replay.bids if ev.buyer_is_maker else replay.asks
            assert ev.price in side, 'a trade prints at a resting level'
            expected = (ev.price, side[ev.price] - ev.quantity, ev.buyer_is_maker)
            trade_ids.append(ev.trade_id)
        elif type(ev) is DepthUpdate:
            if expected is not None:
                price, qty, on_bids = expected
                assert (ev.bids if on_bids else ev.asks) == ((price, qty),)
                expected = None
            replay.apply(ev)
    assert len(trade_ids) > 100
    assert trade_ids == list(range(trade_ids[0], trade_ids[0] + len(trade_ids)))
    log = m.trades('SOL_USDC')
    assert [r.trade_id for r in log] == trade_ids
    assert m.last_price('SOL_USDC') == log[-1].price


def test_book_ticker_reuses_the_id_of_the_update_that_changed_the_top():
    m, clock = model(('ETH_USDC',))
    replay = Replay(m, 'ETH_USDC')
    top = replay.top()
    events = run(m, clock, 3000)
    tickers = 0
    for i, ev in enumerate(events):
        if type(ev) is DepthUpdate:
            replay.apply(ev)
            new_top = replay.top()
            following = events[i + 1] if i + 1 < len(events) else None
            if new_top != top:
                assert type(following) is BookTop and following.update_id == ev.last_id
                assert (following.bid_price, following.bid_quantity, following.ask_price,
                        following.ask_quantity) == new_top
                tickers += 1
            else:
                assert type(following) is not BookTop
            top = new_top
    assert tickers > 300


def test_aggregated_depth_coalesces_each_window():
    m, clock = model(('SOL_USDC',))
    m.watch_depth_window('SOL_USDC', 200)
    m.watch_depth_window('SOL_USDC', 1000)
    start = m.sequence('SOL_USDC')
    events = run(m, clock, 5000, dt_us=700)
    agg = {w: [e for e in events if type(e) is DepthUpdate and e.window_ms == w] for w in (200, 1000)}
    realtime = [e for e in events if type(e) is DepthUpdate and e.window_ms == 0]
    assert len(agg[200]) >= 15 and len(agg[1000]) >= 3
    for frames in agg.values():
        assert frames[0].first_id == start + 1
        for a, b in zip(frames, frames[1:]):
            assert b.first_id == a.last_id + 1 and b.first_id <= b.last_id
        for f in frames:
            for levels in (f.bids, f.asks):
                prices = [p for p, _ in levels]
                assert prices == sorted(set(prices)), 'one entry per price, ascending'
            final = {}
            for r in realtime:
                if f.first_id <= r.first_id <= f.last_id:
                    for p, q in r.bids:
                        final[('b', p)] = q
                    for p, q in r.asks:
                        final[('a', p)] = q
            assert final == {**{('b', p): q for p, q in f.bids}, **{('a', p): q for p, q in f.asks}}
    windows = {e.engine_us // 200_000 for e in agg[200]}
    assert len(windows) == len(agg[200]), 'one frame per 200 ms window'


def test_skip_sequence_burns_ids_and_book_at_rewinds():
    m, clock = model(('SOL_USDC',), undo_limit=500)
    run(m, clock, 200)
    middle = m.sequence('SOL_USDC')
    middle_book = m.book_snapshot('SOL_USDC')
    run(m, clock, 50)
    assert m.book_at('SOL_USDC', middle) == middle_book._replace(engine_us=m.engine_us('SOL_USDC'))
    before = m.sequence('SOL_USDC')
    assert m.skip_sequence('SOL_USDC', 5) == before + 5
    first = next(e for e in run(m, clock, 5) if type(e) is DepthUpdate)
    assert first.first_id == before + 6
    with pytest.raises(ValueError):
        m.skip_sequence('SOL_USDC', 0)
    with pytest.raises(ValueError):
        m.book_at('SOL_USDC', m.sequence('SOL_USDC') + 1)
    run(m, clock, 1000)
    with pytest.raises(ValueError):
        m.book_at('SOL_USDC', middle)


# ------------------------------------------------------------------------------------ taker orders

def test_execute_taker_walks_the_book_like_organic_flow():
    m, clock = model(('SOL_USDC',), seed=3)
    replay = Replay(m, 'SOL_USDC')
    asks = m.book_snapshot('SOL_USDC').asks
    want = asks[0][1] + asks[1][1] + asks[2][1] / 2
    fills = m.execute_taker('SOL_USDC', 'Bid', want, None)
    assert [f.price for f in fills] == [asks[0][0], asks[1][0], asks[2][0]]
    assert sum(f.quantity for f in fills) == want
    ids = [f.trade_id for f in fills]
    assert ids == list(range(ids[0], ids[0] + 3))
    events = m.drain()
    prints = [e for e in events if type(e) is TradePrint]
    assert [p.trade_id for p in prints] == ids and all(p.origin == 'account' and not p.buyer_is_maker for p in prints)
    for ev in events:
        if type(ev) is DepthUpdate:
            replay.apply(ev)
    assert m.best_ask('SOL_USDC') == asks[2][0] and replay.asks[asks[2][0]] == asks[2][1] - asks[2][1] / 2
    assert [r.trade_id for r in m.trades('SOL_USDC')][-3:] == ids


def test_execute_taker_limit_price_and_quote_quantity():
    m, _ = model(('SOL_USDC',), seed=5)
    bids = m.book_snapshot('SOL_USDC').bids
    fills = m.execute_taker('SOL_USDC', 'Ask', Decimal('1000000'), bids[1][0])
    assert [f.price for f in fills] == [bids[0][0], bids[1][0]], 'stops at the limit'
    assert m.best_bid('SOL_USDC') == bids[2][0]
    ask = m.best_ask('SOL_USDC')
    budget = Decimal('150.00')
    fills = m.execute_taker('SOL_USDC', 'Bid', None, None, quote_quantity=budget)
    spent = sum(f.price * f.quantity for f in fills)
    assert fills[0].price == ask and spent <= budget
    assert budget - spent < fills[-1].price * m.step_size('SOL_USDC') * 2
    with pytest.raises(ValueError):
        m.execute_taker('SOL_USDC', 'Buy', Decimal(1), None)
    with pytest.raises(ValueError):
        m.execute_taker('SOL_USDC', 'Bid', None, None)
    with pytest.raises(KeyError):
        m.execute_taker('NOPE', 'Bid', Decimal(1), None)


def test_lookups_for_the_account_side():
    m, _ = model(('SOL_USDC', 'ETH_USDC_PERP'))
    assert m.is_perp('ETH_USDC_PERP') and not m.is_perp('SOL_USDC')
    assert m.tick_size('ETH_USDC_PERP') == Decimal('0.01') and m.step_size('ETH_USDC_PERP') == Decimal('0.0001')
    assert m.best_bid('SOL_USDC') < m.best_ask('SOL_USDC')
    assert m.best_bid('SOL_USDC') <= m.mark_price('SOL_USDC') <= m.best_ask('SOL_USDC')
    assert m.mark_price('ETH_USDC_PERP') == Decimal('3510.12')
    assert m.market('ETH_USDC_PERP')['fundingInterval'] == 3600000
    assert m.has_symbol('SOL_USDC') and not m.has_symbol('BTC_USDC')
    with pytest.raises(ValueError):
        MarketModel(['NOPE_USDC'], clock=Clock())


# ------------------------------------------------------------------------------------ periodic streams

def test_ticker_every_second_with_rolling_24h_statistics():
    m, clock = model(('SOL_USDC',))
    events = run(m, clock, 3000)
    tickers = [e for e in events if type(e) is TickerUpdate]
    assert len(tickers) == 3
    assert [t.engine_us for t in tickers] == [T0 + k * 1_000_000 for k in (1, 2, 3)], 'on second boundaries'
    log = m.trades('SOL_USDC')
    stats = m.ticker_stats('SOL_USDC')
    assert stats.trades == len(log) and stats.volume == sum(r.quantity for r in log)
    assert stats.first_price == log[0].price and stats.last_price == log[-1].price
    assert stats.high == max(r.price for r in log) and stats.low == min(r.price for r in log)
    assert stats.quote_volume == sum(r.price * r.quantity for r in log)
    rest = json.loads(wire.encode_json(wire.ticker_rest('SOL_USDC', stats)))
    assert rest['trades'] == str(len(log))
    clock.now += DAY_US
    quiet = m.ticker_stats('SOL_USDC')
    assert (quiet.trades, quiet.volume) == (0, 0) and quiet.last_price == log[-1].price
    assert m.ticker_stats('SOL_USDC', 7 * DAY_US).trades == len(log)


def test_kline_stream_updates_and_closes():
    m, clock = model(('SOL_USDC',))
    m.watch_kline('SOL_USDC', '1s')
    events = run(m, clock, 3500)
    klines = [e for e in events if type(e) is KlineUpdate]
    closed = [k for k in klines if k.closed]
    assert len(closed) >= 2
    log = m.trades('SOL_USDC')
    for k in closed:
        inside = [r for r in log if k.row.start_s * 1_000_000 <= r.ts_us < k.row.end_s * 1_000_000]
        assert k.row.end_s - k.row.start_s == 1 and k.row.trades == len(inside)
        if not inside:
            assert (k.row.open, k.row.high, k.row.low, k.row.close) == (None, None, None, None)
            continue
        assert (k.row.open, k.row.close) == (inside[0].price, inside[-1].price)
        assert k.row.high == max(r.price for r in inside) and k.row.low == min(r.price for r in inside)
        assert k.row.volume == sum(r.quantity for r in inside)
    rows = m.kline_rows('SOL_USDC', '1s', T0 // 1_000_000 - 10, clock.now // 1_000_000 + 1)
    by_start = {r.start_s: r for r in rows}
    for k in closed:
        assert by_start[k.row.start_s] == k.row
    open_frames = [k for k in klines if not k.closed]
    assert all(b.engine_us - a.engine_us >= 1_000_000 for a, b in zip(open_frames, open_frames[1:])
               if a.row.start_s == b.row.start_s), 'at most one update per second per candle'
    data = wire.event_data(closed[0], clock.now)
    assert data['X'] is True and data['t'] < data['T']


def test_quiet_intervals_close_with_null_prices_and_volume():
    m, clock = model(('SOL_USDC',))
    m.watch_kline('SOL_USDC', '1s')
    start = clock.now // 1_000_000
    for _ in range(5):  # five seconds without a single trade
        clock.now += 1_000_000
        m.advance()
    closed = [e for e in m.drain() if type(e) is KlineUpdate]
    assert [k.row.start_s for k in closed] == [start + i for i in range(5)]  # one close per interval
    assert all(k.closed and k.row.trades == 0 for k in closed)
    data = wire.event_data(closed[-1], clock.now)
    assert (data['o'], data['h'], data['l'], data['c'], data['v'], data['n'], data['X']) == \
        (None, None, None, None, None, 0, True)
    assert json.loads(wire.encode_event(wire.stream_of(closed[-1]), closed[-1], clock.now))['data'] == data
    clock.now += DAY_US  # a clock leap does not flood: the quiet closes are capped, then the candle resumes
    m.advance()
    leap = [e for e in m.drain() if type(e) is KlineUpdate]
    assert 1 <= len(leap) <= 60
    clock.now += 1_000_000
    m.advance()
    assert [e.row.start_s for e in m.drain() if type(e) is KlineUpdate] == [clock.now // 1_000_000 - 1]


def test_kline_buckets():
    monday = calendar.timegm((2026, 8, 31, 0, 0, 0))
    assert kline_bucket('1w', monday + 3 * 86400 + 5) == (monday, monday + 7 * 86400)
    sep = calendar.timegm((2026, 9, 1, 0, 0, 0))
    assert kline_bucket('1month', sep + 12345) == (sep, calendar.timegm((2026, 10, 1, 0, 0, 0)))
    dec = calendar.timegm((2026, 12, 31, 23, 0, 0))
    assert kline_bucket('1month', dec)[1] == calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert kline_bucket('4h', sep + 5 * 3600 + 1) == (sep + 4 * 3600, sep + 8 * 3600)
    with pytest.raises(ValueError):
        kline_bucket('7m', sep)


def test_mark_price_funding_and_open_interest_for_perps_only():
    m, clock = model(('SOL_USDC', 'SOL_USDC_PERP'), open_interest_interval_us=2_000_000)
    events = run(m, clock, 5000)
    marks = [e for e in events if type(e) is MarkPriceUpdate]
    assert len(marks) == 5 and {e.symbol for e in marks} == {'SOL_USDC_PERP'}
    for mark in marks:
        assert mark.next_funding_ms % 3_600_000 == 0 and 0 < mark.next_funding_ms - mark.engine_us // 1000 <= 3_600_000
        assert abs(mark.funding_rate) <= Decimal('0.01')
        assert abs(mark.index_price - mark.mark_price) / mark.mark_price < Decimal('0.01')
    oi = [e for e in events if type(e) is OpenInterestUpdate]
    assert len(oi) == 3 and {e.symbol for e in oi} == {'SOL_USDC_PERP'}
    assert m.open_interest('SOL_USDC_PERP') != Decimal('206529.68'), 'moves with trades'
    assert m.open_interest('SOL_USDC') == 0
    history = m.funding_history('SOL_USDC_PERP')
    assert len(history) == 48 and history[0][0] > history[-1][0]
    boundary = marks[-1].next_funding_ms
    clock.now = boundary * 1000 + 10
    m.advance()
    newest = m.funding_history('SOL_USDC_PERP')[0]
    assert newest[0] == boundary and m.next_funding_ms('SOL_USDC_PERP') == boundary + 3_600_000
    assert m.funding_history('SOL_USDC') == []


def test_liquidations_happen_on_perps_and_match_their_trades():
    m, clock = model(('SOL_USDC', 'SOL_USDC_PERP'), liquidation_probability=0.5)
    events = run(m, clock, 3000)
    liquidations = [e for e in events if type(e) is LiquidationEvent]
    assert liquidations and {e.symbol for e in liquidations} == {'SOL_USDC_PERP'}
    for i, ev in enumerate(events):
        if type(ev) is LiquidationEvent:
            prints = []
            for prior in reversed(events[:i]):
                if type(prior) is TradePrint:
                    if prior.origin != 'liquidation' or prior.engine_us != ev.engine_us:
                        break
                    prints.append(prior)
            assert sum(p.quantity for p in prints) == ev.quantity and prints[0].price == ev.price
            assert ev.side == ('Ask' if prints[0].buyer_is_maker else 'Bid')


# ------------------------------------------------------------------------------------ markets and wire

def test_market_objects_have_every_reference_field():
    reference = load_fixture('sim_rest_responses.json')['market_perp']
    objects = sim_markets.market_objects()
    symbols = [o['symbol'] for o in objects]
    assert symbols == list(sim_markets.DEFAULT_SYMBOLS)
    for needed in ('SOL_USDC', 'BTC_USDC', 'ETH_USDC', 'USDT_USDC', 'SOL_USDC_PERP', 'BTC_USDC_PERP',
                   'ETH_USDC_PERP', 'kPEPE_USDC_PERP', 'SPCX.US_USDC'):
        assert needed in symbols
    for obj in objects:
        assert set(obj) == set(reference) and set(obj['filters']) == {'price', 'quantity'}
        assert set(obj['filters']['price']) == set(reference['filters']['price'])
        assert set(obj['filters']['quantity']) == set(reference['filters']['quantity'])
        perp = obj['marketType'] == 'PERP'
        assert obj['symbol'].endswith('_PERP') == perp
        assert (obj['fundingInterval'] == 3600000) if perp else obj['fundingInterval'] is None
        assert (obj['imfFunction'] is not None) == perp
        tick = Decimal(obj['filters']['price']['tickSize'])
        assert sim_markets.sim_params(obj['symbol']).start_price % tick == 0
        assert obj['symbol'] == f"{obj['baseSymbol']}_{obj['quoteSymbol']}" + ('_PERP' if perp else '')
    objects[0]['symbol'] = 'CHANGED'
    assert sim_markets.market_objects()[0]['symbol'] == 'SOL_USDC', 'fresh copies'
    assert sim_markets.market_object('SPCX.US_USDC')['rwaMarketType'] == 'STOCK'
    assert [r['asset'] for r in sim_markets.security_objects(symbols)] == ['SPCX.US']
    assets = [a['symbol'] for a in sim_markets.asset_objects(symbols)]
    assert {'SOL', 'USDC', 'kPEPE', 'SPCX.US'} <= set(assets) and len(assets) == len(set(assets))
    with pytest.raises(ValueError):
        sim_markets.market_objects(['NOPE_USDC'])


@pytest.mark.parametrize('size', [0, 125, 126, 65535, 65536])
def test_ws_text_frame_length_encodings(size):
    payload = b'x' * size
    frame = wire.ws_text_frame(payload)
    assert frame[0] == 0x81 and frame.endswith(payload)
    if size < 126:
        assert frame[1] == size and len(frame) == size + 2
    elif size < 65536:
        assert frame[1] == 126 and int.from_bytes(frame[2:4], 'big') == size
    else:
        assert frame[1] == 127 and int.from_bytes(frame[2:10], 'big') == size


def test_decimal_rendering_never_uses_exponents():
    assert wire.dstr(Decimal('0E-7')) == '0.0000000'
    assert wire.dstr(Decimal('1E-7')) == '0.0000001'
    assert wire.dstr(Decimal('100.70')) == '100.70'
    assert wire.dstr(Decimal('6.5E+4')) == '65000'


def test_fast_event_encoding_equals_the_generic_envelope():
    m, clock = model(('SOL_USDC', 'SOL_USDC_PERP'), liquidation_probability=0.5)
    m.watch_depth_window('SOL_USDC', 600)
    m.watch_kline('SOL_USDC_PERP', '1s')
    events = run(m, clock, 3000)
    kinds = set()
    for ev in events:
        name = wire.stream_of(ev)
        fast = wire.encode_event(name, ev, clock.now)
        assert fast == wire.encode_envelope(name, wire.event_data(ev, clock.now))
        assert list(json.loads(fast)['data']) == sorted(json.loads(fast)['data'], key=lambda k: (k.islower(), k))
        kinds.add(type(ev).__name__)
    assert kinds == {'DepthUpdate', 'TradePrint', 'BookTop', 'TickerUpdate', 'KlineUpdate', 'MarkPriceUpdate',
                     'LiquidationEvent'}
