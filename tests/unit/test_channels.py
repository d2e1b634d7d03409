"""channels/: the context (emit, gate, tasks, REST), and the book channel's snapshot retry timing."""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from types import SimpleNamespace

import pytest

from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TICKER

from cryptofeed.exchanges.backpack.core.sync.book import BookSync
from cryptofeed.exchanges.backpack.core.channels import DONE, BookChannel, ChannelContext, SymbolGate
from cryptofeed.exchanges.backpack.core.channels.book import _describe_break
from cryptofeed.exchanges.backpack.core.errors import BackpackRequestError
from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics


def context(callbacks, **kwargs) -> ChannelContext:
    return ChannelContext('BACKPACK', callbacks, FeedMetrics(), **kwargs)


async def test_emit_with_one_callback_returns_that_callbacks_own_coroutine():
    seen = []

    async def callback(obj, ts):
        seen.append((obj, ts))

    ctx = context({TICKER: [callback]})
    pending = ctx.emit(TICKER, 'tick', 1.5)
    assert pending.cr_code is callback.__code__  # no coroutine of ours in between
    await pending
    assert seen == [('tick', 1.5)]


async def test_emit_fans_out_in_order_and_sets_book_fields_with_the_cross_check():
    order, checked = [], []

    async def first(obj, ts):
        order.append(('first', obj.sequence_number, obj.delta))

    async def second(obj, ts):
        order.append(('second', obj.sequence_number, obj.delta))

    ctx = context({L2_BOOK: [first, second]}, cross_check=checked.append)
    book = SimpleNamespace()
    await ctx.emit(L2_BOOK, book, 2.0, timestamp=1.0, sequence_number=7, delta=None, raw=None)
    assert order == [('first', 7, None), ('second', 7, None)]
    assert checked == [book] and book.timestamp == 1.0


def test_unexpected_frames_are_counted_every_time_and_warned_about_once(caplog):
    ctx = context({})
    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        assert ctx.unexpected('depth', 'SOL-USDC') is DONE
        assert ctx.unexpected('depth', 'SOL-USDC') is DONE
    assert ctx.metrics.dropped == 2
    assert len([r for r in caplog.records if 'not subscribed' in r.getMessage()]) == 1


async def test_the_gate_runs_held_frames_after_the_catch_up_in_order():
    gate = SymbolGate()
    delivered = []

    async def handler(item):
        delivered.append(item)

    assert not gate
    with gate.hold('SOL-USDC'):
        assert gate and gate.get('ETH-USDC') is None
        waiting = asyncio.ensure_future(gate.behind(gate['SOL-USDC'], handler, 'live'))
        await asyncio.sleep(0)
        delivered.append('catch-up')
    await waiting
    assert delivered == ['catch-up', 'live'] and not gate


async def test_the_rest_client_is_created_once_on_first_use_and_closed_with_the_tasks():
    made = []

    class Client:
        closed = False

        async def close(self):
            self.closed = True

    ctx = context({}, rest_factory=lambda: made.append(Client()) or made[-1])
    assert ctx.rest_created is None and not made
    assert ctx.rest is ctx.rest and len(made) == 1
    task = ctx.spawn(asyncio.sleep(60))
    await ctx.close()
    assert task.cancelled() and made[0].closed


async def test_an_injected_rest_client_is_not_closed():
    class Client:
        async def close(self):
            raise AssertionError('closed an injected client')

    ctx = context({}, rest_client=Client())
    await ctx.close()


async def test_failed_snapshots_are_retried_on_a_capped_growing_schedule(monkeypatch, caplog):
    class FailingRest:
        calls = 0

        async def depth(self, symbol, limit):
            self.calls += 1
            raise BackpackRequestError('GET could not connect', path='/api/v1/depth')

    now = [1000.0]
    monkeypatch.setattr('cryptofeed.exchanges.backpack.core.channels.book.time.monotonic', lambda: now[0])
    ctx = context({L2_BOOK: []}, rest_client=FailingRest())
    channel = BookChannel(ctx, ['SOL-USDC'], max_depth=0, snapshot_limit=1000, retry_base_s=0.5, retry_max_s=4.0)
    sync = channel.books['SOL-USDC']
    sync.on_depth(1, 1, [], [], 0.0)                          # a frame arrived: the book wants a snapshot
    waits = []
    with caplog.at_level(logging.WARNING, logger=package_log.root()):
        for _ in range(8):
            sync.snapshot_requested()
            await channel._snapshot('SOL-USDC')
            assert sync.needs_snapshot                        # each failure releases the request
            waits.append(channel._not_before['SOL-USDC'] - now[0])
    assert ctx.rest.calls == 8 and ctx.metrics.rest_failures == 8
    assert all(0.25 <= w <= 4.0 for w in waits)              # 'equal' jitter: at least half the ceiling
    assert max(waits[4:]) > max(waits[:1])                    # grows, then stays under the cap


def test_the_break_description_names_the_ids():
    sync = BookSync('SOL-USDC')
    sync.on_depth(1, 1, [], [], 0.0)
    sync.apply_snapshot(5, [(Decimal('1'), Decimal('1'))], [(Decimal('2'), Decimal('1'))])
    sync.on_depth(6, 6, [], [], 0.0)
    assert sync.synced
    sync.on_depth(9, 10, [], [], 0.0)
    assert _describe_break(sync) == 'after update 6 the next frame must have U <= 7, got U=9 u=10'
    sync.apply_snapshot(10, [(Decimal('1'), Decimal('1'))], [(Decimal('2'), Decimal('1'))])
    sync.on_depth(11, 11, [(Decimal('3'), Decimal('1'))], [], 0.0)
    assert _describe_break(sync) == 'best bid >= best ask after update 11'


@pytest.mark.parametrize('kind', ['depth', 'trade'])
def test_resubscribing_resets_only_what_that_stream_owns(kind):
    from cryptofeed.exchanges.backpack.core.channels import TradeChannel
    ctx = context({})
    books = BookChannel(ctx, ['SOL-USDC'], max_depth=0, snapshot_limit=1000)
    trades = TradeChannel(ctx, ['SOL-USDC'], backfill_limit=100)
    books._not_before['SOL-USDC'] = 1.0
    if kind == 'depth':
        books.on_subscribe('SOL-USDC')
        assert 'SOL-USDC' not in books._not_before
    else:
        trades.on_subscribe('SOL-USDC')   # nothing delivered yet: nothing to backfill, no task
        assert not ctx.tasks and books._not_before == {'SOL-USDC': 1.0}
