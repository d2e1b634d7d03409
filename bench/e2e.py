"""End to end: simulator process -> TLS WebSocket on loopback -> FeedHandler/BackpackFeed -> callbacks.

Run: ``.venv-3.11/bin/python bench/e2e.py [--frames 1000000] [--rate 1000000] [--markets A,B,..]``
(``--frames 50000`` is a quick smoke run). Not a test; no network beyond 127.0.0.1.

Method (DESIGN.md section 7, end to end):

1. The simulator runs in ANOTHER process, started through its CLI
   (``python -m cryptofeed.exchanges.backpack.simulator --tls --rate R --markets ...``); its one
   JSON line gives the https/wss URLs and the CA file to trust. ``--rate`` is its order-book
   updates per second summed over the markets; the default (10^6) is far above what one Python
   process produces, so the simulator runs flat out (burst). Each update is one ``depth.<S>``
   frame; trades and bookTicker ride on top (about 1.7 frames per update). A lower ``--rate``
   (e.g. 30000) gives a steady stream the feed can keep up with: the setting for latency and RSS.
2. (a) A bare ``websockets`` client (the connection options of ``BackpackWSConn``: no
   compression, unbounded frame size and queue) subscribes to the same streams (``depth``,
   ``trade``, ``bookTicker`` of every market) and only counts frames, over ``--frames`` frames
   after ``--warmup``; one frame in 64 also has its ``E`` (simulator send time, µs) compared
   with the clock.
3. (b) A ``FeedHandler`` runs one ``BackpackFeed`` (L2_BOOK, TRADES, TICKER) on uvloop (what
   cryptofeed installs by default; ``--no-uvloop`` for asyncio's loop) with ``async`` callbacks
   that count. Measurement starts once every book is synced, ``--warmup`` callbacks have happened
   and ``--warmup-seconds`` have passed (the backlog built up while the books synced drains
   first), and ends after ``--frames`` more callbacks. Reported: callbacks/s and the ratio to (a);
   per callback ``time.time() - receipt_ts`` (``receipt_ts`` is the timestamp cryptofeed passes
   to ``message_handler``, taken when websockets hands the frame over, so it excludes any wait
   in front of that) and ``time.time() - obj.timestamp`` (the payload's engine time ``T``: same
   clock on one machine, so this covers simulator batching, TLS, sockets and every queue; ``E``
   is not kept on cryptofeed objects, ``E >= T``), p50/p99/p99.9/max from preallocated arrays;
   VmRSS from /proc/self/status after warm-up and at the end (``gc.collect()`` first; target
   growth < 10 MB), its peak and its path along the run (sampled by a thread every 0.2 s).
4. Both (a) and (b) report this process's CPU use and the share of time it was runnable but
   waiting for a CPU (/proc/self/schedstat): on a busy machine (the simulator needs one CPU,
   the client one) frames/s drop, and the CPU time per frame of (a) and (b), and their ratio,
   are the steadier numbers. When the simulator, not the client, is the bottleneck, (a) shows
   low CPU and low wait.
5. After the run the simulator is paused (``POST /_sim/pause``) and every book of the feed is
   compared with the simulator's truth (``GET /_sim/book``); ``feed.metrics_snapshot()`` gives
   parse errors, drops, gaps and resyncs. Then the feed is stopped and the simulator process is
   terminated (SIGTERM, then SIGKILL if it has not exited after 10 s).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from decimal import Decimal
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from cryptofeed import FeedHandler  # noqa: E402
from cryptofeed.defines import L2_BOOK, TICKER, TRADES  # noqa: E402

from cryptofeed.exchanges.backpack import BackpackFeed  # noqa: E402
from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized  # noqa: E402

DEFAULT_MARKETS = 'SOL_USDC,BTC_USDC,ETH_USDC,SOL_USDC_PERP'
STREAM_KINDS = ('depth', 'trade', 'bookTicker')


def rss_kb() -> int:
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError('no VmRSS in /proc/self/status')


def schedstat() -> tuple:
    """(ns on CPU, ns runnable but waiting for a CPU) of this process's main thread."""
    with open('/proc/self/schedstat') as fh:
        on_cpu, waiting, _ = fh.read().split()
    return int(on_cpu), int(waiting)


