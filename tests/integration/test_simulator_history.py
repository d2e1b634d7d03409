"""The simulator's generated history and its limit on historical endpoints, over real sockets."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp

from cryptofeed.exchanges.backpack.simulator.__main__ import main as simulator_main
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.inprocess import run_main


async def test_history_is_in_the_past_in_order_and_served_by_history_and_klines():
    before = time.time()
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, history_s=600, history_updates=5000) as sim:
        truth = sim.trades('SOL_USDC')
        async with aiohttp.ClientSession() as http:
            async with http.get(sim.rest_url + '/api/v1/trades/history',
                                params={'symbol': 'SOL_USDC', 'limit': 5, 'offset': len(truth) - 5}) as resp:
                oldest = await resp.json()
            async with http.get(sim.rest_url + '/api/v1/klines',
                                params={'symbol': 'SOL_USDC', 'interval': '1m', 'startTime': int(before) - 700}) as resp:
                klines = await resp.json()
    assert len(truth) > 500
    stamps = [t['timestamp_us'] for t in truth]
    assert stamps == sorted(stamps) and stamps[0] / 1e6 < before - 500 and stamps[-1] / 1e6 <= time.time()
    assert [t['id'] for t in truth] == list(range(truth[0]['id'], truth[0]['id'] + len(truth)))
    assert sorted(r['id'] for r in oldest) == [t['id'] for t in truth[:5]]
    assert sum(int(k['trades']) for k in klines) == len(truth)


async def test_cli_history_rate_limit_answers_429_with_retry_after():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--markets', 'SOL_USDC', '--rate', '0',
        '--history-s', '60', '--history-updates', '500', '--history-rate-limit', '2/60',
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        statuses = []
        async with aiohttp.ClientSession() as http:
            for path in ('/api/v1/trades/history', '/api/v1/klines', '/api/v1/trades/history', '/api/v1/depth'):
                params = {'symbol': 'SOL_USDC'}
                if path.endswith('klines'):
                    params.update(interval='1m', startTime=str(int(time.time()) - 120))
                async with http.get(info['rest_url'] + path, params=params) as resp:
                    statuses.append((resp.status, resp.headers.get('Retry-After')))
                    body = await resp.json()
    finally:
        proc.terminate()
        await proc.wait()
    assert statuses[:2] == [(200, None), (200, None)]
    assert statuses[2][0] == 429 and 55 <= int(statuses[2][1]) <= 60
    assert statuses[3] == (200, None), 'other endpoints are not limited'
    assert 'bids' in body


def test_cli_refuses_a_malformed_history_rate_limit():
    result = run_main(simulator_main, ['--history-rate-limit', 'fast'])   # in process: the check is the point
    assert result.returncode == 2 and 'N/SECONDS' in result.stderr
