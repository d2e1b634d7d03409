"""The trade and depth paths on every cryptofeed line, against cryptofeed 3.0.1's own Binance feed.

Use it to see whether the feed is as fast on cryptofeed 3.0 as on 2.x, and how it compares with
the Binance feed cryptofeed itself ships, on frames of the same content. Not a test: it prints
ratios against references measured in the same run, and never fails on a number.

Run, one line (the interpreter's)::

    .venv-3.13/bin/python bench/lines.py [--frames 50000] [--rounds 9] [--chunk 2000] [--profile]

every line, one table::

    python3 bench/lines.py --all [--python PATH ...] [--rounds 15] [--profile] [--json PATH]

No network: our feed is built with unreachable 127.0.0.1:1 URLs and never started; Binance's
symbols come from a static ``exchangeInfo``-shaped payload and its books from its own snapshot
parser on a static payload.

**Which package.** The bench measures the package of the checkout it sits in, whatever the
interpreter has installed (an editable install of another worktree, or none): before the package
is imported, this tree's ``cryptofeed/exchanges`` is put first on ``cryptofeed.exchanges.__path__``.
The JSON and the header name the file that was imported.

**Frames.** The simulator's ``MarketModel`` (seeded, fake clock) on four markets (SOL_USDC,
BTC_USDC, SOL_USDC_PERP, ETH_USDC), rendered by ``simulator/wire.py`` as the server sends them,
as ``str`` (what cryptofeed hands to ``message_handler``):

* ``trade``: the first N ``trade.<S>`` frames, markets interleaved, ids gap-free per symbol;
* ``depth``: the model's realtime level changes grouped per symbol into frames of 1-3 levels
  (50/30/20 %), renumbered so that ``U == u`` and ids are gap-free; absolute quantities, zero
  deletes included; the books start from the model's book (a REST ``/api/v1/depth`` payload).

Binance's frames are made from ours, one for one, in the same order, with the same strings:
each ``trade.<S>`` frame becomes the combined-stream frame that ``Binance.message_handler``
parses for TRADES, ``{"stream": "<s>@aggTrade", "data": {"e": "aggTrade", ...}}`` (cryptofeed's
Binance subscribes TRADES to ``aggTrade`` and ignores ``trade`` events): price ``p``, quantity
``q``, buyer-is-maker ``m``, id ``a`` (= ``f`` = ``l``), time ``T`` in ms. Each ``depth.<S>`` frame
becomes ``{"stream": "<s>@depth@100ms", "data": {"e": "depthUpdate", "E": ms, "s", "U", "u",
"b", "a"}}``. Binance symbols: SOLUSDC, BTCUSDC, ETHUSDC and SOLUSDC_PERP (a stand-in name,
listed with ``contractType: PERPETUAL`` so that it normalizes to SOL-USDC-PERP like ours).

**State, outside the clock**, before every pass: our feed's ``TradeSequencer``s are reset and its
``BookSync``s reset and loaded with ``parse_depth_snapshot`` of the REST payload (the first depth
frame of a symbol then emits the full book, every later one a delta); Binance's
``_l2_book[symbol]`` and ``last_update_id[symbol]`` are set from ``Binance._parse_snapshot`` of
the same book as a Binance ``/api/v3/depth`` payload, as its ``_snapshot`` does after the HTTP
read. Callbacks are no-op ``async def``s on both feeds.

**Candidates**, same process, same frames:

* ``baseline``: ``orjson.loads`` + ``Decimal`` of every price and size string, on our frames (= 1.00);
* ``ours``: ``await feed.message_handler(frame, None, ts)`` of ``BackpackFeed``;
* ``binance`` (cryptofeed 3.x only): ``await Binance.message_handler(frame, None, ts)`` on the
  Binance frames; ``baseline (binance frames)`` is the baseline on them, to show what the frame
  spelling alone changes.

**Timing.** The frames are cut into chunks (``--chunk``); in each round every chunk is run by
every candidate back to back, the order rotated per chunk and round, so a noisy neighbour hits all
alike. Round 0 warms up and is dropped. A candidate's time for a round is the sum over chunks; its
frames/s is N over the median round time; its ratio to a reference is the median over rounds of
reference time / its time (p25..p75 shown), so > 1 means faster than the reference.

**Checks.** Before timing, one pass with recording callbacks: both feeds emit one Trade per
frame, and the two Trade sequences agree on symbol, side, amount, price, id and time (to the ms);
for depth, one L2_BOOK callback per frame on both, and both final books equal the truth. After
every timed pass the end state is checked again (trade ids gap-free, books == truth). A failed
check is reported, never raised.

**Driver** (``--all``): starts this file under each interpreter (defaults: the lines' virtual
environments ``.venv-3.11``, ``.venv-3.12``, ``.venv-3.13`` that ``make test-lines`` builds, when present;
``--python`` (repeatable) or ``CRYPTOFEED_BACKPACK_BENCH_PYTHONS`` (``:``-separated) replace
them) as a child process that builds and checks its frames, then runs one round when told to
(``--serve``, a line protocol on stdin/stdout). The rounds are interleaved across the lines: round
r of every line runs, one process at a time, before round r + 1 of any, the order of the lines
rotated per round; so the lines share the machine's moments alike, and a cross-line ratio is taken
per round (line A's time in round r / line B's in round r), median and p25..p75 over rounds. It
prints one table: line x path x candidate, frames/s, ratio to the line's own baseline, ratio to
Binance-3.0.1 (on the 3.0.1 line in the same process; on the others, marked ``~``, against
Binance's time in the same round of the 3.0.1 process); the cumulative stages per line; and the
verdicts (ours on 3.0 against ours on each 2.x line, and against Binance). When our feed on 3.0 is
slower than on a 2.x line (by more than the 2 % noise band, or at all: see the verdict words) or
not ahead of Binance, or with ``--profile``, each line then profiles one pass (cProfile, by own
time, per frame) and the 3.0 profile is printed with the same functions' times on the 2.x lines.
``--json PATH`` writes everything, round times included.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import json
import os
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ['main']

ROOT = Path(__file__).resolve().parent.parent
D = Decimal
MARKETS = ['SOL_USDC', 'BTC_USDC', 'SOL_USDC_PERP', 'ETH_USDC']
BINANCE_SYMBOLS = {'SOL_USDC': ('SOLUSDC', 'SOL', 'USDC', None), 'BTC_USDC': ('BTCUSDC', 'BTC', 'USDC', None),
                   'SOL_USDC_PERP': ('SOLUSDC_PERP', 'SOL', 'USDC', 'PERPETUAL'),
                   'ETH_USDC': ('ETHUSDC', 'ETH', 'USDC', None)}
OFFLINE = {'rest_url': 'http://127.0.0.1:1', 'ws_url': 'ws://127.0.0.1:1'}
DEFAULT_PYTHONS = [str(ROOT / f'.venv-3.{minor}' / 'bin' / 'python') for minor in (11, 12, 13)]
PYTHONS_ENV = 'CRYPTOFEED_BACKPACK_BENCH_PYTHONS'
NOISE = 0.02  # below 1 - NOISE a same-machine ratio is called slower; between, "within noise"


# ------------------------------------------------------------------------------ one line

def _use_this_tree() -> None:
    """Import the package from this checkout, not from whatever the interpreter has installed."""
    import cryptofeed.exchanges as exchanges
    here = str(ROOT / 'cryptofeed' / 'exchanges')
    if 'cryptofeed.exchanges.backpack' in sys.modules:
        raise RuntimeError('cryptofeed.exchanges.backpack was imported before bench/lines.py could choose its tree')
    if here not in exchanges.__path__:
        exchanges.__path__.insert(0, here)


class Frames:
    """Both frame sets, Binance's renderings of them and what to rebuild and check the state with."""

    def __init__(self, n: int, seed: int):
        from cryptofeed.exchanges.backpack.simulator import wire
        from cryptofeed.exchanges.backpack.simulator.market import DepthUpdate, MarketModel, TradePrint

        clock = itertools.count(1_788_367_430_000_000, 173)
        model = MarketModel(MARKETS, seed=seed, clock=lambda: next(clock))
        model.drain()
        self.rest_books = {s: wire.depth_rest(model.book_snapshot(s)) for s in MARKETS}  # /api/v1/depth payloads
        trades: List[Any] = []
        changes: List[Any] = []
        while len(trades) < n or len(changes) < 2 * n:
            model.run_updates(5000)
            for event in model.drain():
                if type(event) is TradePrint:
                    trades.append(event)
                elif type(event) is DepthUpdate and not event.window_ms:
                    changes.append(event)
        trades = trades[:n]

        # 1-3 level changes of one symbol per frame, renumbered U == u, gap-free.
        rng = random.Random(seed + 1)
        next_id = {s: int(self.rest_books[s]['lastUpdateId']) + 1 for s in MARKETS}
        pending: Dict[str, Tuple[int, list]] = {}
        grouped: List[Any] = []
        for change in changes:
            if len(grouped) >= n:
                break
            size, parts = pending.setdefault(change.symbol, (rng.choices((1, 2, 3), (5, 3, 2))[0], []))
            parts.append(change)
            if len(parts) == size:
                del pending[change.symbol]
                bids: Dict[Decimal, Decimal] = {}
                asks: Dict[Decimal, Decimal] = {}
                for part in parts:
                    bids.update(part.bids)
                    asks.update(part.asks)
                uid = next_id[change.symbol]
                next_id[change.symbol] = uid + 1
                grouped.append(DepthUpdate(change.symbol, uid, uid, tuple(sorted(bids.items())),
                                           tuple(sorted(asks.items())), change.engine_us, 0))

        def render(event) -> str:
            return wire.encode_event(wire.stream_of(event), event, event.engine_us + 300).decode()

        self.n = n
        self.ours = {'trade': [render(e) for e in trades], 'depth': [render(e) for e in grouped]}
        self.binance = {'trade': [binance_trade(f) for f in self.ours['trade']],
                        'depth': [binance_depth(f) for f in self.ours['depth']]}
        self.last_trade_ids = {e.symbol: e.trade_id for e in trades}
        books = {s: ({D(p): D(q) for p, q in b['bids']}, {D(p): D(q) for p, q in b['asks']})
                 for s, b in self.rest_books.items()}
        self.unchanged_depth = 0  # frames that only delete absent levels: nothing to emit
        for frame in grouped:
            changed = False
            for side, levels in zip(books[frame.symbol], (frame.bids, frame.asks)):
                for price, qty in levels:
                    if qty:
                        changed = True
                        side[price] = qty
                    elif side.pop(price, None) is not None:
                        changed = True
            self.unchanged_depth += not changed
        self.final_books = books
        self.levels_per_frame = sum(len(e.bids) + len(e.asks) for e in grouped) / len(grouped)


