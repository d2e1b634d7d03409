"""Account channels against a hostile exchange: one bad history row loses nothing, and hostile
values never reach a callback.

Everything goes through the real ``FeedHandler`` and the simulator's two controls for this
(``malformed_history_row`` damages one row of a REST answer; ``hostile_account`` sends one account
frame with one field replaced), posted over HTTP to ``/_sim/faults`` as a user would.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from decimal import Decimal

import aiohttp
import pytest
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import BALANCES, FILLED, FILLS, ORDER_INFO, POSITIONS

from cryptofeed.exchanges.backpack import BackpackConfig
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.feed_harness import Collector, running_feed, sim_config, wait_until

SECRET = base64.b64encode(bytes([11]) * 32).decode()
API_KEY = BackpackSigner(SECRET).public_key
MARKETS = ['SOL_USDC', 'SOL_USDC_PERP', 'BTC_USDC_PERP']
PRIVATE = [ORDER_INFO, FILLS, POSITIONS, BALANCES]
SYMBOLS = ['SOL-USDC', 'SOL-USDC-PERP', 'BTC-USDC-PERP']


def private_config(sim) -> dict:
    return sim_config(sim, enable_private_channels=True, auth={'private_key': SECRET})


@pytest.fixture
async def sim():
    async with BackpackSimulator(markets=MARKETS, seed=5, rate=0) as simulator:
        yield simulator


@pytest.fixture
async def trader(sim):
    async with BackpackRestClient.from_config(BackpackConfig(**private_config(sim))) as client:
        yield client


async def fault(sim, **body) -> dict:
    """Post a fault over HTTP, as the docs show; the answer echoes the normalised request."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f'{sim.rest_url}/_sim/faults', json=body) as response:
            answer = await response.json()
            assert response.status == 200, answer
            return answer['fault']


def subscribed(sim, stream: str) -> bool:
    return any(stream in conn.private for conn in sim._conns)


def running(sim, collector, **kwargs):
    return running_feed(sim, SYMBOLS, PRIVATE, collector, config=private_config(sim),
                        reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0, **kwargs)


async def market(trader, symbol: str, side: str, quantity: str) -> dict:
    return await trader.signed_post('orderExecute', '/api/v1/order',
                                    {'symbol': symbol, 'side': side, 'orderType': 'Market', 'quantity': quantity})


async def resting(trader, symbol: str, quantity: str = '1') -> dict:
    book = await trader.depth(symbol, 5)
    price = (Decimal(book['bids'][-1][0]) * Decimal('0.95')).quantize(Decimal('0.01'))
    return await trader.signed_post('orderExecute', '/api/v1/order', {
        'symbol': symbol, 'side': 'Bid', 'orderType': 'Limit', 'price': str(price), 'quantity': quantity})


def row_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and 'malformed REST row' in r.getMessage()]


async def away(sim, duration: float = 1.5) -> None:
    await fault(sim, fault='drop_connections', private_only=True, duration=duration)


async def reconnect_and_catch_up(sim, feed, collector, duration: float = 0.3) -> None:
    """Drop the private connection and wait for the next catch-up to end (balances come last)."""
    subscribes, balances = feed._account._subscribes, len(collector.items[BALANCES])
    await away(sim, duration)
    await wait_until(lambda: feed._account._subscribes > subscribes
                     and len(collector.items[BALANCES]) >= balances + len(feed._account.balances), timeout=10)


# ------------------------------------------------------------------ 1. one malformed history row

