"""Private channels through a real FeedHandler against the simulator over TLS.

Orders are placed and cancelled with signed REST (the project's own ``BackpackRestClient``);
what the callbacks receive on ORDER_INFO, FILLS, POSITIONS and BALANCES is compared with what the
exchange's REST API says afterwards.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import re
from decimal import Decimal

import aiohttp
import pytest
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import BALANCES, CANCELLED, FILLED, FILLS, L2_BOOK, ORDER_INFO, POSITIONS, TRADES

from cryptofeed.exchanges.backpack import BackpackConfig, BackpackFeed
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.feed_harness import Collector, running_feed, sim_config, wait_until

SECRET = base64.b64encode(bytes([7]) * 32).decode()
OTHER_SECRET = base64.b64encode(bytes([8]) * 32).decode()
MARKETS = ['SOL_USDC', 'SOL_USDC_PERP']
PRIVATE = [ORDER_INFO, FILLS, POSITIONS, BALANCES]


def private_config(sim, secret: str = SECRET, **extra) -> dict:
    return sim_config(sim, enable_private_channels=True, auth={'private_key': secret}, **extra)


@pytest.fixture
async def sim():
    async with BackpackSimulator(markets=MARKETS, seed=3, rate=0, tls=True) as simulator:
        yield simulator


@pytest.fixture
async def trader(sim):
    async with BackpackRestClient.from_config(BackpackConfig(**private_config(sim))) as client:
        yield client


async def place(trader, **order) -> dict:
    return await trader.signed_post('orderExecute', '/api/v1/order', order)


async def cancel(trader, symbol: str, order_id: str) -> dict:
    return await trader.signed_delete('orderCancel', '/api/v1/order', {'symbol': symbol, 'orderId': order_id})


async def trade_a_little(trader) -> dict:
    """Market and limit orders, spot and perp, some cancelled; order id -> final REST status."""
    final = {}
    for order in ({'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Market', 'quantity': '2', 'clientId': 11},
                  {'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Market', 'quantity': '3'},
                  {'symbol': 'SOL_USDC_PERP', 'side': 'Ask', 'orderType': 'Market', 'quantity': '1'},
                  {'symbol': 'SOL_USDC', 'side': 'Ask', 'orderType': 'Market', 'quantity': '0.5'}):
        placed = await place(trader, **order)
        final[placed['id']] = placed['status']
    for symbol, side in (('SOL_USDC', 'Ask'), ('SOL_USDC_PERP', 'Bid')):
        book = await trader.depth(symbol, 5)
        # A few ticks away from the touch, on the passive side: it rests until cancelled.
        price = (Decimal(book['asks'][0][0]) * Decimal('1.02') if side == 'Ask'
                 else Decimal(book['bids'][-1][0]) * Decimal('0.98')).quantize(Decimal('0.01'))
        resting = await place(trader, symbol=symbol, side=side, orderType='Limit', price=str(price), quantity='1')
        assert resting['status'] == 'New'
        final[resting['id']] = (await cancel(trader, symbol, resting['id']))['status']
    return final


def last_by(items, key):
    out = {}
    for item in items:
        out[key(item)] = item
    return out


def fill_tuple(fill):
    return (fill.id, fill.order_id, fill.symbol, fill.side, fill.price, fill.amount, fill.fee, fill.liquidity)


def rest_fill_tuple(row):
    side = 'buy' if row['side'] == 'Bid' else 'sell'
    symbol = row['symbol'].replace('_', '-')
    return (str(row['tradeId']), row['orderId'], symbol, side, Decimal(row['price']), Decimal(row['quantity']),
            Decimal(row['fee']), 'maker' if row['isMaker'] else 'taker')


async def assert_account_matches_rest(collector, trader, final_status):
    statuses = {'Filled': FILLED, 'Cancelled': CANCELLED}
    orders = last_by(collector.items[ORDER_INFO], lambda o: o.id)
    await wait_until(lambda: all(i in orders and orders[i].status == statuses[s] for i, s in final_status.items())
                     or bool(orders.update(last_by(collector.items[ORDER_INFO], lambda o: o.id))), timeout=10)
    history = await trader.fill_history(limit=1000, sort_direction='Asc')
    await wait_until(lambda: len(collector.items[FILLS]) >= len(history), timeout=10)
    assert sorted(map(fill_tuple, collector.items[FILLS])) == sorted(map(rest_fill_tuple, history))
    assert all(f.raw['fee_asset'] in ('SOL', 'USDC') for f in collector.items[FILLS])

    positions = await trader.positions()
    expected_positions = {p['symbol'].replace('_', '-'): (Decimal(p['netQuantity']), Decimal(p['entryPrice']))
                          for p in positions}
    capital = await trader.balances()
    expected_balances = {asset: (Decimal(v['available']) + Decimal(v['locked']), Decimal(v['locked']))
                         for asset, v in capital.items()}

    def account_settled():
        got_positions = {s: (p.position, p.entry_price)
                         for s, p in last_by(collector.items[POSITIONS], lambda p: p.symbol).items() if p.position}
        got_balances = {a: (b.balance, b.reserved)
                        for a, b in last_by(collector.items[BALANCES], lambda b: b.currency).items()}
        return got_positions == expected_positions and got_balances == expected_balances
    await wait_until(account_settled, timeout=10)
    return history


async def test_orders_fills_positions_and_balances_end_equal_to_rest(sim, trader):
    collector = Collector()
    channels = [TRADES, L2_BOOK, *PRIVATE]
    async with running_feed(sim, ['SOL-USDC', 'SOL-USDC-PERP'], channels, collector,
                            config=private_config(sim)) as feed:
        await wait_until(lambda: collector.items[BALANCES], timeout=10)   # the /api/v1/capital snapshot
        assert {b.currency for b in collector.items[BALANCES]} == set(await trader.balances())
        final = await trade_a_little(trader)
        history = await assert_account_matches_rest(collector, trader, final)
        assert len(history) >= 4
        snap = feed.metrics_snapshot()
        assert snap['messages'][ORDER_INFO] > 0 and snap['messages'][BALANCES] > 0
        assert snap['account']['streams'] == ['account.balanceUpdate', 'account.orderUpdate',
                                              'account.positionUpdate']
        assert snap['auth_failures'] == 0 and snap['last_private_message_age_s'] is not None
        assert feed.health().status != 'unhealthy'
    perp = [p for p in collector.items[POSITIONS] if p.symbol == 'SOL-USDC-PERP']
    assert perp[-1].position == Decimal('2') and perp[-1].side == 'long'


async def test_every_market_without_listing_symbols_and_filtering_by_symbol(sim, trader):
    everything, only_perp = Collector(), Collector()
    config = private_config(sim)
    async with running_feed(sim, None, PRIVATE, everything, config=config,
                            subscription={c: [] for c in PRIVATE}):
        async with running_feed(sim, ['SOL-USDC-PERP'], PRIVATE, only_perp, config=config):
            await wait_until(lambda: everything.items[BALANCES] and only_perp.items[BALANCES])
            final = await trade_a_little(trader)
            await assert_account_matches_rest(everything, trader, final)
            await wait_until(lambda: len(only_perp.items[FILLS]) == len(
                [f for f in everything.items[FILLS] if f.symbol == 'SOL-USDC-PERP']))
    assert {o.symbol for o in everything.items[ORDER_INFO]} == {'SOL-USDC', 'SOL-USDC-PERP'}
    assert {o.symbol for o in only_perp.items[ORDER_INFO]} == {'SOL-USDC-PERP'}
    assert {f.symbol for f in only_perp.items[FILLS]} == {'SOL-USDC-PERP'}
    # BALANCES are per account, not per market: every asset either way.
    assert {b.currency for b in only_perp.items[BALANCES]} == {b.currency for b in everything.items[BALANCES]}


@pytest.mark.parametrize('config,missing', [
    ({}, 'add enable_private_channels=True and auth='),
    ({'auth': {'private_key': SECRET}}, 'add enable_private_channels=True to the BackpackConfig'),
])
def test_private_channels_without_the_settings_fail_at_construction(config, missing):
    with pytest.raises(BackpackConfigError) as info:
        BackpackFeed(config=config, symbols=['SOL-USDC'], channels=[TRADES, ORDER_INFO], callbacks={})
    assert missing in str(info.value) and 'ORDER_INFO' in str(info.value)


def test_enable_private_channels_no_longer_logs_that_it_has_no_effect(caplog):
    with caplog.at_level(logging.WARNING):
        feed = BackpackFeed(config={'enable_private_channels': True, 'auth': {'private_key': SECRET}},
                            symbols=['SOL-USDC'], channels=[TRADES, BALANCES], callbacks={})
    assert 'no effect' not in caplog.text
    assert feed._account is not None and feed.key_id == feed.backpack_config.auth.public_key


# ------------------------------------------------------------------ authentication and clock

def auth_errors(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and 'BackpackAuthError' in r.getMessage()]


async def test_wrong_key_clear_error_metric_health_no_tight_loop_and_public_data_flows(caplog):
    registered = BackpackSigner(SECRET).public_key
    async with BackpackSimulator(markets=MARKETS, seed=3, rate=150, tls=True, strict_keys=[registered]) as sim:
        collector = Collector()
        with caplog.at_level(logging.INFO, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [TRADES, ORDER_INFO, BALANCES], collector,
                                    config=private_config(sim, OTHER_SECRET), reconnect_backoff_base_s=0.2,
                                    reconnect_backoff_max_s=1.0) as feed:
                await wait_until(lambda: feed.metrics.auth_failures >= 3, timeout=15)
                failures, trades = feed.metrics.auth_failures, len(collector.items[TRADES])
                await asyncio.sleep(2.0)
                # Capped backoff: a handful of attempts in 2 s, not a tight loop.
                assert feed.metrics.auth_failures - failures <= 5
                assert len(collector.items[TRADES]) > trades          # public data keeps flowing
                report = feed.health()
                snap = feed.metrics_snapshot()
    assert report.status == 'unhealthy'
    assert any('authentication failed: key_rejected' in reason for reason in report.reasons)
    assert snap['auth_failures'] >= 3 and snap['auth_error'].startswith('key_rejected')
    assert not collector.items[ORDER_INFO] and not collector.items[BALANCES]
    errors = auth_errors(caplog)
    assert len(errors) == 1, errors                                   # one clear error per cause
    assert 'the API key is not accepted' in errors[0] and 'API key is not registered' in errors[0]
    assert SECRET not in caplog.text and OTHER_SECRET not in caplog.text


async def test_skewed_exchange_clock_is_measured_at_start_and_signed_with(caplog):
    async with BackpackSimulator(markets=MARKETS, seed=3, rate=0, tls=True, clock_offset_ms=45_000) as sim:
        collector = Collector()
        trader_config = BackpackConfig(**private_config(sim, clock_offset_ms=45_000))
        async with BackpackRestClient.from_config(trader_config) as trader:
            with caplog.at_level(logging.INFO, logger=package_log.root()):
                async with running_feed(sim, ['SOL-USDC'], PRIVATE, collector, config=private_config(sim)) as feed:
                    await wait_until(lambda: collector.items[BALANCES])
                    placed = await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quantity='1')
                    await wait_until(lambda: any(o.id == placed['id'] and o.status == FILLED
                                                 for o in collector.items[ORDER_INFO]))
                    offset = feed.metrics_snapshot()['account']['clock_offset_ms']
                    assert feed.metrics.auth_failures == 0
    assert abs(offset - 45_000) < 1_000
    assert "this machine's clock is" in caplog.text and 'behind the exchange' in caplog.text


async def test_clock_that_jumps_is_re_measured_after_the_auth_failure(caplog):
    async with BackpackSimulator(markets=MARKETS, seed=3, rate=0, tls=True) as sim:
        collector = Collector()
        with caplog.at_level(logging.INFO, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], PRIVATE, collector, config=private_config(sim),
                                    reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0) as feed:
                await wait_until(lambda: collector.items[BALANCES])
                sim.clock_offset_ms = -30_000                            # the exchange's clock steps back
                sim.inject({'fault': 'drop_connections', 'private_only': True})
                await wait_until(lambda: feed.metrics.auth_failures >= 1)
                assert feed.health().status == 'unhealthy'
                balances = len(collector.items[BALANCES])
                await wait_until(lambda: len(collector.items[BALANCES]) > balances, timeout=10)  # re-subscribed
                await wait_until(lambda: feed.metrics.auth_error is None, timeout=10)
                offset = feed.metrics_snapshot()['account']['clock_offset_ms']
    assert abs(offset + 30_000) < 1_000
    errors = auth_errors(caplog)
    assert len(errors) == 1 and 'expired' in errors[0]
    measured = re.search(r"measured now: this machine's clock is (\d+) ms ahead of the exchange's", errors[0])
    assert measured and abs(int(measured.group(1)) - 30_000) < 1_000


async def test_a_fixed_clock_offset_is_kept_and_an_expiry_is_explained(caplog):
    async with BackpackSimulator(markets=MARKETS, seed=3, rate=0, tls=True, clock_offset_ms=45_000) as sim:
        collector = Collector()
        with caplog.at_level(logging.INFO, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [BALANCES], collector,
                                    config=private_config(sim, clock_offset_ms=0), reconnect_backoff_base_s=0.2,
                                    reconnect_backoff_max_s=1.0) as feed:
                await wait_until(lambda: feed.metrics.auth_failures >= 1)
                report = feed.health()
    assert report.status == 'unhealthy'
    errors = auth_errors(caplog)
    assert len(errors) == 1
    assert 'expired' in errors[0] and 'signed with a clock offset of 0 ms' in errors[0]
    assert 'clock_offset_ms' in errors[0]
    measured = re.search(r"measured now: this machine's clock is (\d+) ms behind the exchange's", errors[0])
    assert measured and abs(int(measured.group(1)) - 45_000) < 1_000


# ------------------------------------------------------------------ nothing lost across a reconnect

async def test_a_fill_made_while_disconnected_arrives_once_in_order_before_newer_fills(sim, trader):
    collector = Collector()
    async with running_feed(sim, ['SOL-USDC', 'SOL-USDC-PERP'], PRIVATE, collector, config=private_config(sim),
                            reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0) as feed:
        await wait_until(lambda: collector.items[BALANCES])
        before = await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quantity='1')
        await wait_until(lambda: any(f.order_id == before['id'] for f in collector.items[FILLS]))

        seen_before = sum(o.id == before['id'] for o in collector.items[ORDER_INFO])
        sim.inject({'fault': 'drop_connections', 'private_only': True, 'duration': 1.5})
        missed = await place(trader, symbol='SOL_USDC_PERP', side='Ask', orderType='Market', quantity='2')
        book = await trader.depth('SOL_USDC', 5)
        price = str((Decimal(book['asks'][0][0]) * Decimal('1.02')).quantize(Decimal('0.01')))
        resting = await place(trader, symbol='SOL_USDC', side='Ask', orderType='Limit', price=price, quantity='1')
        await cancel(trader, 'SOL_USDC', resting['id'])
        assert not any(f.order_id == missed['id'] for f in collector.items[FILLS])   # really missed live
        assert sim.private_undelivered.get('account.orderUpdate', 0) >= 2           # nobody was subscribed

        await wait_until(lambda: feed.metrics.backfilled_fills >= 1, timeout=10)
        newer = await place(trader, symbol='SOL_USDC_PERP', side='Bid', orderType='Market', quantity='3')
        final = {before['id']: 'Filled', missed['id']: 'Filled', resting['id']: 'Cancelled', newer['id']: 'Filled'}
        history = await assert_account_matches_rest(collector, trader, final)
        snap = feed.metrics_snapshot()

    keys = [(f.id, f.order_id) for f in collector.items[FILLS]]
    assert len(keys) == len(set(keys)) == len(history)                     # exactly once
    order_ids = [f.order_id for f in collector.items[FILLS]]
    expected = [before['id']] * order_ids.count(before['id']) + [missed['id']] * order_ids.count(missed['id']) \
        + [newer['id']] * order_ids.count(newer['id'])
    assert order_ids == expected                                            # in order, before newer fills
    backfilled = [f for f in collector.items[FILLS] if f.order_id == missed['id']]
    assert snap['backfilled_fills'] == len(backfilled) >= 1
    assert all(f.type == 'market' and f.raw['fee_asset'] == 'USDC' for f in backfilled)
    cancelled = [o for o in collector.items[ORDER_INFO] if o.id == resting['id']]
    assert cancelled and cancelled[-1].status == CANCELLED                 # closed while away: re-emitted
    assert [o.status for o in collector.items[ORDER_INFO] if o.id == missed['id']][-1] == FILLED
    # An order that had closed before the disconnect is not emitted again.
    assert sum(o.id == before['id'] for o in collector.items[ORDER_INFO]) == seen_before
    assert snap['reconnects'] >= 1 and snap['auth_failures'] == 0
    # The position snapshot frames (no ``e``) sent on the re-subscribe were read, not dropped.
    assert not any(snap['drops_private'].values()) and snap['account']['subscribes'] == 2


async def test_the_signature_is_renewed_on_every_reconnect_and_reusing_the_first_is_rejected(sim, trader,
                                                                                             monkeypatch):
    signatures = []
    original = BackpackSigner.ws_signature

    def spy(self, **kwargs):
        signature = original(self, **kwargs)
        signatures.append(signature)
        return signature
    monkeypatch.setattr(BackpackSigner, 'ws_signature', spy)
    collector = Collector()
    config = private_config(sim, window_ms=1000)
    async with running_feed(sim, ['SOL-USDC'], PRIVATE, collector, config=config,
                            reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0):
        await wait_until(lambda: collector.items[BALANCES])
        first = await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quantity='1')
        await wait_until(lambda: any(o.id == first['id'] for o in collector.items[ORDER_INFO]))
        await asyncio.sleep(1.2)                                  # the first signature's window is over
        sim.inject({'fault': 'drop_connections', 'private_only': True})
        await wait_until(lambda: len(signatures) >= 2)
        second = await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quantity='1')
        await wait_until(lambda: any(o.id == second['id'] and o.status == FILLED
                                     for o in collector.items[ORDER_INFO]))
    assert signatures[0][0] == signatures[1][0]                   # same key
    assert int(signatures[1][2]) - int(signatures[0][2]) >= 1200 and signatures[0][1] != signatures[1][1]

    # The first signature, sent again now, is refused: a reconnect could not have reused it.
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(sim.ws_url, ssl=sim.client_ssl_context()) as ws:
            await ws.send_json({'method': 'SUBSCRIBE', 'params': ['account.orderUpdate'], 'signature': signatures[0]})
            reply = await ws.receive_json(timeout=5)
    assert reply == {'id': None, 'error': {'code': 4003, 'message': 'Invalid signature'}}


async def test_periodic_reconciliation_corrects_a_balance_the_stream_never_reported(sim, trader):
    collector = Collector()
    async with running_feed(sim, ['SOL-USDC'], [BALANCES], collector, config=private_config(sim),
                            reconcile_interval_s=0.3) as feed:
        await wait_until(lambda: collector.items[BALANCES])
        await asyncio.sleep(0.5)
        assert feed.metrics.reconciliation_corrections == 0              # nothing to correct yet
        # A change the account stream does not report (say, a deposit credited silently).
        sim.account.engine.account(BackpackSigner(SECRET).public_key).balance('USDC').available += Decimal('5')
        expected = Decimal((await trader.balances())['USDC']['available'])
        await wait_until(lambda: feed.metrics.reconciliation_corrections == 1)
        assert [b.balance for b in collector.items[BALANCES] if b.currency == 'USDC'][-1] == expected
        await asyncio.sleep(0.7)
        assert feed.metrics_snapshot()['reconciliation_corrections'] == 1  # corrected once, then in agreement


async def test_a_fill_both_streamed_and_in_the_backfill_is_delivered_once(sim, trader):
    """The fill happens after the signed subscribe but before the history answer: it is in both."""
    collector = Collector()
    async with running_feed(sim, ['SOL-USDC'], PRIVATE, collector, config=private_config(sim),
                            reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0) as feed:
        await wait_until(lambda: collector.items[BALANCES])
        first = await place(trader, symbol='SOL_USDC', side='Bid', orderType='Market', quantity='1')
        await wait_until(lambda: any(f.order_id == first['id'] for f in collector.items[FILLS]))
        sim.inject({'fault': 'slow_rest', 'path': '/wapi/v1/history/fills', 'delay': 1.5, 'count': 1})
        sim.inject({'fault': 'drop_connections', 'private_only': True})
        await wait_until(lambda: feed._account._subscribes == 2)         # re-subscribed, catching up
        await asyncio.sleep(0.3)
        overlap = await place(trader, symbol='SOL_USDC', side='Ask', orderType='Market', quantity='1')
        history = await trader.fill_history(limit=1000)
        await wait_until(lambda: len(collector.items[FILLS]) == len(history))
        await asyncio.sleep(0.3)
        state = feed.metrics_snapshot()['account']
    fills = [(f.id, f.order_id) for f in collector.items[FILLS]]
    assert len(fills) == len(set(fills)) == len(history)
    assert sum(f.order_id == overlap['id'] for f in collector.items[FILLS]) == sum(
        row['orderId'] == overlap['id'] for row in history) >= 1
    assert state['duplicate_fills'] >= 1                                  # the live copy was dropped


async def test_backfill_pages_through_the_history(sim, trader, monkeypatch):
    from cryptofeed.exchanges.backpack.core.channels import account
    monkeypatch.setattr(account, '_HISTORY_PAGE', 2)
    collector = Collector()
    async with running_feed(sim, ['SOL-USDC'], PRIVATE, collector, config=private_config(sim),
                            reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0) as feed:
        await wait_until(lambda: collector.items[BALANCES])
        sim.inject({'fault': 'drop_connections', 'private_only': True, 'duration': 1.5})
        missed = [await place(trader, symbol='SOL_USDC', side=side, orderType='Market', quantity='1')
                  for side in ('Bid', 'Ask', 'Bid', 'Ask', 'Bid')]
        history = await trader.fill_history(limit=1000, sort_direction='Asc')
        assert len(history) >= 5
        await wait_until(lambda: len(collector.items[FILLS]) == len(history), timeout=10)
        assert feed.metrics.backfilled_fills == len(history)
    assert [(f.id, f.order_id) for f in collector.items[FILLS]] == [
        (str(r['tradeId']), r['orderId']) for r in history]                # oldest first, all pages
    assert {f.order_id for f in collector.items[FILLS]} == {o['id'] for o in missed}


def test_private_channels_from_a_cryptofeed_yaml_file(tmp_path):
    path = tmp_path / 'config.yaml'
    path.write_text(f'backpack:\n  enable_private_channels: true\n  key_secret: "{SECRET}"\n')
    feed = BackpackFeed(config=str(path), symbols=['SOL-USDC'], channels=[TRADES, FILLS, BALANCES], callbacks={})
    assert feed._account is not None and feed._account.streams == ['account.balanceUpdate', 'account.orderUpdate']
    assert feed.key_id == BackpackSigner(SECRET).public_key


async def test_error_frame_4003_on_the_private_stream_is_an_auth_failure(caplog):
    """FILLS alone makes no REST call on the first subscribe: the refusal comes as error frame 4003."""
    registered = BackpackSigner(SECRET).public_key
    async with BackpackSimulator(markets=MARKETS, seed=3, rate=0, tls=True, strict_keys=[registered]) as sim:
        with caplog.at_level(logging.INFO, logger=package_log.root()):
            async with running_feed(sim, ['SOL-USDC'], [FILLS], Collector(), config=private_config(sim, OTHER_SECRET),
                                    reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0) as feed:
                await wait_until(lambda: feed.metrics.auth_failures >= 3, timeout=15)
                snap = feed.metrics_snapshot()
    errors = auth_errors(caplog)
    assert [e.split('private channels: ')[1].split(':')[0] for e in errors] == ['ws_rejected', 'key_rejected']
    assert 'error frame 4003: Invalid signature' in errors[0]
    assert snap['server_errors'] >= 1 and snap['auth_error'].startswith('key_rejected')


async def test_a_closed_position_is_emitted_with_size_zero_live_and_after_a_reconnect(sim, trader):
    collector = Collector()

    def last(symbol='SOL-USDC-PERP'):
        positions = [p for p in collector.items[POSITIONS] if p.symbol == symbol]
        return positions[-1] if positions else None
    async with running_feed(sim, ['SOL-USDC-PERP'], PRIVATE, collector, config=private_config(sim),
                            reconnect_backoff_base_s=0.2, reconnect_backoff_max_s=1.0):
        await wait_until(lambda: collector.items[BALANCES])
        await place(trader, symbol='SOL_USDC_PERP', side='Ask', orderType='Market', quantity='2')
        await wait_until(lambda: last() is not None and last().position == Decimal('-2'))
        assert last().side == 'short'
        await place(trader, symbol='SOL_USDC_PERP', side='Bid', orderType='Market', quantity='2')
        await wait_until(lambda: last().position == 0)                      # closed live
        assert last().side == 'short'
        await place(trader, symbol='SOL_USDC_PERP', side='Bid', orderType='Market', quantity='1')
        await wait_until(lambda: last().position == Decimal('1'))
        sim.inject({'fault': 'drop_connections', 'private_only': True, 'duration': 1.0})
        await place(trader, symbol='SOL_USDC_PERP', side='Ask', orderType='Market', quantity='1')
        await wait_until(lambda: last().position == 0, timeout=10)         # closed while away
        assert last().side == 'long' and await trader.positions() == []
