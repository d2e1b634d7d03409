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


# -- symbols added and removed while running --------------------------------------------------------

class TradesRest:
    """``/api/v1/trades`` and ``/trades/history`` over a fixed list of trade ids."""

    def __init__(self, ids, on_call=None):
        self.ids = list(ids)
        self.on_call = on_call

    def _rows(self, ids):
        return [{'id': i, 'isBuyerMaker': False, 'price': '100.5', 'quantity': '1', 'timestamp': 1736186248745}
                for i in ids]

    async def trades(self, symbol, limit):
        if self.on_call is not None:
            self.on_call()
        return self._rows(self.ids[-limit:])

    async def trades_history(self, symbol, limit, offset):
        end = len(self.ids) - offset
        return self._rows(self.ids[max(0, end - limit):max(0, end)])


def trade_frame(trade_id: int):
    import json
    import cryptofeed.exchanges.backpack  # noqa: F401 - binds the records to the installed line's types
    from cryptofeed.exchanges.backpack.core.wire import messages as bp
    data = {'E': 1736186248745457, 'T': 1736186248744398, 'a': '1', 'b': '2', 'e': 'trade', 'm': True,
            'p': '218.50', 'q': '0.07', 's': 'SOL_USDC', 't': trade_id}
    return bp.ENVELOPE_DECODER.decode(json.dumps({'stream': 'trade.SOL_USDC', 'data': data})).data


def trade_recorder():
    from cryptofeed.exchanges.backpack.core.defines import TRADES
    got = []

    async def record(trade, receipt_ts):
        got.append(int(trade.id))
    return {TRADES: [record]}, got


@pytest.mark.parametrize('last_id,from_start,rest_ids,expected', [
    (102, False, range(98, 106), [103, 104, 105, 106]),   # every trade after the newest one at the add
    (None, True, range(7, 10), [7, 8, 9, 10]),            # a market without trades at the add: all of them
    (None, False, range(7, 10), [10]),                     # nothing known: from the first streamed
])
async def test_a_trade_stream_added_while_running_starts_where_it_was_added(last_id, from_start, rest_ids,
                                                                              expected):
    from cryptofeed.exchanges.backpack.core.channels import TradeChannel
    callbacks, got = trade_recorder()
    ctx = context(callbacks, rest_client=TradesRest(rest_ids))
    trades = TradeChannel(ctx, [], backfill_limit=100)
    trades.add('SOL-USDC', last_id, from_start=from_start)
    trades.on_subscribe('SOL-USDC')                       # the stream starts: the catch-up is fetched
    await trades.on_trade(trade_frame(10 if from_start or last_id is None else 106), 'SOL-USDC', None, 1.0)
    await asyncio.gather(*ctx.tasks)
    assert got == expected


async def test_a_removed_symbol_gets_nothing_from_a_catch_up_still_running():
    from cryptofeed.exchanges.backpack.core.channels import TradeChannel
    callbacks, got = trade_recorder()
    ctx = context(callbacks)
    trades = TradeChannel(ctx, [], backfill_limit=100)
    ctx._rest = TradesRest(range(98, 106), on_call=lambda: trades.remove('SOL-USDC'))
    trades.add('SOL-USDC', 100)
    trades.on_subscribe('SOL-USDC')
    await asyncio.gather(*ctx.tasks)
    assert got == [] and 'SOL-USDC' not in trades.sequencers
    await trades.on_trade(trade_frame(106), 'SOL-USDC', None, 1.0)   # a frame still in flight: dropped
    assert got == []


async def test_a_book_added_while_running_is_expected_in_sync_and_a_removed_one_forgotten_with_its_snapshot():
    class Rest:
        async def depth(self, symbol, limit):
            channel.remove('SOL-USDC')  # unsubscribed while the request is out
            return {'lastUpdateId': '5', 'bids': [['1', '1']], 'asks': [['2', '1']], 'timestamp': 1}

    ctx = context({L2_BOOK: []}, rest_client=Rest())
    channel = BookChannel(ctx, [], max_depth=0, snapshot_limit=1000)
    channel.add('SOL-USDC')
    assert ctx.metrics.snapshot()['books_out_of_sync'] == ['SOL-USDC']
    sync = channel.books['SOL-USDC']
    sync.snapshot_requested()
    await channel._snapshot('SOL-USDC')
    assert 'SOL-USDC' not in channel.books and not sync.synced
    assert ctx.metrics.snapshot()['snapshot_age_s'] == {} and ctx.metrics.rest_failures == 0


async def test_a_429_beyond_the_clients_retries_pauses_every_snapshot_worker(monkeypatch):
    from cryptofeed.exchanges.backpack.core.errors import BackpackRateLimitedError

    class Limited:
        async def depth(self, symbol, limit):
            raise BackpackRateLimitedError('429 TOO_MANY_REQUESTS', retry_after=3.0, status=429)

    now = [500.0]
    monkeypatch.setattr('cryptofeed.exchanges.backpack.core.channels.book.time.monotonic', lambda: now[0])
    ctx = context({L2_BOOK: []}, rest_client=Limited())
    channel = BookChannel(ctx, ['SOL-USDC', 'BTC-USDC'], max_depth=0, snapshot_limit=1000)
    channel.books['SOL-USDC'].snapshot_requested()
    await channel._snapshot('SOL-USDC')
    assert channel._paused_until == 503.0                # no worker asks for any book before then
