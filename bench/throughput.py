"""Throughput of ``BackpackFeed.message_handler`` as ratios to orjson + Decimal (DESIGN.md section 7).

Run: ``.venv-3.11/bin/python bench/throughput.py [--frames 100000] [--rounds 7] [--chunk 2000] [--profile]``.
Not a test; no network (the feed is built with unreachable 127.0.0.1:1 URLs and never started).

Frames. The simulator's ``MarketModel`` (seeded, fake clock) runs on four markets (SOL_USDC,
BTC_USDC, SOL_USDC_PERP, ETH_USDC; 20-60 levels a side) and its events are rendered by ``simulator/wire.py`` exactly as the server
sends them, then turned into ``str`` (cryptofeed hands text frames to ``message_handler`` as
``str``). Four frame sets:

* ``trade``: the first N ``trade.<S>`` frames, sequential ids per symbol, interleaved markets.
* ``depth 1-3 lvl``: the model's level changes, grouped per symbol into realtime frames of 1-3
  levels (50/30/20 %), renumbered so that ``U == u`` and ids stay gap-free, absolute quantities,
  zero deletes included. Regrouping keeps the book exact: the quantities are absolute.
* ``depth 1 lvl``: the first N ``depth.<S>`` frames verbatim (the model emits one level per id).
* ``depth busy``: busy books (``busy_books``), generated here, not by the market model: about 200
  levels a side, 1-10 changed levels per frame (about 5.4 on average), offsets from the touch
  exponential with mean 30 ticks, 20 % of the changes deleting an existing level, ``U..u``
  spanning 1-3 ids. Target 0.45 (DESIGN.md section 7); the other depth sets keep 0.40.

Before each timed pass the book state is rebuilt outside the clock: every ``BookSync`` is reset and
loaded with the model's book at the start of the stream (``apply_snapshot``), every
``TradeSequencer`` reset. The first depth frame of a symbol then emits the full book, every later
one a delta with ``sequence_number = u``. Callbacks are no-op ``async def``s registered for
``TRADES`` / ``L2_BOOK``.

Candidates, all on the same frames, in the same process, timed in interleaved rounds:

* ``baseline``: ``orjson.loads(frame)`` + ``Decimal`` of every price/size string (= 1.00).
* ``feed``: ``await feed.message_handler(frame, None, ts)`` (router decode, adapters, sequencer /
  BookSync, the callbacks), as cryptofeed's connection handler calls it. Also ``max_depth=10``.
* ``ceiling``: orjson + Decimal + building the cryptofeed ``Trade`` / ``BookSync.on_depth`` on a
  synced book, no feed around it (the "ceiling" column of DESIGN section 7).
* ``ccxt.pro``: ``orjson.loads`` (what ccxt's ``Client`` does with a text frame) +
  ``ccxt.pro.backpack().handle_message(client, msg)`` with a stand-in client (``resolve`` /
  ``reject``), markets loaded from the simulator's market objects through patched REST methods,
  and ``orderbooks[symbol]`` set from the same snapshot with its ``nonce``, so every delta is
  applied as it is live.

Timing: the frame set is cut into chunks (``--chunk``, 2000 frames); in every round each chunk is
run by every candidate in turn (order rotated per chunk), so a noisy neighbour on the machine hits
all candidates alike. A candidate's time is the sum over chunks of its best time for that chunk
over ``--rounds`` rounds (round 0 is a warm-up); ratio = baseline time / candidate time. Next to
it: the median and the interquartile range (p25..p75) over slots of the per-slot ratio, a slot
being one chunk in one timed round, where every candidate ran back to back. The target is
judged on that median.

Before timing, one untimed pass per frame set with recording callbacks checks what the timed no-op
callbacks receive: one ``Trade`` per frame; for depth a full book first, then one delta per frame
with an increasing ``sequence_number``. After every timed pass of a stateful candidate its end
state is checked (trade ids gap-free, books == truth, ccxt's books == truth); a failed check is
reported under the table, never raised. A stage ladder (msgspec decode only, + router, + adapter /
sequencer / ``BookSync``) gives per-frame microseconds for where the time goes; with
``--profile`` (or when a target is missed) cProfile's top functions of the feed path follow.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import pstats
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ccxt  # noqa: E402
import ccxt.pro  # noqa: E402
import msgspec  # noqa: E402
from cryptofeed.defines import ASK, BID, BUY, L2_BOOK, SELL, TRADES  # noqa: E402
from cryptofeed.types import Trade  # noqa: E402

from cryptofeed.exchanges.backpack import BackpackFeed  # noqa: E402
from cryptofeed.exchanges.backpack.core.wire import messages, parse as adapters  # noqa: E402
from cryptofeed.exchanges.backpack.core.sync.book import BookSync  # noqa: E402
from cryptofeed.exchanges.backpack.core.wire.router import Router  # noqa: E402
from cryptofeed.exchanges.backpack.simulator import markets as sim_markets  # noqa: E402
from cryptofeed.exchanges.backpack.simulator import wire  # noqa: E402
from cryptofeed.exchanges.backpack.simulator.market import DepthUpdate, MarketModel, TradePrint  # noqa: E402
from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized  # noqa: E402
from cryptofeed.exchanges.backpack.core.sync.trades import TradeSequencer  # noqa: E402

MARKETS = ['SOL_USDC', 'BTC_USDC', 'SOL_USDC_PERP', 'ETH_USDC']
TARGETS = {'trade': 0.60, 'depth': 0.40, 'depth busy': 0.45}
PROBLEMS: Dict[str, str] = {}  # where -> first failed correctness check (reported, not raised)
OFFLINE = {'rest_url': 'http://127.0.0.1:1', 'ws_url': 'ws://127.0.0.1:1'}
D = Decimal


# ------------------------------------------------------------------------------ frames

class Stream:
    """One frame set plus what is needed to rebuild the state it starts from and to check it."""

    def __init__(self, name: str, kind: str, frames: List[str], snapshots: Dict[str, Tuple[int, list, list]],
                 final_books: Dict[str, Tuple[dict, dict]]):
        self.name = name
        self.kind = kind  # 'trade' or 'depth'
        self.frames = frames
        self.snapshots = snapshots      # exchange symbol -> (last id, bids, asks) at the stream start
        self.final_books = final_books  # exchange symbol -> (bids, asks) after the last frame
        self.last_trade_ids: Dict[str, int] = {}
        self.target = TARGETS[name] if name in TARGETS else TARGETS[kind]
        self.levels = 0.0  # mean levels per frame (busy books only)
        self.depths: Dict[str, Tuple[int, int]] = {}  # levels per side at the end (busy books only)


def build_streams(n: int, seed: int) -> List[Stream]:
    clock = itertools.count(1_788_367_430_000_000, 173)
    model = MarketModel(MARKETS, seed=seed, clock=lambda: next(clock))
    model.drain()
    snapshots = {}
    for symbol in MARKETS:
        snap = model.book_snapshot(symbol)
        snapshots[symbol] = (snap.sequence, list(snap.bids), list(snap.asks))
    trades: List[TradePrint] = []
    depth: List[DepthUpdate] = []
    while len(trades) < n or len(depth) < 2 * n:
        model.run_updates(5000)
        for event in model.drain():
            kind = type(event)
            if kind is TradePrint:
                trades.append(event)
            elif kind is DepthUpdate and not event.window_ms:
                depth.append(event)

    def render(event) -> str:
        return wire.encode_event(wire.stream_of(event), event, event.engine_us + 300).decode()

    def truth(updates) -> Dict[str, Tuple[dict, dict]]:
        books = {s: (dict(b), dict(a)) for s, (_, b, a) in snapshots.items()}
        for up in updates:
            bids, asks = books[up.symbol]
            for side, levels in ((bids, up.bids), (asks, up.asks)):
                for price, qty in levels:
                    if qty:
                        side[price] = qty
                    else:
                        side.pop(price, None)
        return books

    streams = [Stream('trade', 'trade', [render(e) for e in trades[:n]], snapshots, {})]
    for event in trades[:n]:
        streams[0].last_trade_ids[event.symbol] = event.trade_id

    # 1-3 levels per frame: group each symbol's consecutive level changes, renumber the ids.
    rng = random.Random(seed + 1)
    open_groups: Dict[str, list] = {}
    next_id = {s: snapshots[s][0] + 1 for s in MARKETS}
    grouped: List[DepthUpdate] = []
    used: List[DepthUpdate] = []
    for up in depth:
        if len(grouped) >= n:
            break
        group = open_groups.setdefault(up.symbol, [rng.choices((1, 2, 3), (5, 3, 2))[0]])
        group.append(up)
        used.append(up)
        if len(group) - 1 == group[0]:
            del open_groups[up.symbol]
            bids: Dict[Decimal, Decimal] = {}
            asks: Dict[Decimal, Decimal] = {}
            for part in group[1:]:
                bids.update(part.bids)
                asks.update(part.asks)
            uid = next_id[up.symbol]
            next_id[up.symbol] = uid + 1
            grouped.append(DepthUpdate(up.symbol, uid, uid, tuple(sorted(bids.items())),
                                       tuple(sorted(asks.items())), up.engine_us, 0))
    for group in open_groups.values():  # changes of unfinished groups are not in the frames
        for part in group[1:]:
            used.remove(part)
    streams.append(Stream('depth 1-3 lvl', 'depth', [render(e) for e in grouped], snapshots, truth(used)))
    streams.append(Stream('depth 1 lvl', 'depth', [render(e) for e in depth[:n]], snapshots, truth(depth[:n])))
    streams.append(busy_books(n, seed, render))
    return streams


# (tick, quantity step, start price, typical level size) of the busy-book markets
BUSY_MARKETS = {
    'SOL_USDC': (D('0.01'), D('0.01'), D('100.65'), 40),
    'BTC_USDC': (D('0.1'), D('0.00001'), D('65012.3'), 0.3),
    'SOL_USDC_PERP': (D('0.01'), D('0.01'), D('100.61'), 80),
    'ETH_USDC': (D('0.01'), D('0.0001'), D('3512.47'), 5),
}
BUSY_LEVELS = 240           # levels per side at the start (the churn settles at about 200)
BUSY_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
BUSY_WEIGHTS = (9, 10, 10, 10, 10, 10, 10, 10, 10, 11)  # ~5.4 distinct levels per frame (repeats dropped)
BUSY_MEAN_OFFSET = 30       # ticks from the touch, exponential
BUSY_DELETE = 0.20          # share of changes that delete an existing level


def busy_books(n: int, seed: int, render) -> Stream:
    """``depth busy``: busy books, generated here rather than by the market model.

    Each market starts with 240 levels a side one tick apart (the churn thins them to about 200) around its mid (best bid and ask one
    tick apart). A frame changes 1-10 distinct levels (weights above, mean ~5.4), each on a random
    side at an offset from that side's touch drawn from an exponential distribution of mean 30
    ticks (so most changes are near the top); 20 % of the changes delete an existing level (the
    existing level nearest that offset), the others set a new absolute size (a new level when the
    price is empty). A bid is never set at or above the best ask (nor an ask at or below the best
    bid), so the book never crosses. Ids advance by 1-3 per frame (``U = previous u + 1``), as
    realtime frames do under load. Markets are interleaved at random.
    """
    rng = random.Random(seed + 2)
    books: Dict[str, Tuple[dict, dict]] = {}
    snapshots: Dict[str, Tuple[int, list, list]] = {}
    next_id: Dict[str, int] = {}
    for k, (symbol, (tick, step, mid, size)) in enumerate(BUSY_MARKETS.items()):
        bids = {mid - tick * i: _busy_qty(rng, step, size) for i in range(1, BUSY_LEVELS + 1)}
        asks = {mid + tick * (i - 1): _busy_qty(rng, step, size) for i in range(1, BUSY_LEVELS + 1)}
        last = 4_330_360_000 + 1_000_000 * k
        books[symbol] = (bids, asks)
        snapshots[symbol] = (last, sorted(bids.items()), sorted(asks.items()))
        next_id[symbol] = last + 1
    symbols = list(BUSY_MARKETS)
    clock = 1_788_367_430_000_000
    events: List[DepthUpdate] = []
    for _ in range(n):
        symbol = rng.choice(symbols)
        tick, step, _mid, size = BUSY_MARKETS[symbol]
        bids, asks = books[symbol]
        changes: Tuple[dict, dict] = ({}, {})
        for _ in range(rng.choices(BUSY_SIZES, BUSY_WEIGHTS)[0]):
            side = rng.random() < 0.5
            levels, other = (bids, asks) if side else (asks, bids)
            sign = -1 if side else 1
            best = max(levels) if side else min(levels)
            offset = int(rng.expovariate(1 / BUSY_MEAN_OFFSET))
            price = best + sign * tick * offset
            if rng.random() < BUSY_DELETE and len(levels) > 20:
                price = min(levels, key=lambda p: abs(p - price))
                qty = D(0)
            else:
                if rng.random() < 0.1:  # now and then improve the touch, never crossing
                    price = best - sign * tick
                    if (price >= min(other)) if side else (price <= max(other)):
                        price = best
                qty = _busy_qty(rng, step, size)
            if price in changes[0 if side else 1]:
                continue
            changes[0 if side else 1][price] = qty
            if qty:
                levels[price] = qty
            else:
                del levels[price]
        if not changes[0] and not changes[1]:
            continue
        first = next_id[symbol]
        last = first + rng.choices((0, 1, 2), (6, 3, 1))[0]
        next_id[symbol] = last + 1
        clock += 173
        events.append(DepthUpdate(symbol, first, last, tuple(sorted(changes[0].items())),
                                  tuple(sorted(changes[1].items())), clock, 0))
    stream = Stream('depth busy', 'depth', [render(e) for e in events], snapshots,
                    {s: (dict(b), dict(a)) for s, (b, a) in books.items()})
    stream.levels = sum(len(e.bids) + len(e.asks) for e in events) / len(events)
    stream.depths = {s: (len(b), len(a)) for s, (b, a) in books.items()}
    return stream


def _busy_qty(rng: random.Random, step: Decimal, size: float) -> Decimal:
    return max(step, (D(repr(rng.expovariate(1 / size))) / step).to_integral_value() * step)


# ------------------------------------------------------------------------------ candidates

def baseline_trade(frames: List[str]) -> None:
    loads = orjson.loads
    for frame in frames:
        data = loads(frame)['data']
        D(data['p'])
        D(data['q'])


def baseline_depth(frames: List[str]) -> None:
    loads = orjson.loads
    for frame in frames:
        data = loads(frame)['data']
        [(D(p), D(q)) for p, q in data['b']]
        [(D(p), D(q)) for p, q in data['a']]


NORMALIZED = {s: exchange_to_normalized(s) for s in MARKETS}


def ceiling_trade(frames: List[str]) -> None:
    loads = orjson.loads
    sym = NORMALIZED
    for frame in frames:
        data = loads(frame)['data']
        Trade('BACKPACK', sym[data['s']], SELL if data['m'] else BUY, D(data['q']), D(data['p']),
              data['T'] / 1_000_000, str(data['t']), None, None)


class CeilingBooks:
    """orjson + Decimal + ``BookSync.on_depth`` on synced books, no feed."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.books: Dict[str, BookSync] = {}

    def setup(self) -> None:
        self.books = {}
        for symbol, (last, bids, asks) in self.stream.snapshots.items():
            sync = BookSync(NORMALIZED[symbol])
            sync.apply_snapshot(last, bids, asks, None)
            self.books[symbol] = sync

    def run(self, frames: List[str]) -> None:
        loads = orjson.loads
        books = self.books
        for frame in frames:
            data = loads(frame)['data']
            books[data['s']].on_depth(data['U'], data['u'], [(D(p), D(q)) for p, q in data['b']],
                                      [(D(p), D(q)) for p, q in data['a']], data['T'] / 1_000_000)