def hwm_kb() -> int:
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Reads VmRSS every 0.2 s from a thread (file reads release the GIL); keeps the peak and
    (callbacks so far, VmRSS) samples, to tell a plateau from a steady climb."""

    def __init__(self, progress=lambda: 0):
        super().__init__(daemon=True)
        self.peak = 0
        self.samples: List[tuple] = []
        self._progress = progress
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(0.2):
            rss = rss_kb()
            self.peak = max(self.peak, rss)
            self.samples.append((self._progress(), rss))

    def trajectory(self, total: int, rss0: int, parts: int = 5) -> str:
        """VmRSS growth (MB) when 1/parts, 2/parts, ... of the callbacks had happened."""
        out = []
        for k in range(1, parts + 1):
            mark = total * k // parts
            rss = next((r for n, r in self.samples if n >= mark), self.samples[-1][1] if self.samples else rss0)
            out.append(f'{k * 100 // parts}%: {(rss - rss0) / 1024:+.1f}')
        return ', '.join(out)

    def stop(self):
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, rss_kb())


def percentiles(values: array, count: int) -> Dict[str, float]:
    data = sorted(values[:count])
    if not data:
        return {}

    def at(q: float) -> float:
        return data[min(len(data) - 1, int(q * len(data)))]
    return {'p50': at(0.50), 'p99': at(0.99), 'p99.9': at(0.999), 'max': data[-1], 'mean': statistics.fmean(data)}


def fmt_ms(stats: Dict[str, float]) -> str:
    return '  '.join(f'{k} {v * 1e3:8.3f} ms' for k, v in stats.items())


# ------------------------------------------------------------------------------ simulator process

class SimulatorProcess:
    def __init__(self, rate: float, markets: str, seed: int):
        self.cmd = [sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--tls', '--rate', str(rate),
                    '--markets', markets, '--seed', str(seed), '--log-level', 'WARNING']
        self.proc: Optional[subprocess.Popen] = None
        self.info: dict = {}
        self.stderr = tempfile.TemporaryFile()

    def start(self, timeout: float = 30.0) -> dict:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.stderr, cwd=str(ROOT),
                                     env={**os.environ, 'PYTHONPATH': str(ROOT)})
        deadline = time.monotonic() + timeout
        line = b''
        while not line:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f'simulator did not start: {self.tail()}')
            line = self.proc.stdout.readline()
        self.info = json.loads(line)
        return self.info

    def tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-2000:].decode('utf-8', 'replace')

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        return self.proc.returncode


def client_ssl(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


# ------------------------------------------------------------------------------ (a) bare client

async def bare_client(info: dict, markets: List[str], frames: int, warmup: int) -> dict:
    streams = [f'{kind}.{m}' for m in markets for kind in STREAM_KINDS]
    async with connect(info['ws_url'], ssl=client_ssl(info['ca_file']), compression=None, max_size=None,
                       max_queue=None, ping_interval=10, ping_timeout=10, proxy=None) as ws:
        await ws.send(json.dumps({'method': 'SUBSCRIBE', 'params': streams}))
        n = 0
        t0 = cpu0 = 0.0
        total = warmup + frames
        lag = array('d')
        clock = time.time
        async for msg in ws:
            n += 1
            if n & 63 == 0 and n > warmup:  # 1 frame in 64: E (µs, simulator send time) -> now
                at = msg.find('"E":') + 4
                lag.append(clock() - int(msg[at:msg.find(',', at)]) / 1e6)
            if n == warmup:
                t0 = time.perf_counter()
                cpu0 = time.process_time()
                sched0 = schedstat()
            elif n >= total:
                break
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        sched1 = schedstat()
    return {'frames': frames, 'seconds': elapsed, 'fps': frames / elapsed, 'cpu': cpu / elapsed,
            'wait': (sched1[1] - sched0[1]) / 1e9 / elapsed,
            'cpu_us': cpu / frames * 1e6, 'e_lag': percentiles(lag, len(lag))}


# ------------------------------------------------------------------------------ (b) feed

class Counter:
    """The callbacks: count, and stamp latencies into preallocated arrays while recording."""

    def __init__(self, capacity: int, target: int):
        self.n = 0                 # callbacks while recording
        self.before = 0            # callbacks before recording
        self.recording = False
        self.capacity = capacity
        self.target = target
        self.rx = array('d', bytes(8 * capacity))   # receipt -> callback, seconds
        self.eng = array('d', bytes(8 * capacity))  # engine time T -> callback, seconds
        self.per_channel = {TRADES: 0, L2_BOOK: 0, TICKER: 0}
        self.t_end = 0.0
        self.done = asyncio.Event()
        for arr in (self.rx, self.eng):  # touch every page now, so RSS already includes them
            for i in range(0, capacity, 512):
                arr[i] = 0.0

    def callbacks(self) -> dict:
        def make(channel: str):
            clock = time.time

            async def callback(obj, receipt_ts):
                now = clock()
                if not self.recording:
                    self.before += 1
                    return
                i = self.n
                self.n = i + 1
                if i < self.target:
                    self.rx[i] = now - receipt_ts
                    self.eng[i] = now - obj.timestamp
                    self.per_channel[channel] += 1
                    if i + 1 == self.target:
                        self.t_end = time.perf_counter()
                        self.done.set()
            return callback
        return {TRADES: make(TRADES), L2_BOOK: make(L2_BOOK), TICKER: make(TICKER)}


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out waiting for {what}')
        await asyncio.sleep(0.01)


async def books_vs_truth(info: dict, feed: BackpackFeed, markets: List[str]) -> Dict[str, str]:
    """Pause the simulator, let the feed drain, compare every book with the truth endpoint."""
    out = {}
    connector = aiohttp.TCPConnector(ssl=client_ssl(info['ca_file']))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(info['rest_url'] + '/_sim/pause') as resp:
            resp.raise_for_status()
        for market in markets:
            async with session.get(info['rest_url'] + '/_sim/book', params={'symbol': market}) as resp:
                truth = await resp.json()
            sync = feed._book.books[exchange_to_normalized(market)]
            try:
                await wait_for(lambda s=sync, n=truth['sequence']: s.synced and s.last_update_id == n, 15.0,
                               f'{market} to reach sequence {truth["sequence"]}')
            except TimeoutError as exc:
                out[market] = f'NOT converged: {exc} (state {sync.state}, last {sync.last_update_id})'
                continue
            book = sync.book.book
            bids = [(Decimal(p), Decimal(q)) for p, q in truth['bids']]
            asks = [(Decimal(p), Decimal(q)) for p, q in truth['asks']]
            ok = list(book.bids.to_dict().items()) == bids and list(book.asks.to_dict().items()) == asks
            out[market] = (f'== truth at sequence {truth["sequence"]} ({len(bids)}+{len(asks)} levels)' if ok
                           else f'DIFFERS from truth at sequence {truth["sequence"]}')
        async with session.post(info['rest_url'] + '/_sim/resume') as resp:
            resp.raise_for_status()
    return out


async def feed_run(info: dict, markets: List[str], frames: int, warmup: int, warmup_s: float, timeout: float) -> dict:
    symbols = [exchange_to_normalized(m) for m in markets]
    counter = Counter(frames + 1024, frames)
    handler = FeedHandler(config={'log': {'disabled': True}, 'uvloop': False})
    config = {'rest_url': info['rest_url'], 'ws_url': info['ws_url'], 'ca_file': info['ca_file']}
    feed = BackpackFeed(config=config, symbols=symbols, channels=[L2_BOOK, TRADES, TICKER],
                        callbacks=counter.callbacks())
    handler.add_feed(feed)
    handler.run(start_loop=False, install_signal_handlers=False)
    result: dict = {'loop': type(asyncio.get_running_loop()).__module__}
    try:
        await wait_for(lambda: all(s.synced for s in feed._book.books.values()), 30.0, 'every book to sync')
        synced_at = time.monotonic()
        await wait_for(lambda: counter.before >= warmup and time.monotonic() - synced_at >= warmup_s, 60.0 + warmup_s,
                       f'{warmup} warm-up callbacks and {warmup_s} s')
        gc.collect()
        rss0 = rss_kb()
        sampler = RssSampler(lambda: counter.n)
        sampler.start()
        handled0 = feed.metrics.messages.copy()
        cpu0 = time.process_time()
        sched0 = schedstat()
        t0 = time.perf_counter()
        counter.recording = True
        try:
            await asyncio.wait_for(counter.done.wait(), timeout)
        except asyncio.TimeoutError:
            result['timeout'] = True
            counter.t_end = time.perf_counter()
        t_end = counter.t_end
        cpu = time.process_time() - cpu0
        sched1 = schedstat()
        wall = time.perf_counter() - t0
        counter.recording = False
        sampler.stop()
        handled = sum(feed.metrics.messages.values()) - sum(handled0.values())
        gc.collect()
        rss1 = rss_kb()
        n = min(counter.n, counter.target)
        elapsed = t_end - t0
        result.update({
            'callbacks': n, 'seconds': elapsed, 'fps': n / elapsed, 'overshoot': counter.n - n,
            'handled_after_target': handled, 'cpu': cpu / wall, 'wait': (sched1[1] - sched0[1]) / 1e9 / wall,
            'cpu_us': cpu / max(counter.n, 1) * 1e6,
            'per_channel': dict(counter.per_channel),
            'rss0_kb': rss0, 'rss1_kb': rss1, 'rss_max_kb': sampler.peak, 'hwm_kb': hwm_kb(),
            'rss_path': sampler.trajectory(n, rss0),
            'rx': percentiles(counter.rx, n), 'eng': percentiles(counter.eng, n),
        })
        result['truth'] = await books_vs_truth(info, feed, markets)
        snap = feed.metrics_snapshot()
        result['metrics'] = {k: snap[k] for k in ('messages_total', 'dropped', 'parse_errors', 'server_errors',
                                                  'unknown_streams', 'reconnects', 'gaps', 'resyncs',
                                                  'books_out_of_sync', 'trade_gaps_unrecovered')}
        result['drops'] = snap['drops']
        result['books'] = snap['books']
        result['trades'] = snap['trades']
    finally:
        await handler.stop_async()
    return result


# ------------------------------------------------------------------------------ main

async def amain(args, info: dict, markets: List[str]) -> dict:
    out = {}
    print(f'(a) bare websockets client: {args.frames:,} frames after {args.warmup:,} warm-up ...', flush=True)
    out['bare'] = await bare_client(info, markets, args.frames, args.warmup)
    print(f'    {out["bare"]["fps"]:,.0f} frames/s ({out["bare"]["seconds"]:.1f} s)', flush=True)
    print(f'(b) FeedHandler + BackpackFeed: {args.frames:,} callbacks after sync + {args.warmup:,} warm-up '
          f'callbacks and {args.warmup_seconds:g} s ...',
          flush=True)
    out['feed'] = await feed_run(info, markets, args.frames, args.warmup, args.warmup_seconds, args.timeout)
    if args.recheck_bare:
        print('(a) again, after (b) ...', flush=True)
        out['bare2'] = await bare_client(info, markets, args.frames, args.warmup)
    return out


def report(args, info: dict, out: dict) -> None:
    bare = out['bare']
    feed = out['feed']
    print()
    print(f'simulator: {info["ws_url"]} (TLS), rate {args.rate:g}/s, markets {args.markets}; '
          f'streams {", ".join(STREAM_KINDS)} per market; websockets {websockets.__version__}; '
          f'event loop of (b): {feed["loop"]}')
    ref = bare['fps']
    if 'bare2' in out:
        print(f'(a) bare websockets client       {bare["fps"]:12,.0f} frames/s   (after (b): '
              f'{out["bare2"]["fps"]:,.0f}; reference = the mean); client CPU {bare["cpu"]:.0%}')
        ref = (bare['fps'] + out['bare2']['fps']) / 2
    else:
        print(f'(a) bare websockets client       {bare["fps"]:12,.0f} frames/s   client CPU {bare["cpu"]:.0%}, '
              f'waiting for a CPU {bare["wait"]:.0%} (low CPU, low wait: the simulator sets this rate)')
    print(f'    E -> receive (1 frame in 64)  {fmt_ms(bare["e_lag"])}')
    ratio = feed['fps'] / ref
    print(f'(b) FeedHandler + BackpackFeed   {feed["fps"]:12,.0f} callbacks/s  ratio to (a) {ratio:.3f} '
          f'(target >= 0.50: {"ok" if ratio >= 0.5 else "MISS"}); process CPU {feed["cpu"]:.0%}, '
          f'waiting for a CPU {feed["wait"]:.0%}'
          + ('  [TIMED OUT before --frames]' if feed.get('timeout') else ''))
    print(f'    CPU per frame: (a) {bare["cpu_us"]:.1f} us, (b) {feed["cpu_us"]:.1f} us -> capacity ratio (b)/(a) '
          f'{bare["cpu_us"] / feed["cpu_us"]:.3f} (what the ratio would be if both were CPU-bound)')
    if max(bare['wait'], feed['wait']) > 0.15:
        print('    !! this process waited for a CPU a large part of the time: other processes competed for the CPUs '
              '(the simulator needs one,\n       this process one); the frames/s above are then lower than the '
              'machine can do, the CPU-per-frame ratio is the steadier number')
    print(f'    {feed["callbacks"]:,} callbacks in {feed["seconds"]:.1f} s: {feed["per_channel"]}; '
          f'{feed["overshoot"]:,} more ran before the measuring task got the loop back')
    print(f'    receipt -> callback    {fmt_ms(feed["rx"])}')
    print(f'    engine T -> callback   {fmt_ms(feed["eng"])}')
    if feed['eng'] and feed['eng']['p50'] > 0.1:
        print('    -> engine-to-callback far above receipt-to-callback: the consumer is behind the producer and frames '
              'wait upstream\n       (simulator send buffer, kernel socket buffers, websockets queue); receipt_ts is '
              'stamped when websockets\n       hands a frame over, so receipt-to-callback does not include that wait')
    growth = (feed['rss1_kb'] - feed['rss0_kb']) / 1024
    peak = (feed['rss_max_kb'] - feed['rss0_kb']) / 1024
    print(f'    VmRSS after warm-up {feed["rss0_kb"] / 1024:.1f} MB, at end {feed["rss1_kb"] / 1024:.1f} MB: growth '
          f'{growth:+.1f} MB over {feed["callbacks"]:,} callbacks (target < 10 MB: '
          f'{"ok" if growth < 10 else "MISS"}); peak during the run {peak:+.1f} MB; VmHWM '
          f'{feed["hwm_kb"] / 1024:.1f} MB')
    print(f'    VmRSS growth (MB) along the run: {feed["rss_path"]}')
    m = feed['metrics']
    print(f'    metrics: {m}')
    print(f'    drops: {feed["drops"]}')
    for symbol, book in feed['books'].items():
        print(f'    book {symbol}: {book}')
    for symbol, trades in feed['trades'].items():
        print(f'    trades {symbol}: {trades}')
    for market, verdict in feed['truth'].items():
        print(f'    {market}: feed book {verdict}')


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=1_000_000, help='measured frames/callbacks (default 10^6)')
    parser.add_argument('--warmup', type=int, default=20_000, help='frames/callbacks before measuring')
    parser.add_argument('--warmup-seconds', type=float, default=5.0,
                        help='(b) also waits this long after every book synced before measuring (default 5)')
    parser.add_argument('--rate', type=float, default=1_000_000,
                        help='simulator order-book updates/s (default 10^6: as fast as it can)')
    parser.add_argument('--markets', default=DEFAULT_MARKETS)
    parser.add_argument('--seed', type=int, default=5)
    parser.add_argument('--timeout', type=float, default=1800.0, help='give up on (b) after this many seconds')
    parser.add_argument('--recheck-bare', action='store_true', help='measure (a) again after (b)')
    parser.add_argument('--uvloop', action=argparse.BooleanOptionalAction, default=True,
                        help="run on uvloop (cryptofeed's default; --no-uvloop for asyncio's loop)")
    args = parser.parse_args(argv)
    markets = [m.strip() for m in args.markets.split(',') if m.strip()]

    sim = SimulatorProcess(args.rate, ','.join(markets), args.seed)
    try:
        info = sim.start()
        print(f'simulator pid {sim.proc.pid}: {info}', flush=True)
        if args.uvloop:
            import uvloop
            out = uvloop.run(amain(args, info, markets))
        else:
            out = asyncio.run(amain(args, info, markets))
        if sim.proc.poll() is not None:
            print(f'simulator exited early: {sim.tail()}')
        report(args, info, out)
    finally:
        code = sim.stop()
        print(f'simulator stopped (exit code {code})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