@pytest.mark.parametrize('field,value', [('quantity', 'abc'), ('side', 'Buy'), ('tradeId', None)])
async def test_one_malformed_fill_row_loses_no_other_fill_and_is_recovered_once_clean(sim, trader, caplog,
                                                                                     field, value):
    collector = Collector()
    with caplog.at_level(logging.INFO, logger=package_log.root()):
        async with running(sim, collector) as feed:
            await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
            await away(sim)
            await fault(sim, fault='malformed_history_row', path='/wapi/v1/history/fills', field=field, value=value,
                        count=1)
            orders = [await market(trader, symbol, side, quantity) for symbol, side, quantity in (
                ('SOL_USDC', 'Bid', '3'), ('SOL_USDC_PERP', 'Ask', '4'), ('SOL_USDC', 'Ask', '1'),
                ('BTC_USDC_PERP', 'Bid', '0.5'), ('SOL_USDC_PERP', 'Bid', '2'))]
            # The catch-up is over when the balances came again (they come last).
            await wait_until(lambda: feed._account._subscribes == 2 and len(collector.items[BALANCES]) >= 8,
                             timeout=10)
            await asyncio.sleep(0.3)
            history = await trader.fill_history(limit=1000, sort_direction='Asc')   # the answer it had, clean
            assert len(history) >= 5
            bad = history[len(history) // 2]                       # the row the fault damaged
            good = [(str(r['tradeId']), r['orderId']) for r in history if r is not bad]
            delivered = [(f.id, f.order_id) for f in collector.items[FILLS]]
            assert sorted(delivered) == sorted(good) and len(set(delivered)) == len(delivered)   # all others, once
            assert feed.metrics.parse_errors == 1 and feed.metrics.callback_errors == 0
            assert feed._account._subscribes == 2                  # no reconnect loop
            # The other account channels caught up too.
            statuses = {o.id: o.status for o in collector.items[ORDER_INFO]}
            assert all(statuses.get(o['id']) == FILLED for o in orders)

            # The next catch-up reads the history again from the damaged row: now clean, it arrives once.
            await away(sim, 0.5)
            await wait_until(lambda: len(collector.items[FILLS]) == len(history), timeout=10)
            await asyncio.sleep(0.5)
            snap = feed.metrics_snapshot()
    keys = [(f.id, f.order_id) for f in collector.items[FILLS]]
    assert sorted(keys) == sorted((str(r['tradeId']), r['orderId']) for r in history) and len(set(keys)) == len(keys)
    assert keys[-1] == (str(bad['tradeId']), bad['orderId'])
    assert snap['parse_errors'] == 1 and snap['account']['subscribes'] == 3
    warnings = row_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert f'order {bad["orderId"]}' in warnings[0] and '/wapi/v1/history/fills' in warnings[0]
    if field != 'tradeId':
        assert f'trade {bad["tradeId"]}' in warnings[0]


async def test_a_row_that_stays_malformed_is_skipped_and_counted_and_nothing_else_stops(sim, trader, caplog):
    collector = Collector()
    with caplog.at_level(logging.INFO, logger=package_log.root()):
        async with running(sim, collector) as feed:
            await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
            await away(sim)
            await fault(sim, fault='malformed_history_row', path='/wapi/v1/history/fills', field='tradeId',
                        value=None, count=100)
            for side in ('Bid', 'Ask', 'Bid'):
                await market(trader, 'SOL_USDC', side, '1')
            history = await trader.fill_history(limit=1000, sort_direction='Asc')
            await wait_until(lambda: len(collector.items[FILLS]) >= len(history) - 1, timeout=10)
            await wait_until(lambda: len(collector.items[BALANCES]) >= 8)   # the first catch-up is over
            for _ in range(4):     # four more catch-ups; the fills are less than the 1 s margin apart: all re-read
                await reconnect_and_catch_up(sim, feed, collector)
            await asyncio.sleep(0.3)
            snap = feed.metrics_snapshot()
    assert len(collector.items[FILLS]) == len(history) - 1
    # Counted each time it was read, logged once; retried by the next three catch-ups, then given up.
    assert snap['parse_errors'] == 5 and snap['account']['subscribes'] == 6
    assert len(row_warnings(caplog)) == 1
    assert sum('giving up' in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 1


async def test_a_malformed_order_history_row_loses_no_other_closed_order(sim, trader):
    collector = Collector()
    async with running(sim, collector) as feed:
        await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
        opened = [await resting(trader, 'SOL_USDC') for _ in range(3)]
        await wait_until(lambda: {o['id'] for o in opened} <= {o.id for o in collector.items[ORDER_INFO]})
        await away(sim)
        await fault(sim, fault='malformed_history_row', path='/wapi/v1/history/orders', field='price', value='NaN')
        for order in opened:
            await trader.signed_delete('orderCancel', '/api/v1/order', {'symbol': 'SOL_USDC', 'orderId': order['id']})
        await wait_until(lambda: all(any(o.id == i['id'] and o.status == 'cancelled'
                                         for o in collector.items[ORDER_INFO]) for i in opened), timeout=10)
        await asyncio.sleep(0.3)
        # The damaged row was skipped (and counted); the order it describes, still open as far as the feed
        # knew, was then looked up on its own, so its final state arrived too.
        assert feed.metrics.parse_errors == 1 and feed._account._subscribes == 2
        assert not feed._account.open_orders


async def test_a_malformed_open_order_row_is_skipped_without_being_taken_for_closed(sim, trader):
    collector = Collector()
    async with running(sim, collector) as feed:
        await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
        opened = [await resting(trader, 'SOL_USDC') for _ in range(3)]
        await wait_until(lambda: {o['id'] for o in opened} <= set(feed._account.open_orders))
        answer = await trader.open_orders()
        bad = answer[len(answer) // 2]['id']
        before = len(collector.items[ORDER_INFO])
        await fault(sim, fault='malformed_history_row', path='/api/v1/orders', field='quantity', value='Infinity')
        await away(sim, 0.3)
        await wait_until(lambda: feed._account._subscribes == 2 and len(collector.items[ORDER_INFO]) >= before + 2)
        await asyncio.sleep(0.3)
        again = [o.id for o in collector.items[ORDER_INFO][before:]]
        assert sorted(again) == sorted(o['id'] for o in opened if o['id'] != bad)
        assert bad in feed._account.open_orders                 # still open as far as the feed knows
        assert feed.metrics.parse_errors == 1


async def test_a_malformed_position_row_is_not_taken_for_a_closed_position(sim, trader):
    collector = Collector()

    def last(symbol):
        return [p for p in collector.items[POSITIONS] if p.symbol == symbol][-1]
    async with running(sim, collector) as feed:
        await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
        await market(trader, 'SOL_USDC_PERP', 'Bid', '2')
        await market(trader, 'BTC_USDC_PERP', 'Ask', '0.5')
        await wait_until(lambda: len(feed._account.positions) == 2)
        rows = await trader.positions()
        bad = rows[len(rows) // 2]['symbol'].replace('_', '-')
        await fault(sim, fault='malformed_history_row', path='/api/v1/position', field='netQuantity', value='NaN')
        before = len(collector.items[POSITIONS])
        await away(sim, 0.3)
        await wait_until(lambda: feed._account._subscribes == 2 and len(collector.items[POSITIONS]) > before)
        await asyncio.sleep(0.5)
        snap = feed.metrics_snapshot()
        assert last(bad).position != 0 and all(p.position != 0 for p in collector.items[POSITIONS][before:])
        assert set(feed._account.positions) == {'SOL-USDC-PERP', 'BTC-USDC-PERP'}
    assert snap['parse_errors'] == 1 and snap['callback_errors'] == 0 and snap['account']['subscribes'] == 2


# ------------------------------------------------------------------ 3. the same values over REST

@pytest.mark.parametrize('field,value', [('available', 'NaN'), ('available', 'Infinity'), ('locked', '-3'),
                                         ('staked', 'sNaN'), ('available', '1E+400')])
async def test_hostile_capital_values_never_become_balances(sim, trader, field, value):
    collector = Collector()
    async with running(sim, collector) as feed:
        await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
        state = dict(feed._account.balances)
        capital = await trader.balances()
        bad = sorted(capital)[len(capital) // 2]
        first = len(collector.items[BALANCES])
        await fault(sim, fault='malformed_history_row', path='/api/v1/capital', field=field, value=value)
        await away(sim, 0.3)
        await wait_until(lambda: len(collector.items[BALANCES]) >= first + len(capital) - 1)
        await asyncio.sleep(0.3)
        again = collector.items[BALANCES][first:]
        assert sorted(b.currency for b in again) == sorted(a for a in capital if a != bad)
        assert all(b.balance.is_finite() and b.reserved >= 0 for b in collector.items[BALANCES])
        assert feed._account.balances[bad] == state[bad]        # neither zeroed nor replaced
        assert feed.metrics.parse_errors == 1 and feed._account._subscribes == 2


# ------------------------------------------------------------------ 2. hostile values on the streams

HOSTILE = {
    'orderFill': [('l', v) for v in ('NaN', 'sNaN', 'Infinity', '1E+400', '-1', '0')]
    + [('L', v) for v in ('NaN', 'Infinity', '-100', '0', '1E+400')]
    + [('q', 'NaN'), ('q', '-1'), ('p', '0'), ('z', 'NaN'), ('z', '4.01'), ('Z', 'Infinity'), ('n', 'NaN'),
       ('n', 'Infinity'), ('n', '1E+400'), ('T', -1), ('T', 10 ** 20), ('E', -1), ('E', 10 ** 20), ('t', -5)],
    'orderAccepted': [('p', v) for v in ('0', '-1', 'NaN', 'sNaN', 'Infinity', '1E+400')]
    + [('q', 'NaN'), ('q', '-1'), ('q', '1E+400'), ('Q', 'NaN'), ('z', '4.01'), ('Z', '-1'), ('T', -1),
       ('T', 10 ** 20), ('c', -1)],
    'orderUpdate': [('p', '0'), ('p', 'Infinity'), ('q', 'sNaN'), ('z', '4.01'), ('z', '-2'), ('P', '0'),
                    ('T', 10 ** 20), ('E', -1)],
    'positionUpdate': [('q', v) for v in ('NaN', 'sNaN', 'Infinity', '1E+400', '-1E+400')]
    + [('B', 'NaN'), ('B', '-1'), ('P', 'NaN'), ('P', 'Infinity'), ('p', '-Infinity'), ('M', '-1'), ('b', 'NaN'),
       ('f', '-0.02'), ('n', '1E+400'), ('T', -1), ('T', 10 ** 20), ('E', 10 ** 20)],
    'balanceUpdate': [('A', v) for v in ('NaN', 'sNaN', 'Infinity', '1E+400', '-1')]
    + [('L', '-3'), ('L', 'NaN'), ('S', '-1'), ('E', -1), ('E', 10 ** 20), ('T', -1)],
}
CHANNEL = {'orderFill': FILLS, 'orderAccepted': ORDER_INFO, 'orderUpdate': ORDER_INFO,
           'positionUpdate': POSITIONS, 'balanceUpdate': BALANCES}
# Sound values of the legitimately signed fields: each is delivered (and ends the test as its control).
SIGNED = {'orderFill': ('n', '-0.0004'), 'orderAccepted': ('q', '0'), 'orderUpdate': ('z', '0.01'),
          'positionUpdate': ('q', '-0.01'), 'balanceUpdate': ('L', '0')}


def account_state(feed):
    account = feed._account
    return ({i: (o.status, o.price, o.amount, o.remaining) for i, o in account.open_orders.items()},
            {s: (p.position, p.entry_price, p.unrealised_pnl) for s, p in account.positions.items()},
            {a: (b.balance, b.reserved) for a, b in account.balances.items()}, len(account.ledger))


@pytest.mark.parametrize('event', list(HOSTILE))
async def test_hostile_account_values_are_parse_errors_and_never_reach_callbacks_or_state(sim, trader, event):
    collector = Collector()
    async with running(sim, collector) as feed:
        await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.orderUpdate'))
        await market(trader, 'SOL_USDC_PERP', 'Bid', '1')                # a real position to leave untouched
        await wait_until(lambda: 'SOL-USDC-PERP' in feed._account.positions and len(feed._account.ledger) >= 1)
        await asyncio.sleep(0.2)
        state = account_state(feed)
        counts = {channel: len(collector.items[channel]) for channel in PRIVATE}
        for field, value in HOSTILE[event]:
            await fault(sim, fault='hostile_account', event=event, field=field, value=value)
        field, value = SIGNED[event]
        await fault(sim, fault='hostile_account', event=event, field=field, value=value)   # the control
        channel = CHANNEL[event]
        await wait_until(lambda: len(collector.items[channel]) > counts[channel])
        await asyncio.sleep(0.2)
        snap = feed.metrics_snapshot()
        after = account_state(feed)
        got = {c: collector.items[c][counts[c]:] for c in PRIVATE}
    assert snap['parse_errors'] == len(HOSTILE[event]) and snap['callback_errors'] == 0
    assert snap['account']['subscribes'] == 1                              # the connection survived them all
    (control,) = got[channel]
    if event == 'orderFill':
        assert control.fee == Decimal(value) and control.price > 0 and control.amount > 0
        assert len(got[ORDER_INFO]) == 1 and after[3] == state[3] + 1 and after[:3] == state[:3]
    elif event in ('orderAccepted', 'orderUpdate'):
        assert control.price > 0 and control.remaining >= 0
        assert set(after[0]) - set(state[0]) == {control.id} and after[1:] == state[1:]
    elif event == 'positionUpdate':
        assert control.position == Decimal(value) and control.side == 'short'
        assert after[0] == state[0] and after[2:] == state[2:]
    else:
        assert (control.balance, control.reserved) == state[2]['USDC'] and after == state
    others = [c for c in PRIVATE if c != channel and not (event == 'orderFill' and c == ORDER_INFO)]
    assert not any(got[c] for c in others)


async def test_position_frame_with_nan_size_is_a_parse_error_not_a_callback_error(sim, trader, caplog):
    collector = Collector()
    with caplog.at_level(logging.WARNING):
        await _position_nan(sim, collector)
    (warning,) = [r.getMessage() for r in caplog.records if 'frame dropped (invalid)' in r.getMessage()]
    assert 'stream=account.positionUpdate' in warning and '(SOL_USDC_PERP): q=NaN' in warning


async def _position_nan(sim, collector):
    async with running(sim, collector) as feed:
        await wait_until(lambda: collector.items[BALANCES] and subscribed(sim, 'account.positionUpdate'))
        count = len(collector.items[BALANCES])
        await fault(sim, fault='hostile_account', event='positionUpdate', field='q', value='NaN')
        await fault(sim, fault='hostile_account', event='balanceUpdate', field='S', value='0')   # a control
        await wait_until(lambda: len(collector.items[BALANCES]) > count)
        await asyncio.sleep(0.2)
        assert feed.metrics.callback_errors == 0 and feed.metrics.parse_errors == 1
        assert not collector.items[POSITIONS]


async def test_the_controls_are_refused_with_a_reason_when_malformed(sim):
    async with aiohttp.ClientSession() as http:
        for body, reason in (({'fault': 'hostile_account', 'event': 'orderCancel', 'field': 'p', 'value': '1'}, 'event'),
                             ({'fault': 'hostile_account', 'event': 'orderFill', 'value': '1'}, 'field'),
                             ({'fault': 'hostile_account', 'event': 'orderFill', 'field': 'p'}, 'value'),
                             ({'fault': 'malformed_history_row', 'path': '/api/v1/depth', 'field': 'p', 'value': 1},
                              'path'),
                             ({'fault': 'malformed_history_row', 'path': '/wapi/v1/history/fills', 'field': 'p',
                               'value': [1]}, 'value')):
            async with http.post(f'{sim.rest_url}/_sim/faults', json=body) as response:
                answer = await response.json()
            assert response.status == 400 and reason in answer['message'], answer