async def _noop(obj, receipt_ts):
    return None


class FeedPath:
    """A ``BackpackFeed`` driven through ``message_handler``, never started. The timed instances
    get a no-op callback; ``record=True`` builds the instance of the one-off correctness pass."""

    def __init__(self, channel: str, max_depth: int = 0, record: bool = False):
        self.channel = channel
        self.calls = 0
        self.deltas = 0
        self.sequences: Dict[str, int] = {}
        callback = _noop
        if record:
            async def callback(obj, receipt_ts):
                self.calls += 1
                if channel == L2_BOOK:
                    previous = self.sequences.get(obj.symbol)
                    if obj.delta is None:
                        assert previous is None, 'a full book after the first emission'
                    else:
                        assert obj.sequence_number > previous and (obj.delta[BID] or obj.delta[ASK])
                        self.deltas += 1
                    self.sequences[obj.symbol] = obj.sequence_number

        symbols = [NORMALIZED[s] for s in MARKETS]
        self.feed = BackpackFeed(config=dict(OFFLINE), symbols=symbols, channels=[channel],
                                 callbacks={channel: callback}, max_depth=max_depth)

    def setup(self, stream: Stream) -> None:
        self.calls = 0
        self.deltas = 0
        self.sequences.clear()
        for sequencer in self.feed._trade.sequencers.values():
            sequencer.reset()
        for symbol, (last, bids, asks) in stream.snapshots.items():
            sync = self.feed._book.books.get(NORMALIZED[symbol])
            if sync is not None:
                sync.reset()
                sync.apply_snapshot(last, bids, asks, None)

    async def run(self, frames: List[str]) -> None:
        handler = self.feed.message_handler
        ts = time.time()
        for frame in frames:
            await handler(frame, None, ts)

    def check(self, stream: Stream) -> None:
        """After a pass: nothing dropped, every trade sequenced, every book equal to the truth."""
        snap = self.feed.metrics_snapshot()
        assert snap['parse_errors'] == 0 and sum(snap['drops'].values()) == 0, snap['drops']
        if stream.kind == 'trade':
            for symbol, last_id in stream.last_trade_ids.items():
                sequencer = self.feed._trade.sequencers[NORMALIZED[symbol]]
                assert sequencer.last_id == last_id and sequencer.gaps == 0, (symbol, sequencer.last_id, last_id)
            return
        for symbol, (bids, asks) in stream.final_books.items():
            sync = self.feed._book.books[NORMALIZED[symbol]]
            assert sync.synced and sync.gaps == 0 and sync.crossed == 0, sync.counters()
            if self.feed.max_depth == 0:
                book = sync.book.book
                assert book.bids.to_dict() == bids and book.asks.to_dict() == asks, symbol
            else:
                book = sync.book.book
                top_bids = dict(sorted(bids.items(), reverse=True)[:self.feed.max_depth])
                top_asks = dict(sorted(asks.items())[:self.feed.max_depth])
                assert book.bids.to_dict() == top_bids, f'{symbol}: emitted top-{self.feed.max_depth} bids != truth'
                assert book.asks.to_dict() == top_asks, (
                    f'{symbol}: emitted top-{self.feed.max_depth} asks != truth ({len(book.asks)} levels: '
                    f'{[str(p) for p in book.asks.to_dict()]}, want {[str(p) for p in top_asks]})')


