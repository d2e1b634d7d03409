"""History download: ``BackpackFeed.trades`` fetching N trades from a simulator process, against a bare client.

Run: ``.venv-3.11/bin/python bench/rest_history.py [--trades 10000] [--rate 0] [--repeat 5]``.
Not a test; no network beyond 127.0.0.1.

Method:

1. The simulator runs in another process (its CLI) with an hour of generated history
   (``--history-updates``, about one trade per five updates on one market) and ``--rate``
   live updates per second (0: a still market; > 0: trades keep arriving during the download,
   so the pager has drift to deal with).
2. The window is the last ``--trades`` trades at the start of the run (read from
   ``/_sim/trades``), ending in the past, so every run downloads the same trades.
3. (a) Reference, measured in the same run: a bare aiohttp client that already knows the
   offsets (``/api/v1/trades/history`` pages of 1000 at offsets 0, 1000, ... on a still market)
   and turns every row into the same dict with ``Decimal`` price and amount. It needs no
   search and is the floor for this many rows over this API.
   (b) ``feed.trades(symbol, start, end)`` (async), and (c) ``feed.trades_sync(...)``: locate
   the start, page forward with the overlap check, pace, parse. Both are checked against the
   simulator's truth (ids, no gap, no duplicate).
4. Reported: best-of ``--repeat`` seconds, trades/s, HTTP requests, and the ratio (b)/(a).
   The pacer (30 per 60 s) does not wait here: 10,000 trades take about 20 requests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal

import aiohttp

from cryptofeed.defines import BUY, SELL
from cryptofeed.exchanges.backpack import BackpackFeed

SYMBOL = 'SOL_USDC'


def start_simulator(rate: float, updates: int) -> tuple:
    proc = subprocess.Popen(
        [sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--markets', SYMBOL, '--rate', str(rate),
         '--history-s', '3600', '--history-updates', str(updates), '--log-level', 'WARNING'],
        stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline())
    return proc, ready['rest_url']


async def reference(url: str, count: int) -> tuple:
    """Pages of the newest ``count`` trades at known offsets, parsed to the same dicts."""
    started = time.perf_counter()
    out = []
    requests = 0
    async with aiohttp.ClientSession() as http:
        for offset in range(0, count, 1000):
            async with http.get(f'{url}/api/v1/trades/history',
                                params={'symbol': SYMBOL, 'limit': 1000, 'offset': offset}) as resp:
                rows = await resp.json()
            requests += 1
            out.extend({'timestamp': r['timestamp'] / 1000, 'symbol': 'SOL-USDC', 'id': r['id'], 'feed': 'BACKPACK',
                        'side': SELL if r['isBuyerMaker'] else BUY, 'amount': Decimal(r['quantity']),
                        'price': Decimal(r['price'])} for r in rows)
    return time.perf_counter() - started, len(out), requests


async def feed_async(url: str, start: float, end: float) -> tuple:
    feed = BackpackFeed(config={'rest_url': url})
    started = time.perf_counter()
    ids = [t['id'] async for page in feed.trades('SOL-USDC', start, end) for t in page]
    elapsed = time.perf_counter() - started
    requests = feed.rest.stats.requests
    await feed.rest.close()
    return elapsed, ids, requests


def feed_sync(url: str, start: float, end: float) -> tuple:
    feed = BackpackFeed(config={'rest_url': url})
    started = time.perf_counter()
    ids = [t['id'] for page in feed.trades_sync('SOL-USDC', start, end) for t in page]
    return time.perf_counter() - started, ids, feed.rest.stats.requests


async def truth(url: str) -> list:
    async with aiohttp.ClientSession() as http:
        async with http.get(f'{url}/_sim/trades', params={'symbol': SYMBOL}) as resp:
            return await resp.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trades', type=int, default=10_000)
    parser.add_argument('--rate', type=float, default=0.0, help='live simulator updates per second')
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    proc, url = start_simulator(args.rate, args.trades * 6 + 20_000)
    try:
        log = asyncio.run(truth(url))
        window = log[-args.trades:]
        start_ms, end_ms = window[0]['timestamp_us'] // 1000, window[-1]['timestamp_us'] // 1000
        start, end = start_ms / 1000, end_ms / 1000
        want = [t['id'] for t in log if start_ms <= t['timestamp_us'] // 1000 <= end_ms]
        ref, fa, fs = [], [], []
        for _ in range(args.repeat):
            ref.append(asyncio.run(reference(url, len(want))))
            fa.append(asyncio.run(feed_async(url, start, end)))
            fs.append(feed_sync(url, start, end))
        for _, ids, _ in fa + fs:
            assert ids == want, 'download differs from the truth'
        best = lambda runs: min(runs, key=lambda r: r[0])  # noqa: E731
        r, a, s = best(ref), best(fa), best(fs)
        print(f'trades in window: {len(want)}  (simulator rate {args.rate:g} updates/s, best of {args.repeat})')
        print(f'(a) reference, known offsets : {r[0]:.3f} s  {r[1] / r[0]:>9,.0f} trades/s  {r[2]} requests')
        print(f'(b) feed.trades (async)      : {a[0]:.3f} s  {len(a[1]) / a[0]:>9,.0f} trades/s  {a[2]} requests'
              f'  ratio to (a) {r[0] / a[0]:.2f}')
        print(f'(c) feed.trades_sync         : {s[0]:.3f} s  {len(s[1]) / s[0]:>9,.0f} trades/s  {s[2]} requests'
              f'  ratio to (a) {r[0] / s[0]:.2f}')
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == '__main__':
    main()
