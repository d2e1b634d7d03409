"""One user script, written only with the documented imports, on whichever cryptofeed line runs
the suite (the matrix runs it on 2.4.1, 2.5.0 and 3.0.x): public and account channels, a dropped
connection, an order, REST history. It runs in a process of its own against the simulator."""
from __future__ import annotations

import asyncio
import json
import sys

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

SCRIPT = r'''
import asyncio, base64, json, sys, time, urllib.request
from decimal import Decimal

from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TRADES
from cryptofeed.exchanges.backpack import (
    BALANCES, BUY, FILLS, MARKET, ORDER_INFO, BackpackFeed, run_handler,
)

urls = json.loads(sys.argv[1])
seen = {TRADES: 0, L2_BOOK: 0, ORDER_INFO: [], FILLS: [], BALANCES: []}


def counter(channel):
    async def callback(obj, receipt_ts):
        if isinstance(seen[channel], list):
            seen[channel].append(obj.to_dict(numeric_type=str))
        else:
            seen[channel] += 1
    return callback


config = {'rest_url': urls['rest_url'], 'ws_url': urls['ws_url'], 'ca_file': urls['ca_file'],
          'enable_private_channels': True, 'auth': {'private_key': base64.b64encode(bytes([9]) * 32).decode()}}
subscription = {TRADES: ['SOL-USDC'], L2_BOOK: ['SOL-USDC'], ORDER_INFO: [], FILLS: [], BALANCES: []}
feed = BackpackFeed(config=config, subscription=subscription,
                    callbacks={channel: counter(channel) for channel in subscription},
                    reconnect_backoff_base_s=0.1, reconnect_backoff_max_s=0.5)
handler = FeedHandler(config={'log': {'disabled': True}})
handler.add_feed(feed)
placed = {}


def drop_connections():
    request = urllib.request.Request(urls['rest_url'] + '/_sim/faults', method='POST',
                                     data=json.dumps({'fault': 'drop_connections'}).encode(),
                                     headers={'Content-Type': 'application/json'})
    import ssl
    urllib.request.urlopen(request, context=ssl.create_default_context(cafile=urls['ca_file'])).read()


async def act():
    while not (seen[BALANCES] and seen[L2_BOOK] and seen[TRADES]):
        await asyncio.sleep(0.05)
    await asyncio.to_thread(drop_connections)
    await asyncio.sleep(1.0)
    order = await feed.place_order('SOL-USDC', BUY, MARKET, Decimal('1'))
    placed['id'] = order.id


run_handler(handler, 6, beside=[act()])
history = [row for page in feed.trades_sync('SOL-USDC', start=time.time() - 120) for row in page]
mine = feed.trade_history_sync('SOL-USDC')
snap = feed.metrics_snapshot()
print(json.dumps({'trades': seen[TRADES], 'books': seen[L2_BOOK], 'placed': placed.get('id'),
                  'fills': seen[FILLS], 'orders': seen[ORDER_INFO], 'balances': len(seen[BALANCES]),
                  'reconnects': snap['reconnects'], 'history': len(history),
                  'my_fills': [fill.order_id for fill in mine], 'fill_type': type(mine[0]).__name__ if mine else None}))
'''


async def test_the_same_user_script_runs_on_this_line():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=41, rate=200, tls=True) as sim:
        urls = {'rest_url': sim.rest_url, 'ws_url': sim.ws_url, 'ca_file': sim.ca_file}
        process = await asyncio.create_subprocess_exec(sys.executable, '-c', SCRIPT, json.dumps(urls),
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()[-3000:]
    out = json.loads(stdout.decode().strip().splitlines()[-1])
    assert out['trades'] > 0 and out['books'] > 0 and out['balances'] > 0
    assert out['reconnects'] >= 2                                  # the public and the private connection
    assert out['placed'] and [f['order_id'] for f in out['fills']].count(out['placed']) >= 1
    assert len({(f['id'], f['order_id']) for f in out['fills']}) == len(out['fills'])   # each fill once
    assert set(out['fills'][0]) == {'exchange', 'symbol', 'side', 'amount', 'price', 'fee', 'liquidity', 'id',
                                    'order_id', 'type', 'account', 'timestamp'}
    assert any(o['id'] == out['placed'] and o['status'] == 'filled' for o in out['orders'])
    assert out['history'] > 0 and out['placed'] in out['my_fills'] and out['fill_type'] == 'Fill'