async def verify(stream: Stream) -> str:
    """One untimed pass with recording callbacks: what the timed no-op callbacks receive."""
    path = FeedPath(TRADES if stream.kind == 'trade' else L2_BOOK, record=True)
    path.setup(stream)
    await path.run(stream.frames)
    path.check(stream)
    n = len(stream.frames)
    if stream.kind == 'trade':
        assert path.calls == n, (path.calls, n)
        return f'{stream.name}: {path.calls} Trade callbacks for {n} frames, ids gap-free'
    full = len(path.sequences)
    assert path.deltas > 0.9 * n and path.calls == path.deltas + full, (path.calls, path.deltas, n)
    return (f'{stream.name}: {path.calls} L2_BOOK callbacks for {n} frames ({full} full books, {path.deltas} '
            f'deltas with increasing sequence_number), final books == truth')


class FakeClient:
    """What ``handle_message`` touches on a ccxt ``Client``: ``resolve`` and ``reject``."""

    def __init__(self):
        self.futures: Dict[str, Any] = {}
        self.rejections: Dict[str, Any] = {}
        self.resolved = 0

    def resolve(self, result, message_hash):
        self.resolved += 1
        return result

    def reject(self, result, message_hash=None):
        raise AssertionError(f'ccxt rejected a frame: {result!r}')


