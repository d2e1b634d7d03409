"""cryptofeed 2.x: its own account backends fail on Backpack's data; this package's do not.

Both run side by side in one real FeedHandler against the simulator and a real Redis, on the
same channels, each with its own keys: cryptofeed's ``BalancesRedis`` raises on every balance (a
``Balance`` has no ``timestamp``) and its ``OrderInfoRedis`` on the quote-quantity market order
(``remaining`` is ``None``). The feed logs and counts those exceptions and carries on; this
package's backends hold a row for every object the callbacks got.
"""
from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from cryptofeed.backends import redis as cryptofeed_redis

from cryptofeed.exchanges.backpack import BALANCES, ORDER_INFO
from cryptofeed.exchanges.backpack.backends import BalancesRedis, OrderInfoRedis
from tests.integration.services import redis_server  # noqa: F401 (fixture)
from tests.integration.test_account_backends import Recorder, recording_callbacks, run_trading, sim  # noqa: F401


async def rows(client, pattern: str) -> int:
    return sum([await client.zcard(key) for key in await client.keys(pattern)])


async def test_cryptofeeds_balances_redis_raises_on_every_balance_and_ours_stores_them(sim, redis_server, caplog):
    host, port = redis_server.rsplit('/', 1)[1].split(':')
    theirs = {BALANCES: cryptofeed_redis.BalancesRedis(host=host, port=int(port), key='theirs-balances'),
              ORDER_INFO: cryptofeed_redis.OrderInfoRedis(host=host, port=int(port), key='theirs-orders')}
    ours = {BALANCES: BalancesRedis(url=redis_server, key='ours-balances'),
            ORDER_INFO: OrderInfoRedis(url=redis_server, key='ours-orders')}
    recorder = Recorder()
    callbacks = recording_callbacks(recorder, {c: [theirs[c], ours[c]] for c in (BALANCES, ORDER_INFO)})
    with caplog.at_level(logging.ERROR):
        feed = await run_trading(sim, recorder, callbacks)

    balances, orders = len(recorder.got[BALANCES]), len(recorder.got[ORDER_INFO])
    quoted = sum(1 for order, _ in recorder.got[ORDER_INFO] if order.remaining is None)
    assert balances and quoted
    # every balance and every order without `remaining` raised in cryptofeed's backend
    assert feed.metrics_snapshot()['callback_errors'] == balances + quoted
    assert "object has no attribute 'timestamp'" in caplog.text
    client = aioredis.from_url(redis_server)
    try:
        assert await client.keys('theirs-balances-*') == []
        # cryptofeed 2.x's stop() does not wait for its writer: poll for the orders it could store
        deadline = time.monotonic() + 10
        while await rows(client, 'theirs-orders-*') < orders - quoted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await rows(client, 'theirs-orders-*') == orders - quoted
        assert await rows(client, 'ours-balances-*') == balances
        assert await rows(client, 'ours-orders-*') == orders
    finally:
        await client.aclose()