def binance_trade(frame: str) -> str:
    """Our ``trade.<S>`` frame as the Binance ``aggTrade`` frame of the same trade."""
    data = json.loads(frame)['data']
    symbol = BINANCE_SYMBOLS[data['s']][0]
    return json.dumps({'stream': f'{symbol.lower()}@aggTrade', 'data': {
        'e': 'aggTrade', 'E': data['E'] // 1000, 's': symbol, 'a': data['t'], 'p': data['p'], 'q': data['q'],
        'f': data['t'], 'l': data['t'], 'T': data['T'] // 1000, 'm': data['m'], 'M': True}}, separators=(',', ':'))


def binance_depth(frame: str) -> str:
    """Our ``depth.<S>`` frame as the Binance ``depthUpdate`` frame of the same levels and ids."""
    data = json.loads(frame)['data']
    symbol = BINANCE_SYMBOLS[data['s']][0]
    return json.dumps({'stream': f'{symbol.lower()}@depth@100ms', 'data': {
        'e': 'depthUpdate', 'E': data['T'] // 1000, 's': symbol, 'U': data['U'], 'u': data['u'],
        'b': data['b'], 'a': data['a']}}, separators=(',', ':'))


def binance_exchange_info() -> dict:
    """A static ``/api/v3/exchangeInfo`` with the four markets, in the shape ``_parse_symbol_data`` reads."""
    rows = []
    for symbol, base, quote, contract in BINANCE_SYMBOLS.values():
        row = {'symbol': symbol, 'status': 'TRADING', 'baseAsset': base, 'quoteAsset': quote,
               'filters': [{'filterType': 'PRICE_FILTER', 'tickSize': '0.01'}]}
        if contract:
            row['contractType'] = contract
        rows.append(row)
    return {'symbols': rows}


async def _noop(obj, receipt_ts):
    return None


class Recorder:
    """A recording callback for the one-off checked pass."""

    def __init__(self):
        self.items: List[Any] = []

    async def __call__(self, obj, receipt_ts):
        # a book: (symbol, full book?, sequence number); the book object itself is reused by the feed
        self.items.append(obj if not hasattr(obj, 'delta') else (obj.symbol, obj.delta is None, obj.sequence_number))


class _FeedPath:
    """A feed's ``message_handler`` (``self.handler``) fed one frame after another."""

    async def run(self, frames: List[str]) -> None:
        handler = self.handler
        ts = time.time()
        for frame in frames:
            await handler(frame, None, ts)


class OurPath(_FeedPath):
    """``BackpackFeed.message_handler`` on our frames; never started."""

    def __init__(self, frames: Frames, kind: str, callback=_noop):
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges.backpack import BackpackFeed
        from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized
        from cryptofeed.exchanges.backpack.core.wire.parse import parse_depth_snapshot

        self.frames, self.kind = frames, kind
        self.sym = {s: exchange_to_normalized(s) for s in MARKETS}
        channel = TRADES if kind == 'trade' else L2_BOOK
        self.feed = BackpackFeed(config=dict(OFFLINE), symbols=list(self.sym.values()), channels=[channel],
                                 callbacks={channel: callback})
        self.snapshots = {s: parse_depth_snapshot(payload) for s, payload in frames.rest_books.items()}
        self.handler = self.feed.message_handler

    def setup(self) -> None:
        for sequencer in self.feed._trade.sequencers.values():
            sequencer.reset()
        for symbol, snap in self.snapshots.items():
            sync = self.feed._book.books.get(self.sym[symbol])
            if sync is not None:
                sync.reset()
                sync.apply_snapshot(snap.last_update_id, snap.bids, snap.asks, snap.timestamp)

    def check(self) -> None:
        snap = self.feed.metrics_snapshot()
        assert snap['parse_errors'] == 0 and sum(snap['drops'].values()) == 0, snap['drops']
        if self.kind == 'trade':
            for symbol, last_id in self.frames.last_trade_ids.items():
                seq = self.feed._trade.sequencers[self.sym[symbol]]
                assert seq.last_id == last_id and seq.gaps == 0, (symbol, seq.last_id, last_id)
            return
        for symbol, (bids, asks) in self.frames.final_books.items():
            sync = self.feed._book.books[self.sym[symbol]]
            assert sync.synced and sync.gaps == 0 and sync.crossed == 0, sync.counters()
            book = sync.book.book
            assert book.bids.to_dict() == bids and book.asks.to_dict() == asks, f'ours: {symbol} book != truth'


class BinancePath(_FeedPath):
    """cryptofeed 3's ``Binance.message_handler`` on the Binance renderings; never started."""

    def __init__(self, frames: Frames, kind: str, callback=_noop):
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges.binance import Binance
        from cryptofeed.symbols import Symbols

        if not Symbols.populated(Binance.id):
            Symbols.set(Binance.id, *Binance._parse_symbol_data(binance_exchange_info()))
        self.frames, self.kind = frames, kind
        channel = TRADES if kind == 'trade' else L2_BOOK
        self.feed = Binance(symbols=[self.std(s) for s in MARKETS], channels=[channel], callbacks={channel: callback})
        # The same books as Binance /api/v3/depth answers, for its own snapshot parser.
        self.snapshots = {}
        for symbol, payload in frames.rest_books.items():
            body = json.dumps({'lastUpdateId': int(payload['lastUpdateId']), 'bids': payload['bids'][::-1],
                               'asks': payload['asks']})
            self.snapshots[self.std(symbol)] = body
        self.handler = self.feed.message_handler

    def std(self, backpack_symbol: str) -> str:
        from cryptofeed.exchanges.binance import Binance
        from cryptofeed.symbols import Symbols
        wanted = BINANCE_SYMBOLS[backpack_symbol][0]
        return next(std for std, ex in Symbols.get(Binance.id)[0].items() if ex == wanted)

    def setup(self) -> None:
        feed = self.feed
        feed._l2_book.clear()
        feed.last_update_id.clear()
        if self.kind == 'depth':
            for std, body in self.snapshots.items():  # what Binance._snapshot does after its HTTP read
                book = feed._parse_snapshot(std, body)
                feed.last_update_id[std] = book.sequence_number
                feed._l2_book[std] = book

    def check(self) -> None:
        if self.kind == 'trade':
            return
        for symbol, (bids, asks) in self.frames.final_books.items():
            std = self.std(symbol)
            book = self.feed._l2_book[std].book
            assert book.bids.to_dict() == bids and book.asks.to_dict() == asks, f'binance: {symbol} book != truth'


def _baseline(kind: str) -> Callable[[List[str]], None]:
    import orjson
    loads = orjson.loads

    def trade(frames):
        for frame in frames:
            data = loads(frame)['data']
            D(data['p'])
            D(data['q'])

    def depth(frames):
        for frame in frames:
            data = loads(frame)['data']
            [(D(p), D(q)) for p, q in data['b']]
            [(D(p), D(q)) for p, q in data['a']]
    return trade if kind == 'trade' else depth


class Stages:
    """Cumulative stages of our feed's path without the feed, to see where the time goes on a line:
    the envelope decode alone; + ``Router.route`` to a no-op handler; + the adapter
    (``parse_trade``: the cryptofeed ``Trade``) and the sequencer, or + ``BookSync.on_depth`` on
    synced books (the cryptofeed ``OrderBook`` and its delta). ``ours`` minus the last stage is what
    the feed around them adds (channel glue, the callback, the await)."""

    def __init__(self, frames: Frames, kind: str):
        from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized
        from cryptofeed.exchanges.backpack.core.sync.book import BookSync
        from cryptofeed.exchanges.backpack.core.sync.trades import TradeSequencer
        from cryptofeed.exchanges.backpack.core.wire import messages
        from cryptofeed.exchanges.backpack.core.wire.parse import parse_depth_snapshot, parse_trade
        from cryptofeed.exchanges.backpack.core.wire.router import Router

        sym = {s: exchange_to_normalized(s) for s in MARKETS}
        snapshots = {s: parse_depth_snapshot(payload) for s, payload in frames.rest_books.items()}
        decode = messages.ENVELOPE_DECODER.decode
        books: Dict[str, Any] = {}
        sequencers: Dict[str, Any] = {}

        def decoded(part):
            for frame in part:
                decode(frame)

        def routed(handler):
            route = Router({kind: handler}, sym).route

            def run(part):
                for frame in part:
                    route(frame, 1.0)
            return run

        def noop(msg, symbol, variant, ts):
            return None

        def trade(msg, symbol, variant, ts):
            t = parse_trade(msg, symbol, ts)
            sequencers[symbol].accept_next(msg.t)
            return t

        def depth(msg, symbol, variant, ts):
            return books[symbol].on_depth(msg.U, msg.u, msg.b, msg.a, msg.T / 1_000_000)

        def setup():
            sequencers.clear()
            sequencers.update({v: TradeSequencer() for v in sym.values()})
            books.clear()
            for s, snap in snapshots.items():
                books[sym[s]] = sync = BookSync(sym[s])
                sync.apply_snapshot(snap.last_update_id, snap.bids, snap.asks, snap.timestamp)

        self.setup = setup
        last = ('stage: + parse_trade, sequencer', trade) if kind == 'trade' else ('stage: + BookSync.on_depth', depth)
        self.candidates = [('stage: decode', decoded, None), ('stage: + Router.route', routed(noop), None),
                           (last[0], routed(last[1]), setup)]


class Candidate:
    __slots__ = ('name', 'frames', 'run', 'setup', 'check', 'is_async')

    def __init__(self, name, frames, run, setup=None, check=None, is_async=False):
        self.name, self.frames, self.run, self.setup, self.check, self.is_async = (
            name, frames, run, setup, check, is_async)


async def verify(frames: Frames, kind: str, binance: bool) -> str:
    """One pass with recording callbacks: what the timed no-op callbacks receive, on both feeds."""
    ours_rec = Recorder()
    ours = OurPath(frames, kind, ours_rec)
    ours.setup()
    await ours.run(frames.ours[kind])
    ours.check()
    n = frames.n
    # Ours emits nothing for a frame that changes nothing (it only deletes absent levels); Binance does.
    expected = n - frames.unchanged_depth if kind == 'depth' else n
    assert len(ours_rec.items) == expected, f'ours: {len(ours_rec.items)} callbacks for {n} {kind} frames'
    note = f'{kind}: ours {len(ours_rec.items)} callbacks for {n} frames'
    if kind == 'depth':
        note += f' ({frames.unchanged_depth} only delete absent levels: not emitted)'
        seen: Dict[str, int] = {}
        for symbol, full, seq in ours_rec.items:
            assert full == (symbol not in seen) and seq > seen.get(symbol, -1), \
                f'ours: {symbol}: not a full book first, then deltas with increasing sequence numbers'
            seen[symbol] = seq
    if not binance:
        return note
    bn_rec = Recorder()
    bn = BinancePath(frames, kind, bn_rec)
    bn.setup()
    await bn.run(frames.binance[kind])
    bn.check()
    assert len(bn_rec.items) == n, f'binance: {len(bn_rec.items)} callbacks for {n} {kind} frames'
    if kind == 'trade':
        for a, b in zip(ours_rec.items, bn_rec.items, strict=True):
            same = (a.symbol, a.side, a.amount, a.price, a.id) == (b.symbol, b.side, b.amount, b.price, b.id)
            assert same and abs(a.timestamp - b.timestamp) < 0.001, f'trades differ: {a} / {b}'
        return note + ', binance the same trades (symbol, side, amount, price, id, time to the ms)'
    return note + f', binance {len(bn_rec.items)}; final books of both == truth'


async def run_round(cands: List[Candidate], n: int, chunk: int, rnd: int,
                    problems: Dict[str, str]) -> Dict[str, float]:
    """One round: state rebuilt outside the clock, then every chunk run by every candidate back to
    back, the order rotated by chunk and round; the end state checked. Seconds per candidate."""
    for c in cands:
        if c.setup is not None:
            c.setup()
    gc.collect()
    total = {c.name: 0.0 for c in cands}
    clock = time.perf_counter
    for k, start in enumerate(range(0, n, chunk)):
        shift = (k + rnd) % len(cands)
        for c in cands[shift:] + cands[:shift]:
            part = c.frames[start:start + chunk]
            if c.is_async:
                t0 = clock()
                await c.run(part)
                total[c.name] += clock() - t0
            else:
                t0 = clock()
                c.run(part)
                total[c.name] += clock() - t0
    for c in cands:
        if c.check is not None:
            try:
                c.check()
            except AssertionError as exc:
                problems.setdefault(c.name, f'{type(exc).__name__}: {exc}')
    return total


def _quartiles(values: List[float]) -> Tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, med, q3 = statistics.quantiles(values, n=4)
    return q1, statistics.median(values), q3


async def profile_rows(path, frames: List[str], top: int) -> List[dict]:
    """cProfile of one pass of ``path``, by own time: [{function, calls_per_frame, us_own, us_cum}],
    times in microseconds per frame."""
    path.setup()
    profiler = cProfile.Profile()
    profiler.enable()
    await path.run(frames)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    n = len(frames)
    rows = []
    for (filename, line, name), (cc, nc, tt, ct, _callers) in stats.items():
        rows.append({'function': _label(filename, line, name), 'calls_per_frame': nc / n,
                     'us_own': tt / n * 1e6, 'us_cum': ct / n * 1e6})
    rows.sort(key=lambda r: -r['us_own'])
    return rows[:max(top, 60)]  # more than shown: the driver looks functions up across lines


def _label(filename: str, line: int, name: str) -> str:
    if filename == '~':  # a builtin: drop the object address, which differs between processes
        return re.sub(r' at 0x[0-9a-fA-F]+', '', name)
    for marker in ('site-packages/', str(ROOT) + '/'):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f'{filename}({name})'


def summarize(totals: Dict[str, List[float]], n: int) -> Dict[str, dict]:
    """Per candidate: frames/s of the median round, and ratios to the references of the same rounds."""
    res = {}
    for name, t in totals.items():
        med_t = statistics.median(t)
        row = {'fps': n / med_t, 'us_per_frame': med_t / n * 1e6, 'best_fps': n / min(t),
               'vs_baseline': _quartiles([b / x for b, x in zip(totals['baseline'], t)])}
        if 'binance' in totals:
            row['vs_binance'] = _quartiles([b / x for b, x in zip(totals['binance'], t)])
        res[name] = row
    return res


class Line:
    """This interpreter's line, ready to time: frames built, checked, candidates per path."""

    def __init__(self, args, say: Callable[..., None]):
        self.args, self.say = args, say

    async def prepare(self) -> 'Line':
        _use_this_tree()
        import msgspec
        import orjson
        from importlib.metadata import version
        import cryptofeed.exchanges.backpack as backpack

        args, say = self.args, self.say
        cf_version = version('cryptofeed')
        binance = backpack.CRYPTOFEED_LINE >= 3
        t0 = time.perf_counter()
        frames = self.frames = Frames(args.frames, args.seed)
        self.kinds = [k for k in ('trade', 'depth') if k in args.paths]
        self.meta: Dict[str, Any] = {
            'interpreter': sys.executable, 'python': sys.version.split()[0], 'cryptofeed': cf_version,
            'line': backpack.CRYPTOFEED_LINE, 'package': backpack.__file__, 'orjson': orjson.__version__,
            'msgspec': msgspec.__version__, 'order_book': _version('order_book'), 'frames': frames.n,
            'chunk': args.chunk, 'seed': args.seed, 'depth_levels_per_frame': frames.levels_per_frame,
            'checks': [], 'top': args.top}
        self.problems: Dict[str, str] = {}
        say(f'cryptofeed {cf_version} (line {backpack.CRYPTOFEED_LINE}), python {self.meta["python"]}, order_book '
            f'{self.meta["order_book"]}, orjson {orjson.__version__}, msgspec {msgspec.__version__}; package '
            f'{backpack.__file__}')
        say(f'{frames.n} frames per path (depth {frames.levels_per_frame:.2f} levels/frame), generated in '
            f'{time.perf_counter() - t0:.1f} s; chunk {args.chunk}')
        for kind in self.kinds:
            try:
                self.meta['checks'].append(await verify(frames, kind, binance))
            except AssertionError as exc:
                self.problems[f'{kind} / verify'] = f'{type(exc).__name__}: {exc}'
        for line in self.meta['checks']:
            say('check:', line)
        self.cands: Dict[str, List[Candidate]] = {}
        for kind in self.kinds:
            ours = OurPath(frames, kind)
            cands = [Candidate('baseline', frames.ours[kind], _baseline(kind)),
                     Candidate('ours', frames.ours[kind], ours.run, ours.setup, ours.check, True)]
            if binance:
                bn = BinancePath(frames, kind)
                cands += [Candidate('binance', frames.binance[kind], bn.run, bn.setup, bn.check, True),
                          Candidate('baseline (binance frames)', frames.binance[kind], _baseline(kind))]
            if not args.no_stages:
                stages = Stages(frames, kind)
                cands += [Candidate(name, frames.ours[kind], run, setup) for name, run, setup in stages.candidates]
            self.cands[kind] = cands
        self.totals = {kind: {c.name: [] for c in cands} for kind, cands in self.cands.items()}
        self.profiles: Dict[str, dict] = {}
        return self

    async def round(self, rnd: int) -> None:
        """One round of every path; round 0 warms up and is not recorded."""
        for kind, cands in self.cands.items():
            problems: Dict[str, str] = {}
            total = await run_round(cands, self.frames.n, self.args.chunk, rnd, problems)
            for name, what in problems.items():
                self.problems.setdefault(f'{kind} / {name}', what)
            if rnd:
                for name, t in total.items():
                    self.totals[kind][name].append(t)

    async def profile(self, kinds: List[str]) -> Dict[str, dict]:
        out = {}
        for kind in kinds:
            out[kind] = {'ours': await profile_rows(OurPath(self.frames, kind), self.frames.ours[kind], self.args.top)}
            if self.meta['line'] >= 3:
                out[kind]['binance'] = await profile_rows(BinancePath(self.frames, kind), self.frames.binance[kind],
                                                          self.args.top)
        self.profiles.update(out)
        return out

    def result(self) -> dict:
        rounds = len(next(iter(next(iter(self.totals.values())).values()), []))
        return {**self.meta, 'rounds': rounds, 'problems': self.problems, 'profiles': self.profiles,
                'totals': self.totals,
                'paths': {kind: summarize(t, self.frames.n) for kind, t in self.totals.items() if rounds}}


async def run_line(args) -> dict:
    """Everything measured on this interpreter's line, printed and as a JSON-able dict."""
    line = await Line(args, print).prepare()
    rounds = args.rounds or 9
    print(f'rounds {rounds} (+1 warm-up)')
    for rnd in range(rounds + 1):
        await line.round(rnd)
    if args.profile:
        await line.profile(line.kinds)
    out = line.result()
    print_line(out)
    return out


async def serve(args) -> None:
    """``--serve``: the driver's child. Prepares, answers ``@@{...}`` lines on stdout to the commands
    ``round N``, ``profile trade,depth``, ``result`` and ``quit`` read from stdin; says the rest on stderr."""
    def say(*parts):
        print(*parts, file=sys.stderr, flush=True)

    def reply(kind: str, data: Any) -> None:
        sys.stdout.write('@@' + json.dumps({kind: data}) + '\n')
        sys.stdout.flush()

    line = await Line(args, say).prepare()
    reply('ready', line.meta)
    for command in sys.stdin:
        word, _, rest = command.strip().partition(' ')
        if word == 'round':
            await line.round(int(rest))
            reply('round', int(rest))
        elif word == 'profile':
            reply('profile', await line.profile([k for k in rest.split(',') if k in line.cands]))
        elif word == 'result':
            reply('result', line.result())
        else:
            break


def _version(dist: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _fmt_q(q) -> str:
    lo, med, hi = q
    return f'{med:6.3f} ({lo:.3f}..{hi:.3f})'


def print_line(out: dict) -> None:
    binance = out['line'] >= 3
    head = f'{"path":6s} {"candidate":32s} {"frames/s":>11s} {"us/frame":>9s} {"vs baseline (p25..p75)":>23s}'
    if binance:
        head += f' {"vs binance (p25..p75)":>23s}'
    print()
    print(head)
    print('-' * len(head))
    for kind, res in out['paths'].items():
        for name, row in res.items():
            if name.startswith('stage: '):
                name = '  ' + name[len('stage: '):]
            line = (f'{kind:6s} {name:32s} {row["fps"]:11,.0f} {row["us_per_frame"]:9.3f} '
                    f'{_fmt_q(row["vs_baseline"]):>23s}')
            if binance:
                line += f' {_fmt_q(row["vs_binance"]):>23s}'
            print(line)
        print()
    print('ratios: median over rounds of reference time / candidate time (> 1 = faster than the reference);')
    print('indented: cumulative stages of our path without the feed (see Stages)')
    for where, what in out['problems'].items():
        print(f'CHECK FAILED {where}: {what}')
    for kind, by in out['profiles'].items():
        for who, rows in by.items():
            print()
            print(format_profile(f'{kind} / {who} (cryptofeed {out["cryptofeed"]})', rows[:out['top']]))


def format_profile(title: str, rows: List[dict], others: Optional[Dict[str, List[dict]]] = None) -> str:
    """A profile table; ``others`` (line name -> rows) adds a column per line with the same
    function's own time there."""
    others = others or {}
    there = {name: {r['function']: r for r in rows_} for name, rows_ in others.items()}
    body = [f'  cProfile {title}: by own time, us per frame (cProfile inflates Python-level calls)',
            f'  {"own us":>8s} {"cum us":>8s} {"calls/frame":>11s}' + ''.join(f' {name:>12s}' for name in others)
            + '  function']
    for r in rows:
        extra = ''
        for name in others:
            o = there[name].get(r['function'])
            extra += f' {o["us_own"]:12.3f}' if o else f' {"-":>12s}'
        body.append(f'  {r["us_own"]:8.3f} {r["us_cum"]:8.3f} {r["calls_per_frame"]:11.2f}{extra}  {r["function"]}')
    return '\n'.join(body)


# ------------------------------------------------------------------------------ driver (--all)


# ------------------------------------------------------------------------------ driver (--all)

def _probe(python: str) -> Optional[Tuple[str, str]]:
    """(cryptofeed version, python version) of an interpreter, or None if it has no cryptofeed."""
    code = ('import sys, importlib.metadata as m; print(m.version("cryptofeed"), sys.version.split()[0])')
    try:
        done = subprocess.run([python, '-c', code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode:
        return None
    cf, py = done.stdout.split()
    return cf, py


def interpreters(explicit: List[str]) -> List[Tuple[str, str, str]]:
    """[(interpreter, cryptofeed version, python version)]: ``--python`` or the env variable as
    given; otherwise the defaults that exist, one per (cryptofeed, python) pair."""
    given = explicit or [p for p in os.environ.get(PYTHONS_ENV, '').split(':') if p]
    chosen, seen = [], set()
    for path in given or DEFAULT_PYTHONS:
        path = os.path.abspath(path)
        if path in seen or not os.access(path, os.X_OK):
            if given and path not in seen:
                print(f'skipped {path}: not an executable', file=sys.stderr)
            continue
        seen.add(path)
        probe = _probe(path)
        if probe is None:
            print(f'skipped {path}: no cryptofeed installed', file=sys.stderr)
            continue
        key = (probe[0], '.'.join(probe[1].split('.')[:2]))
        if not given and key in {(c, '.'.join(p.split('.')[:2])) for _, c, p in chosen}:
            continue  # the same line twice among the defaults
        chosen.append((path, *probe))
    return sorted(chosen, key=lambda c: ([int(x) for x in c[1].split('.') if x.isdigit()], c[2]))


class Child:
    """One line's ``--serve`` process, driven over its stdin/stdout."""

    def __init__(self, python: str, args):
        self.python = python
        self.err = tempfile.TemporaryFile('w+')
        cmd = [python, str(Path(__file__).resolve()), '--serve', '--frames', str(args.frames), '--chunk',
               str(args.chunk), '--seed', str(args.seed), '--paths', ','.join(args.paths), '--top', str(args.top)]
        if args.no_stages:
            cmd.append('--no-stages')
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     bufsize=1)

    def read(self) -> dict:
        for text in self.proc.stdout:
            if text.startswith('@@'):
                return json.loads(text[2:])
        self.proc.wait()
        self.err.seek(0)
        raise RuntimeError(f'{self.python} ended ({self.proc.returncode}):\n{self.err.read()[-4000:]}')

    def ask(self, command: str) -> Any:
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()
        return next(iter(self.read().values()))

    def log(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('quit\n')
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.err.close()


def _med(values: List[float]) -> float:
    return statistics.median(values)


def _verdict(ratio: float, word_ok: str, word_bad: str) -> str:
    if ratio >= 1:
        return word_ok
    return 'within noise' if ratio >= 1 - NOISE else word_bad


def _label_of(m: dict) -> str:
    return f'cf {m["cryptofeed"]} / py {m["python"]}'


def _cross(a: List[float], b: List[float]) -> Tuple[float, float, float]:
    """Quartiles over rounds of a[r] / b[r] (round r of two processes, run one after the other)."""
    return _quartiles([x / y for x, y in zip(a, b)])


def drive(args) -> int:
    """``--all``: every line in its own process, rounds interleaved across them, one table."""
    lines = interpreters(args.python)
    if not lines:
        print('no interpreter with cryptofeed found (give --python PATH)', file=sys.stderr)
        return 2
    rounds = args.rounds or 15
    print(f'lines: {", ".join(f"cryptofeed {c} / python {p} ({path})" for path, c, p in lines)}')
    print(f'{args.frames} frames per path, {rounds} rounds (+1 warm-up), chunk {args.chunk}; in each round every '
          f'line runs one round in its own process while the others wait, the order of the lines rotated per round')
    children = {path: Child(path, args) for path, _, _ in lines}
    try:
        for path, child in list(children.items()):
            try:
                child.read()  # ready: frames built and checked
            except RuntimeError as exc:
                print(f'skipped: {exc}', file=sys.stderr)
                child.close()
                del children[path]
        if not children:
            return 1
        order = list(children)
        started = time.perf_counter()
        for rnd in range(rounds + 1):
            for path in order[rnd % len(order):] + order[:rnd % len(order)]:
                children[path].ask(f'round {rnd}')
        print(f'timed in {time.perf_counter() - started:.0f} s')
        merged = {path: child.ask('result') for path, child in children.items()}
        if args.verbose:
            for path, child in children.items():
                print(f'--- {path}\n{child.log()}')
        code = report(args, merged, children)
    finally:
        for child in children.values():
            child.close()
    return code


def report(args, merged: Dict[str, dict], children: Dict[str, Child]) -> int:
    """The table, the per-stage figures, the verdicts and, on a miss, the profiles."""
    threes = [p for p, m in merged.items() if m['line'] >= 3]
    ref = next((p for p in threes if merged[p]['cryptofeed'] == '3.0.1'), threes[0] if threes else None)
    title = f'Binance-{merged[ref]["cryptofeed"]}' if ref else 'Binance (no 3.x line)'
    out: Dict[str, Any] = {'lines': merged, 'reference': ref, 'verdicts': [], 'profiles': {}}
    for path, m in merged.items():
        print(f'{_label_of(m)}: order_book {m["order_book"]}, orjson {m["orjson"]}, msgspec {m["msgspec"]}; '
              f'package {m["package"]}; checks: {"; ".join(m["checks"])}')
    print()
    head = (f'{"line":22s} {"path":6s} {"candidate":26s} {"frames/s":>10s} {"us/frame":>9s} '
            f'{"vs baseline":>11s} {"vs " + title:>18s}')
    print(head)
    print('-' * len(head))
    for path, m in merged.items():
        for kind, res in m['paths'].items():
            ref_t = merged[ref]['totals'][kind]['binance'] if ref else None
            for name, row in res.items():
                if name.startswith('stage: '):
                    continue
                if path == ref and 'vs_binance' in row:
                    vs = f'{row["vs_binance"][1]:.3f}'
                elif ref_t and name != 'baseline':
                    row['vs_binance_cross'] = _cross(ref_t, m['totals'][kind][name])
                    vs = f'~{row["vs_binance_cross"][1]:.3f}'
                else:
                    vs = ''
                print(f'{_label_of(m):22s} {kind:6s} {name:26s} {row["fps"]:10,.0f} {row["us_per_frame"]:9.3f} '
                      f'{row["vs_baseline"][1]:11.3f} {vs:>18s}')
        print()
    print('frames/s, us/frame: median round; vs baseline: median over rounds of baseline time / candidate time in')
    print(f'the same round and process; vs {title}: the same against Binance\'s time, on its own line in the same')
    print('process, elsewhere (~) against Binance\'s time in the same round of the 3.0 process (run just before')
    print('or after). > 1 = faster than the reference.')
    for path, m in merged.items():
        for where, what in m['problems'].items():
            print(f'CHECK FAILED cryptofeed {m["cryptofeed"]} {where}: {what}')

    first = next(iter(merged.values()))
    if any(n.startswith('stage: ') for r in first['paths'].values() for n in r):
        print()
        print('where the time goes, us/frame (median round); stages are cumulative, without the feed around them:')
        print(f'{"path":6s} {"stage":32s}' + ''.join(f' {_label_of(m):>22s}' for m in merged.values()))
        for kind in first['paths']:
            names = ['baseline'] + [n for n in first['paths'][kind] if n.startswith('stage: ')] + ['ours']
            for name in names:
                cells = ''.join(f' {m["paths"][kind][name]["us_per_frame"]:22.3f}' if name in m['paths'].get(kind, {})
                                else f' {"-":>22s}' for m in merged.values())
                print(f'{kind:6s} {name.replace("stage: ", "  "):32s}{cells}')

    if ref is None:
        _write(args.json, out)
        return 0
    print()
    three = merged[ref]
    missed = []  # (kind, 2.x path or None for Binance)
    for kind in three['paths']:
        t3 = three['totals'][kind]
        for path, m in merged.items():
            if m['line'] >= 3 or kind not in m['totals']:
                continue
            t2 = m['totals'][kind]
            r = _cross(t2['ours'], t3['ours'])
            rn = _quartiles([(o2 / b2) / (o3 / b3) for o2, b2, o3, b3 in
                             zip(t2['ours'], t2['baseline'], t3['ours'], t3['baseline'])])
            word = _verdict(r[1], 'no slower', 'SLOWER')
            text = (f'{kind}: ours on cryptofeed {three["cryptofeed"]} vs ours on {m["cryptofeed"]}: x{r[1]:.3f} '
                    f'({r[0]:.3f}..{r[2]:.3f}) {word}; against each line\'s own baseline x{rn[1]:.3f} '
                    f'({rn[0]:.3f}..{rn[2]:.3f})')
            print(text)
            out['verdicts'].append(text)
            if word != 'no slower':
                missed.append((kind, path))
        vb = three['paths'][kind]['ours']['vs_binance']
        word = 'ahead' if vb[1] > 1 else 'BEHIND'
        text = (f'{kind}: ours vs Binance on cryptofeed {three["cryptofeed"]}, same process: x{vb[1]:.3f} '
                f'({vb[0]:.3f}..{vb[2]:.3f}) {word}')
        print(text)
        out['verdicts'].append(text)
        if vb[1] <= 1:
            missed.append((kind, None))
    print('x: median over rounds (p25..p75) of the other\'s time / ours on 3.0 (> 1 = ours on 3.0 is faster); '
          f'"within noise" = less than {NOISE:.0%} slower')

    if missed or args.profile:
        wanted = sorted({k for k, _ in missed} or set(three['paths']))
        others = [p for p in merged if p != ref and (p in {q for _, q in missed} or not any(q for _, q in missed))
                  and merged[p]['line'] < 3]
        profiles = {p: children[p].ask('profile ' + ','.join(wanted)) for p in [ref] + others}
        out['profiles'] = profiles
        print()
        print('profiles' + (' (because of the misses above)' if missed else '') + ': cProfile, one pass per line, '
              'run one after the other')
        for kind in wanted:
            mine = profiles[ref].get(kind, {})
            columns = {f'cf {merged[p]["cryptofeed"]}': profiles[p][kind]['ours'] for p in others if kind in profiles[p]}
            print()
            print(format_profile(f'{kind} / ours on cryptofeed {three["cryptofeed"]} (other columns: the same '
                                 f'function on the other lines)', mine.get('ours', [])[:args.top], columns))
            if 'binance' in mine:
                print()
                print(format_profile(f'{kind} / Binance on cryptofeed {three["cryptofeed"]}', mine['binance'][:args.top]))
    _write(args.json, out)
    return 0


def _write(path: Optional[str], data: dict) -> None:
    if path:
        with open(path, 'w') as fp:
            json.dump(data, fp, indent=1)


# ------------------------------------------------------------------------------ main

def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--all', action='store_true', help='run every line in a subprocess, print one table')
    parser.add_argument('--python', action='append', default=[], metavar='PATH',
                        help=f'with --all: an interpreter to run (repeatable; default: ${PYTHONS_ENV} or the known venvs)')
    parser.add_argument('--verbose', action='store_true', help='with --all: show each line\'s own log')
    parser.add_argument('--serve', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--frames', type=int, default=50_000, help='frames per path (default 50000)')
    parser.add_argument('--rounds', type=int, help='timed interleaved rounds (default 9; with --all 15)')
    parser.add_argument('--chunk', type=int, default=2000, help='frames per interleaving unit (default 2000)')
    parser.add_argument('--seed', type=int, default=3)
    parser.add_argument('--paths', type=lambda s: [p for p in s.split(',') if p], default=['trade', 'depth'],
                        help='comma-separated: trade,depth (default both)')
    parser.add_argument('--profile', action='store_true', help='also print cProfile top functions of each feed path')
    parser.add_argument('--no-stages', action='store_true', help='leave out the stage ladder (faster)')
    parser.add_argument('--top', type=int, default=16, help='functions shown per profile (default 16)')
    parser.add_argument('--json', metavar='PATH', help='write the results as JSON to PATH (with --all: every line, merged)')
    args = parser.parse_args(argv)
    unknown = set(args.paths) - {'trade', 'depth'}
    if unknown:
        parser.error(f'unknown path(s) {sorted(unknown)}: use trade, depth')
    if args.all:
        return drive(args)
    if args.serve:
        asyncio.run(serve(args))
        return 0
    out = asyncio.run(run_line(args))
    if args.json:
        with open(args.json, 'w') as fp:
            json.dump(out, fp)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