class CcxtPath:
    def __init__(self):
        self.exchange = ccxt.pro.backpack({'enableRateLimit': False, 'newUpdates': False})
        self.exchange.urls['api'] = {'public': OFFLINE['rest_url'], 'private': OFFLINE['rest_url'],
                                     'ws': {'public': OFFLINE['ws_url'], 'private': OFFLINE['ws_url']}}
        self.client = FakeClient()

    async def load_markets(self) -> None:
        async def markets(params=None):
            return sim_markets.market_objects(MARKETS)

        async def assets(params=None):
            return sim_markets.asset_objects(MARKETS)

        async def securities(params=None):
            return sim_markets.security_objects(MARKETS)

        ex = self.exchange
        ex.publicGetApiV1Markets = markets
        ex.publicGetApiV1Assets = assets
        ex.publicGetApiV1Securities = securities
        await ex.load_markets()
        assert set(ex.markets_by_id) >= set(MARKETS)

    def setup(self, stream: Stream) -> None:
        ex = self.exchange
        ex.trades = {}
        ex.orderbooks = {}
        for symbol, (last, bids, asks) in stream.snapshots.items():
            unified = ex.safe_symbol(symbol)
            ex.orderbooks[unified] = ex.order_book({
                'symbol': unified, 'nonce': last,
                'bids': [[float(p), float(q)] for p, q in bids], 'asks': [[float(p), float(q)] for p, q in asks]})

    def run(self, frames: List[str]) -> None:
        loads = orjson.loads
        handle = self.exchange.handle_message
        client = self.client
        for frame in frames:
            handle(client, loads(frame))

    def check(self, stream: Stream) -> None:
        ex = self.exchange
        if stream.kind == 'trade':
            assert sum(len(c) for c in ex.trades.values()) == min(len(stream.frames), 1000 * len(ex.trades))
            return
        for symbol, (bids, asks) in stream.final_books.items():
            book = ex.orderbooks[ex.safe_symbol(symbol)]
            want_bids = [[float(p), float(q)] for p, q in sorted(bids.items(), reverse=True)]
            want_asks = [[float(p), float(q)] for p, q in sorted(asks.items())]
            assert [list(x) for x in book['bids']] == want_bids, f'ccxt {symbol} bids != truth'
            assert [list(x) for x in book['asks']] == want_asks, f'ccxt {symbol} asks != truth'

    async def close(self) -> None:
        await self.exchange.close()


