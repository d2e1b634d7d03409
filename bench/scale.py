"""Scale: a cold start of every market (1, ~59, ~259, ...) under a REST rate limit, measured.

Run: ``.venv-3.11/bin/python bench/scale.py [--synthetic 0,50,250] [--rest-rate-limit 10]
[--rate 400] [--window 10]``. Not a test: figures are printed, nothing is asserted.

For each size a fresh process (``--one N``, so RSS starts from nothing) starts the simulator in a
process of its own (``python -m cryptofeed.exchanges.backpack.simulator --synthetic-markets N
--rest-rate-limit R --rate U``), then runs a ``FeedHandler`` with one ``BackpackFeed(symbols='all',
channels=[TRADES, L2_BOOK])`` against it, with default options (``snapshot_workers`` 2,
``streams_per_connection`` 200). The default ``--markets`` of the simulator are 9, so
``--synthetic 0,50,250`` gives 9, 59 and 259 markets (1 market: ``--synthetic 0 --one-market``).

Reported per size, one JSON line:

* ``time_to_synced_s``: from the handler's start to every book synced (each book emitted its
  first full book from a snapshot), and the feed process's CPU seconds spent until then;
* ``rest_requests``, ``rest_429`` (the simulator's ``/_sim/stats``, all public endpoints: the
  markets list, one depth snapshot per book, trade look-ups), and the feed's own count of
  snapshots and REST failures it saw after its client's retries;
* ``cpu_us_per_frame``: the feed process's CPU time (user + system, ``os.times``) over a
  ``--window`` of steady state after the sync, divided by the callbacks (trades + book updates)
  delivered in it; ``frames_per_s`` of that window;
* ``rss_mb``: VmRSS after the window, and its peak (VmHWM);
* ``connections``: the feed's public WebSocket connections, and the simulator's count of open
  connections and subscribed streams; ``subscribe_refused`` (stream-limit errors, with
  ``--max-streams-per-connection``).

The simulator takes one core of a 2-core machine at most; on a loaded machine CPU per frame is the
steadier figure, wall times stretch. At the default ``--rate`` (about 500 frames a second) the
process's fixed work (pings, timers, metrics) dominates CPU per frame; ``--rate 4000`` (about
5,000 frames a second) shows the cost of a frame itself. The figures are in
docs/exchanges/backpack.md, *Many markets at once*.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from cryptofeed import FeedHandler  # noqa: E402
from cryptofeed.defines import L2_BOOK, TRADES  # noqa: E402

from cryptofeed.exchanges.backpack import BackpackFeed  # noqa: E402
from tests.integration.feed_harness import start_handler, stop_handler  # noqa: E402


def vm_kb(field: str) -> int:
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1])
    return 0


def cpu_s() -> float:
    times = os.times()
    return times.user + times.system


class Simulator:
    """The simulator in a process of its own, started through its CLI."""

    def __init__(self, args: argparse.Namespace, synthetic: int):
        self.cmd = [sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator',
                    '--synthetic-markets', str(synthetic), '--rate', str(args.rate), '--seed', str(args.seed),
                    '--log-level', 'WARNING']
        if args.one_market:
            self.cmd += ['--markets', 'SOL_USDC']
        if args.rest_rate_limit:
            self.cmd += ['--rest-rate-limit', str(args.rest_rate_limit)]
        if args.max_streams_per_connection:
            self.cmd += ['--max-streams-per-connection', str(args.max_streams_per_connection)]
        self.proc: Optional[subprocess.Popen] = None
        self.stderr = tempfile.TemporaryFile()

    def start(self) -> dict:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.stderr, cwd=str(ROOT),
                                     env={**os.environ, 'PYTHONPATH': str(ROOT)})
        line = self.proc.stdout.readline()
        if not line:
            self.stderr.seek(0)
            raise RuntimeError(f'simulator did not start: {self.stderr.read().decode()[-2000:]}')
        return json.loads(line)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def one(args: argparse.Namespace, synthetic: int) -> dict:
    sim = Simulator(args, synthetic)
    info = sim.start()
    frames: Counter = Counter()
    synced: Dict[str, float] = {}

    async def trade(t, receipt_ts):
        frames[TRADES] += 1

    async def book(b, receipt_ts):
        frames[L2_BOOK] += 1
        if b.delta is None and b.symbol not in synced:
            synced[b.symbol] = time.monotonic()

    handler = FeedHandler(config={'log': {'disabled': True}, 'uvloop': False})
    options = {'streams_per_connection': args.streams_per_connection} if args.streams_per_connection else {}
    feed = BackpackFeed(config={'rest_url': info['rest_url'], 'ws_url': info['ws_url']}, symbols='all',
                        channels=[TRADES, L2_BOOK], callbacks={TRADES: trade, L2_BOOK: book}, **options)
    handler.add_feed(feed)
    try:
        async with aiohttp.ClientSession() as http:
            async def sim_stats() -> dict:
                async with http.get(info['rest_url'] + '/_sim/stats') as resp:
                    return await resp.json()

            cpu0, start = cpu_s(), time.monotonic()
            await start_handler(handler)
            deadline = start + args.timeout
            while not feed.followed_symbols or len(synced) < len(feed.followed_symbols):
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{len(synced)} of {len(feed.followed_symbols or ())} books synced '
                                       f'after {args.timeout} s')
                await asyncio.sleep(0.05)
            sync_wall, sync_cpu = max(synced.values()) - start, cpu_s() - cpu0
            at_sync = await sim_stats()
            metrics = feed.metrics_snapshot()
            # steady state: CPU per delivered callback
            frames0, cpu1, wall1 = sum(frames.values()), cpu_s(), time.monotonic()
            await asyncio.sleep(args.window)
            window_frames, window_cpu = sum(frames.values()) - frames0, cpu_s() - cpu1
            window_wall = time.monotonic() - wall1
            after = await sim_stats()
            connections = len(feed._public)
            await stop_handler(handler)
    finally:
        sim.stop()
    markets = len(feed.followed_symbols)
    return {
        'markets': markets, 'rest_rate_limit': args.rest_rate_limit, 'rate': args.rate,
        'time_to_synced_s': round(sync_wall, 2), 'cpu_s_to_synced': round(sync_cpu, 2),
        'rest_requests': at_sync['rest_requests'], 'rest_429': at_sync['rest_429'],
        'feed_rest': {k: metrics.get('rest', {}).get(k) for k in ('requests', 'retries')},
        'resyncs': metrics['resyncs'], 'rest_failures_after_retries': metrics['rest_failures'],
        'frames_per_s': round(window_frames / window_wall, 1),
        'cpu_us_per_frame': round(1e6 * window_cpu / window_frames, 1) if window_frames else None,
        'cpu_pct': round(100 * window_cpu / window_wall, 1),
        'rss_mb': round(vm_kb('VmRSS') / 1024, 1), 'rss_peak_mb': round(vm_kb('VmHWM') / 1024, 1),
        'connections': connections, 'sim_ws_connections': after['ws_connections'],
        'sim_subscriptions': after['subscriptions'], 'subscribe_refused': after['subscribe_refused'],
        'rest_429_total': after['rest_429'],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--synthetic', type=lambda v: [int(x) for x in v.split(',')], default=[0, 50, 250],
                        help='synthetic market counts, comma-separated (default 0,50,250: 9, 59, 259 markets)')
    parser.add_argument('--one-market', action='store_true',
                        help='list SOL_USDC only among the default markets (with --synthetic 0: 1 market)')
    parser.add_argument('--rest-rate-limit', type=float, default=10.0,
                        help='public REST requests per second the simulator allows (default 10; 0: no limit)')
    parser.add_argument('--max-streams-per-connection', type=int, default=0, help='simulator stream limit (0: none)')
    parser.add_argument('--streams-per-connection', type=int, default=0, help="the feed's option (0: its default)")
    parser.add_argument('--rate', type=float, default=400.0, help='book updates per second over all markets')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--window', type=float, default=10.0, help='steady-state seconds measured after the sync')
    parser.add_argument('--timeout', type=float, default=300.0, help='seconds allowed for every book to sync')
    parser.add_argument('--one', type=int, default=None, help=argparse.SUPPRESS)  # a single size, in this process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(one(args, args.one))), flush=True)
        return
    passthrough: List[str] = [a for a in sys.argv[1:]]
    for synthetic in args.synthetic:
        # a fresh process per size: RSS and CPU of one size only
        subprocess.run([sys.executable, __file__, '--one', str(synthetic), *passthrough], check=True)


if __name__ == '__main__':
    main()
