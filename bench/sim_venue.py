"""CPU of the simulator serving a whole venue: hundreds of markets, with and without subscribers.

Run: ``.venv-3.11/bin/python bench/sim_venue.py [--markets 0,200,500] [--modes none,book,all]
[--rate 200] [--seconds 10] [--connections 3]``. Not a test.

For each count N, a simulator process is started with ``--synthetic-markets N`` (so N + 9
markets) at ``--rate`` book updates per second; this process connects ``--connections``
WebSocket clients that split the markets between them and subscribe, in one SUBSCRIBE frame each,
to nothing (``none``), depth + trade + bookTicker (``book``) or every stream of every market
(``all``: also ticker, kline.1m, depth.200ms, and markPrice + openInterest of perpetuals). After a
2 s warm-up it reads the simulator's CPU time from ``/proc`` over ``--seconds`` while pinging
``/api/v1/ping`` ten times a second. One JSON line per run: the simulator's share of one core,
per market, the frames/s delivered and the REST round trip (median and worst).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import websockets

_TICKS = os.sysconf('SC_CLK_TCK')
_CHANNELS = {
    'none': (),
    'book': ('depth', 'trade', 'bookTicker'),
    'all': ('depth', 'trade', 'bookTicker', 'ticker', 'kline.1m', 'depth.200ms'),
}


def cpu_seconds(pid: int) -> float:
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def run(count: int, mode: str, args: argparse.Namespace) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--synthetic-markets', str(count),
        '--rate', str(args.rate), '--log-level', 'WARNING', stdout=subprocess.PIPE)
    clients, readers, frames = [], [], [0]

    async def read(ws) -> None:
        async for _ in ws:
            frames[0] += 1

    try:
        info = json.loads(await proc.stdout.readline())
        async with aiohttp.ClientSession() as http:
            async with http.get(info['rest_url'] + '/api/v1/markets') as resp:
                symbols = [m['symbol'] for m in await resp.json()]
            if _CHANNELS[mode]:
                for k in range(args.connections):
                    ws = await websockets.connect(info['ws_url'], max_size=None, max_queue=None)
                    mine = symbols[k::args.connections]
                    streams = [f'{c}.{s}' for s in mine for c in _CHANNELS[mode]]
                    if mode == 'all':
                        streams += [f'{c}.{s}' for s in mine if s.endswith('_PERP') for c in ('markPrice', 'openInterest')]
                    await ws.send(json.dumps({'method': 'SUBSCRIBE', 'params': streams}))
                    clients.append(ws)
                    readers.append(asyncio.create_task(read(ws)))
            await asyncio.sleep(2.0)
            rtts = []
            cpu0, wall0, frames0 = cpu_seconds(proc.pid), time.monotonic(), frames[0]
            while time.monotonic() - wall0 < args.seconds:
                start = time.monotonic()
                async with http.get(info['rest_url'] + '/api/v1/ping') as resp:
                    await resp.read()
                rtts.append(time.monotonic() - start)
                await asyncio.sleep(0.1)
            cpu1, wall1, frames1 = cpu_seconds(proc.pid), time.monotonic(), frames[0]
    finally:
        for task in readers:
            task.cancel()
        for ws in clients:
            await ws.close()
        proc.terminate()
        await proc.wait()
    share = (cpu1 - cpu0) / (wall1 - wall0)
    rtts.sort()
    return {'markets': len(symbols), 'subscribed': mode, 'rate': args.rate, 'cpu_pct': round(100 * share, 1),
            'cpu_pct_per_market': round(100 * share / len(symbols), 4),
            'frames_per_s': round((frames1 - frames0) / (wall1 - wall0)),
            'rest_p50_ms': round(1000 * rtts[len(rtts) // 2], 1), 'rest_max_ms': round(1000 * rtts[-1], 1)}


async def main(args: argparse.Namespace) -> None:
    for count in args.markets:
        for mode in args.modes:
            print(json.dumps(await run(count, mode, args)), flush=True)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--markets', type=lambda v: [int(x) for x in v.split(',')], default=[0, 200, 500],
                        help='synthetic market counts, comma-separated (default 0,200,500)')
    parser.add_argument('--modes', type=lambda v: v.split(','), default=['none', 'book', 'all'],
                        help='subscriptions: none, book, all (default: all three)')
    parser.add_argument('--rate', type=float, default=200.0, help='book updates per second (default 200)')
    parser.add_argument('--seconds', type=float, default=10.0, help='measured window (default 10)')
    parser.add_argument('--connections', type=int, default=3, help='WebSocket clients (default 3)')
    parsed = parser.parse_args()
    unknown = set(parsed.modes) - set(_CHANNELS)
    if unknown:
        parser.error(f'unknown modes {sorted(unknown)}; choose from none, book, all')
    asyncio.run(main(parsed))