# ------------------------------------------------------------------------------ stage ladder

def ladder(stream: Stream) -> List[Tuple[str, Callable, Callable]]:
    """Cumulative stages of the feed path without the feed: (label, setup(stream) or None, run)."""
    decode = messages.ENVELOPE_DECODER.decode
    symbols = {s: NORMALIZED[s] for s in MARKETS}

    def stage_decode(frames):
        for frame in frames:
            decode(frame)

    def noop(msg, symbol, interval, ts):
        return None

    def over(route):
        def run(frames):
            for frame in frames:
                route(frame, 1.0)
        return run

    stages = [('msgspec decode (union)', None, stage_decode),
              ('+ Router.route (no-op handler)', None, over(Router({stream.kind: noop}, symbols).route))]
    if stream.kind == 'trade':
        def adapter(msg, symbol, interval, ts):
            return adapters.parse_trade(msg, symbol, ts)
        stages.append(('+ parse_trade (Trade object)', None, over(Router({'trade': adapter}, symbols).route)))
        sequencers: Dict[str, TradeSequencer] = {}

        def sequenced(msg, symbol, interval, ts):
            return sequencers[symbol].on_live(msg.t, adapters.parse_trade(msg, symbol, ts))

        def reset(s):
            sequencers.clear()
            sequencers.update({sym: TradeSequencer() for sym in symbols.values()})
        stages.append(('+ TradeSequencer.on_live', reset, over(Router({'trade': sequenced}, symbols).route)))
    else:
        books: Dict[str, BookSync] = {}

        def apply(msg, symbol, interval, ts):
            return books[symbol].on_depth(msg.U, msg.u, msg.b, msg.a, msg.T / 1_000_000)

        def load(s):
            books.clear()
            for sym, (last, bids, asks) in s.snapshots.items():
                sync = books[symbols[sym]] = BookSync(symbols[sym])
                sync.apply_snapshot(last, bids, asks, None)
        stages.append(('+ BookSync.on_depth (delta)', load, over(Router({'depth': apply}, symbols).route)))
    return stages


