"""Private frames through the feed's handler, as frames/s and as a ratio to orjson + Decimal.

Run: ``.venv-3.11/bin/python bench/private.py [--orders 3000] [--rounds 7]``. Not a test; no network
(the feed is built with unreachable 127.0.0.1:1 URLs and never started).

Frames: the simulator's account engine (``BackpackSimulator``, still market, in-process) executes
``--orders`` orders for one generated key (market buys and sells on SOL_USDC and SOL_USDC_PERP,
limit orders placed and cancelled), and every account event it emits is rendered with the
simulator's own wire encoder, exactly as its WebSocket sends it: ``account.orderUpdate``
(accepted, fill, cancelled), ``account.positionUpdate`` and ``account.balanceUpdate``.

Candidates, on the same frames, timed in interleaved rounds (best round each):

* ``baseline``: ``orjson.loads(frame)`` + ``Decimal`` of every decimal string in the payload (= 1.00);
* ``feed``: ``await handler(frame, None, ts)`` where ``handler`` is the private connection's
  message handler (router decode, adapters, fill ledger, order/position/balance state, callbacks),
  as cryptofeed's connection handler calls it, with no-op callbacks on ORDER_INFO, FILLS,
  POSITIONS and BALANCES. The fill ledger is reset before each round so every fill is delivered.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptofeed.defines import BALANCES, FILLS, ORDER_INFO, POSITIONS  # noqa: E402

from cryptofeed.exchanges.backpack import BackpackFeed  # noqa: E402
from cryptofeed.exchanges.backpack.core.sync.account import FillLedger  # noqa: E402
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner  # noqa: E402
from cryptofeed.exchanges.backpack.simulator import wire  # noqa: E402
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator  # noqa: E402

SECRET = base64.b64encode(bytes([9]) * 32).decode()
CHANNELS = (ORDER_INFO, FILLS, POSITIONS, BALANCES)


async def make_frames(orders: int) -> list:
    frames = []
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=5, rate=0,
                                 starting_balances={'USDC': '100000000', 'SOL': '10000000'}) as sim:
        key = BackpackSigner(SECRET).public_key
        sim.account.event_sink = lambda api_key, stream, symbol, data: frames.append(
            wire.encode_envelope(stream, data).decode())
        place = sim.account.place_order
        for i in range(orders):
            symbol = 'SOL_USDC_PERP' if i % 2 else 'SOL_USDC'
            kind = i % 5
            if kind == 4:
                best_bid = Decimal(sim.model.book_snapshot(symbol, 1).bids[0][0])
                price = str((best_bid * Decimal('0.98')).quantize(Decimal('0.01')))
                resting = place(key, {'symbol': symbol, 'side': 'Bid', 'orderType': 'Limit', 'price': price,
                                      'quantity': '1'})
                sim.account.cancel_order(key, symbol, resting['id'])
            else:
                place(key, {'symbol': symbol, 'side': 'Bid' if kind % 2 == 0 else 'Ask', 'orderType': 'Market',
                            'quantity': '0.5'})
    return frames


def baseline(frames) -> None:
    for frame in frames:
        data = orjson.loads(frame)['data']
        for value in data.values():
            if isinstance(value, str) and (value[:1].isdigit() or value[:1] == '-'):
                Decimal(value)


def build_feed() -> BackpackFeed:
    async def noop(obj, receipt_ts):
        return None
    config = {'rest_url': 'http://127.0.0.1:1', 'ws_url': 'ws://127.0.0.1:1', 'enable_private_channels': True,
              'auth': {'private_key': SECRET}}
    return BackpackFeed(config=config, subscription={c: [] for c in CHANNELS}, callbacks={c: noop for c in CHANNELS})


async def through_feed(feed, frames) -> None:
    feed._account.ledger = FillLedger()
    handle = feed._private_router.handle
    ts = time.time()
    for frame in frames:
        await handle(frame, None, ts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--orders', type=int, default=3000)
    parser.add_argument('--rounds', type=int, default=7)
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    frames = loop.run_until_complete(make_frames(args.orders))
    kinds = {}
    for frame in frames:
        stream = orjson.loads(frame)['stream']
        kinds[stream] = kinds.get(stream, 0) + 1
    feed = build_feed()
    loop.run_until_complete(through_feed(feed, frames))          # warm-up, and a correctness check
    delivered = dict(feed.metrics.messages)
    assert feed.metrics.dropped == 0, feed.metrics_snapshot()['drops_private']
    times = {'baseline': [], 'feed': []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        baseline(frames)
        times['baseline'].append(time.perf_counter() - start)
        start = time.perf_counter()
        loop.run_until_complete(through_feed(feed, frames))
        times['feed'].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    ratios = [b / f for b, f in zip(times['baseline'], times['feed'])]
    print(f'{len(frames)} private frames: {kinds}')
    print(f'counted by the feed in the warm-up pass: {delivered}')
    for name in ('baseline', 'feed'):
        print(f'{name:<9} {len(frames) / best[name]:>12,.0f} frames/s   {best[name] / len(frames) * 1e6:6.2f} us/frame')
    print(f'ratio feed / baseline (best rounds): {best["baseline"] / best["feed"]:.2f}   '
          f'median per-round ratio: {statistics.median(ratios):.2f}')
    loop.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