# ------------------------------------------------------------------------------ main

async def _profile(feed: FeedPath, stream: Stream, top: int) -> str:
    feed.setup(stream)
    profiler = cProfile.Profile()
    profiler.enable()
    await feed.run(stream.frames)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats('tottime').print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith('ncalls'))
    n = len(stream.frames)
    body = [f'  cProfile, {stream.name}, {n} frames, by own time; us/frame = tottime / frames '
            f'(cProfile inflates Python-level calls)']
    for ln in lines[start:start + top + 1]:
        parts = ln.split(None, 5)
        if parts[0] == 'ncalls':
            body.append(f'  {"us/frame":>9s} {"ncalls":>10s}  function')
            continue
        try:
            tottime = float(parts[1])
        except (ValueError, IndexError):
            continue
        body.append(f'  {tottime / n * 1e6:9.3f} {parts[0]:>10s}  {parts[5].replace(str(ROOT) + "/", "")}')
    return '\n'.join(body)


class Candidate:
    __slots__ = ('name', 'setup', 'run', 'is_async', 'check')

    def __init__(self, name, run, *, setup=None, is_async=False, check=None):
        self.name = name
        self.setup = setup
        self.run = run
        self.is_async = is_async
        self.check = check


async def measure(stream: Stream, cands: List[Candidate], rounds: int, chunk: int):
    """Interleave the candidates chunk by chunk; return {name: (sum of per-chunk best times,
    [per-round total times], [per-slot times])}. A slot is one chunk in one round, where every
    candidate ran back to back. Round 0 warms up and is not recorded."""
    frames = stream.frames
    chunks = [frames[i:i + chunk] for i in range(0, len(frames), chunk)]
    best = {c.name: [float('inf')] * len(chunks) for c in cands}
    totals: Dict[str, List[float]] = {c.name: [] for c in cands}
    slots: Dict[str, List[float]] = {c.name: [] for c in cands}
    clock = time.perf_counter
    for rnd in range(rounds + 1):
        for c in cands:
            if c.setup is not None:
                c.setup(stream)
        total = dict.fromkeys(best, 0.0)
        for k, part in enumerate(chunks):
            shift = (k + rnd) % len(cands)  # rotate the order so no candidate always runs first
            for c in cands[shift:] + cands[:shift]:
                if c.is_async:
                    start = clock()
                    await c.run(part)
                    elapsed = clock() - start
                else:
                    start = clock()
                    c.run(part)
                    elapsed = clock() - start
                total[c.name] += elapsed
                if rnd:
                    slots[c.name].append(elapsed)
                    if elapsed < best[c.name][k]:
                        best[c.name][k] = elapsed
        for c in cands:
            if c.check is not None:
                try:
                    c.check(stream)
                except AssertionError as exc:
                    PROBLEMS.setdefault(f'{stream.name} / {c.name}', f'{type(exc).__name__}: {exc}')
            if rnd:
                totals[c.name].append(total[c.name])
    return {name: (sum(best[name]), totals[name], slots[name]) for name in best}


async def amain(args) -> int:
    t0 = time.perf_counter()
    streams = build_streams(args.frames, args.seed)
    print(f'python {sys.version.split()[0]}, orjson {orjson.__version__}, msgspec {msgspec.__version__}, '
          f'ccxt {ccxt.__version__}; frames per set: {", ".join(f"{s.name}={len(s.frames)}" for s in streams)} '
          f'(generated in {time.perf_counter() - t0:.1f} s); rounds: {args.rounds}, chunk: {args.chunk}')

    trade_feed = FeedPath(TRADES)
    book_feed = FeedPath(L2_BOOK)
    book_feed10 = FeedPath(L2_BOOK, max_depth=10)
    ccxt_path = CcxtPath()
    await ccxt_path.load_markets()
    results = []
    for stream in streams:
        try:
            print('check:', await verify(stream))
        except AssertionError as exc:
            PROBLEMS.setdefault(f'{stream.name} / verify', f'{type(exc).__name__}: {exc}')
    try:
        for stream in streams:
            if stream.kind == 'trade':
                cands = [Candidate('baseline', baseline_trade),
                         Candidate('feed', trade_feed.run, setup=trade_feed.setup, is_async=True,
                                   check=trade_feed.check),
                         Candidate('ceiling', ceiling_trade)]
            else:
                ceiling = CeilingBooks(stream)
                cands = [Candidate('baseline', baseline_depth),
                         Candidate('feed', book_feed.run, setup=book_feed.setup, is_async=True,
                                   check=book_feed.check),
                         Candidate('feed max_depth=10', book_feed10.run, setup=book_feed10.setup, is_async=True,
                                   check=book_feed10.check),
                         Candidate('ceiling', ceiling.run, setup=lambda s, c=ceiling: c.setup())]
            cands.append(Candidate('ccxt.pro', ccxt_path.run, setup=ccxt_path.setup, check=ccxt_path.check))
            for label, setup, run in ladder(stream):
                cands.append(Candidate(f'  {label}', run, setup=setup))
            results.append((stream, cands, await measure(stream, cands, args.rounds, args.chunk)))
    finally:
        await ccxt_path.close()

    missed = []
    header = (f'{"frames":14s} {"path":34s} {"frames/s":>11s} {"us/frame":>9s} {"ratio":>6s} '
              f'{"median":>6s} {"slot p25..p75":>13s} {"target":>12s} {"ccxt.pro ratio":>14s}')
    print()
    print('frames/s and ratio: sum over chunks of each chunk\'s best time (best-of rounds), ratio to the baseline\'s;')
    print('median, slot p25..p75: over slots (one chunk in one round, all candidates back to back) of the')
    print('per-slot ratio baseline time / candidate time')
    print(header)
    print('-' * len(header))
    for stream, cands, res in results:
        n = len(stream.frames)
        base_best, _, base_slots = res['baseline']
        ccxt_ratio = base_best / res['ccxt.pro'][0]
        for c in cands:
            t_best, _, t_slots = res[c.name]
            ratio = base_best / t_best
            per_slot = sorted(b / t for b, t in zip(base_slots, t_slots, strict=True))
            q1, med, q3 = statistics.quantiles(per_slot, n=4) if len(per_slot) > 1 else per_slot * 3
            target = peer = ''
            if c.name == 'feed':
                goal = stream.target
                target = f'>= {goal:.2f} ' + ('ok' if med >= goal else 'MISS')
                peer = f'{ccxt_ratio:.3f}'
                if med < goal:
                    missed.append(stream)
            print(f'{stream.name:14s} {c.name:34s} {n / t_best:11,.0f} {t_best / n * 1e6:9.3f} {ratio:6.3f} '
                  f'{med:6.3f} {q1:6.3f}..{q3:5.3f} {target:>12s} {peer:>14s}')
        if stream.levels:
            print(f'{"":14s} ({stream.levels:.2f} levels per frame; levels per side at the end: '
                  f'{", ".join(f"{s} {b}/{a}" for s, (b, a) in stream.depths.items())})')
        print()
    print('feed = await BackpackFeed.message_handler (max_depth=0 unless stated); ceiling = orjson + Decimal +')
    print('cryptofeed Trade / BookSync.on_depth without the feed; ccxt.pro = orjson.loads + handle_message;')
    print('indented rows = cumulative stages of the feed path without the feed (what the feed glue adds is')
    print('"feed" minus the last indented row). The depth ceiling builds fresh Decimal prices with orjson and so pays')
    print('their hash in the book, which the feed\'s interned prices (levels.py) avoid: it is no upper bound for depth.')

    if PROBLEMS:
        print()
        print('CORRECTNESS CHECKS FAILED (the numbers of these rows are not trustworthy):')
        for where, what in PROBLEMS.items():
            print(f'  {where}: {what}')
    if args.profile or missed:
        print()
        for stream in (missed or streams):
            feed = trade_feed if stream.kind == 'trade' else book_feed
            print(await _profile(feed, stream, args.top))
            print()
    return 0


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100_000, help='frames per frame set (default 100000)')
    parser.add_argument('--rounds', type=int, default=7, help='interleaved timed rounds (default 7)')
    parser.add_argument('--chunk', type=int, default=2000, help='frames per interleaved timing unit (default 2000)')
    parser.add_argument('--seed', type=int, default=3)
    parser.add_argument('--profile', action='store_true', help='print cProfile top functions of the feed path')
    parser.add_argument('--top', type=int, default=16, help='functions shown by the profile')
    args = parser.parse_args(argv)
    return asyncio.run(amain(args))


if __name__ == '__main__':
    raise SystemExit(main())
