"""The simulator as a whole venue, over real sockets: hundreds of synthetic markets, markets listed
and delisted while clients are connected, the per-client REST rate limit and the per-connection
stream limit, and the truth counters of ``/_sim/stats``.

Clients are plain ``aiohttp`` and ``websockets``; every wait polls a condition with a deadline.
"""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any, Callable

import aiohttp
import pytest
import websockets

from cryptofeed.exchanges.backpack.simulator import BackpackSimulator, ListingError
from cryptofeed.exchanges.backpack.simulator.account import OrderRejected
from cryptofeed.exchanges.backpack.simulator.__main__ import main as simulator_main
from tests.conftest import get_json, load_fixture
from tests.inprocess import run_main

REFERENCE = load_fixture('sim_rest_responses.json')['market_perp']
KEY = 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='


# ------------------------------------------------------------------------------------ helpers

async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def subscribe(ws, *streams: str) -> None:
    await ws.send(json.dumps({'method': 'SUBSCRIBE', 'params': list(streams)}))


async def read_until(ws, done: Callable[[list], bool], timeout: float = 20.0, into: list = None) -> list:
    """Frames (parsed) read from ``ws`` until ``done(frames)``; fails after ``timeout`` s."""
    frames = [] if into is None else into
    deadline = time.monotonic() + timeout
    while not done(frames):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f'condition not met after {timeout} s ({len(frames)} frames read)'
        try:
            raw = await asyncio.wait_for(ws.recv(), min(remaining, 0.5))
        except asyncio.TimeoutError:
            continue
        frames.append(json.loads(raw))
    return frames


def of(frames: list, stream: str) -> list[dict]:
    return [f['data'] for f in frames if f.get('stream') == stream]


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'condition not met after {timeout} s'
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------------ synthetic markets

async def test_hundreds_of_synthetic_markets_over_a_few_connections(http):
    async with BackpackSimulator(synthetic_markets=300, rate=1500, seed=4) as sim:
        status, listed, _ = await get_json(http, sim.rest_url + '/api/v1/markets')
        assert status == 200 and len(listed) == 309
        symbols = [m['symbol'] for m in listed]
        assert symbols[9] == 'SYN001_USDC' and symbols[-1] == 'SYN300_USDC_PERP'
        by_symbol = {m['symbol']: m for m in listed}
        default_spot, default_perp = by_symbol['SOL_USDC'], by_symbol['SOL_USDC_PERP']
        for market in listed[9:]:
            perp = market['marketType'] == 'PERP'
            model = default_perp if perp else default_spot
            assert set(market) == set(model) == set(REFERENCE)
            assert set(market['filters']['price']) == set(model['filters']['price'])
            assert market['orderBookState'] == 'Open' and market['visible'] is True
            assert perp == market['symbol'].endswith('_PERP') == (int(market['symbol'][3:6]) % 3 == 0)
            assert (market['fundingInterval'] == 3600000) if perp else market['fundingInterval'] is None
        _, perps, _ = await get_json(http, sim.rest_url + '/api/v1/markets', marketType='PERP')
        assert len(perps) == 4 + 100
        _, assets, _ = await get_json(http, sim.rest_url + '/api/v1/assets')
        assert {'SYN001', 'SYN300', 'USDC', 'SOL'} <= {a['symbol'] for a in assets}

        # Depth and trades of every market over three connections (one SUBSCRIBE frame each).
        synthetic = symbols[9:]
        conns = [await websockets.connect(sim.ws_url, max_queue=None, max_size=None) for _ in range(3)]
        try:
            seen: dict[str, set] = {'depth': set(), 'trade': set()}

            async def reader(ws):
                async for raw in ws:
                    stream = json.loads(raw).get('stream', '')
                    channel, _, symbol = stream.partition('.')
                    if channel in seen:
                        seen[channel].add(symbol)

            for k, ws in enumerate(conns):
                await subscribe(ws, *[f'{c}.{s}' for s in synthetic[k::3] for c in ('depth', 'trade')])
            readers = [asyncio.create_task(reader(ws)) for ws in conns]
            await wait_for(lambda: sim.stats()['subscriptions'] == 600)
            await wait_for(lambda: len(seen['depth']) == 300 and len(seen['trade']) >= 250, timeout=60)
            assert seen['depth'] == set(synthetic)
            stats = sim.stats()
            assert stats['ws_connections'] == 3 and stats['subscriptions'] == 600
            # The loop is not starved: REST answers while 300 markets stream.
            status, depth, _ = await get_json(http, sim.rest_url + '/api/v1/depth', symbol='SYN150_USDC_PERP')
            assert status == 200 and len(depth['bids']) >= 10 and int(depth['lastUpdateId']) > 0
            status, trades, _ = await get_json(http, sim.rest_url + '/api/v1/trades', symbol='SYN001_USDC')
            assert status == 200 and trades
            for task in readers:
                task.cancel()
        finally:
            for ws in conns:
                await ws.close()


# ------------------------------------------------------------------------------------ listing and delisting

async def test_a_listed_market_streams_and_answers_rest(http):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=800) as sim:
        status, answer = await post(http, sim.rest_url + '/_sim/list', {'symbol': 'NEWCOIN_USDC'})
        assert status == 200 and answer['ok'] is True
        market = answer['market']
        assert market['symbol'] == 'NEWCOIN_USDC' and market['baseSymbol'] == 'NEWCOIN'
        assert market['marketType'] == 'SPOT' and market['orderBookState'] == 'Open' and set(market) == set(REFERENCE)
        _, listed, _ = await get_json(http, sim.rest_url + '/api/v1/markets')
        assert [m['symbol'] for m in listed] == ['SOL_USDC', 'NEWCOIN_USDC'] and listed[1] == market
        _, one, _ = await get_json(http, sim.rest_url + '/api/v1/market', symbol='NEWCOIN_USDC')
        assert one == market

        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.NEWCOIN_USDC', 'trade.NEWCOIN_USDC', 'bookTicker.NEWCOIN_USDC')
            frames = await read_until(ws, lambda fs: of(fs, 'depth.NEWCOIN_USDC') and of(fs, 'trade.NEWCOIN_USDC'))
        depth = of(frames, 'depth.NEWCOIN_USDC')
        assert all(d['s'] == 'NEWCOIN_USDC' and d['e'] == 'depth' for d in depth)
        assert [d['U'] for d in depth[1:]] == [d['u'] + 1 for d in depth[:-1]], 'gap-free'
        tick = Decimal(market['filters']['price']['tickSize'])
        trade = of(frames, 'trade.NEWCOIN_USDC')[0]
        assert Decimal(trade['p']) % tick == 0
        status, book, _ = await get_json(http, sim.rest_url + '/api/v1/depth', symbol='NEWCOIN_USDC')
        assert status == 200 and int(book['lastUpdateId']) >= depth[-1]['u']
        status, trades, _ = await get_json(http, sim.rest_url + '/api/v1/trades', symbol='NEWCOIN_USDC')
        assert status == 200 and trade['t'] in [t['id'] for t in trades]
        _, assets, _ = await get_json(http, sim.rest_url + '/api/v1/assets')
        assert 'NEWCOIN' in [a['symbol'] for a in assets]

        status, again = await post(http, sim.rest_url + '/_sim/list', {'symbol': 'NEWCOIN_USDC'})
        assert status == 400 and again == {'code': 'INVALID_CLIENT_REQUEST',
                                           'message': 'market NEWCOIN_USDC is already listed and open'}
        status, default = await post(http, sim.rest_url + '/_sim/list', {'symbol': 'SOL_USDC'})
        assert status == 400 and 'already listed and open' in default['message']
        for body, reason in (({'symbol': 'new coin'}, 'is not BASE_QUOTE'), ({}, 'the body must be'),
                             (['NEWCOIN_USDC'], 'the body must be'), ({'symbol': 'X_USDT_PERP'}, 'quoted in USDC')):
            status, refused = await post(http, sim.rest_url + '/_sim/list', body)
            assert status == 400 and reason in refused['message'], refused
        async with http.post(sim.rest_url + '/_sim/list', data=b'{not json') as resp:
            assert resp.status == 400 and 'must be JSON' in (await resp.json())['message']


async def test_a_listed_perpetual_has_mark_price_and_open_interest(http):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=500, open_interest_interval=1.0) as sim:
        market = sim.list_market('NEWCOIN_USDC_PERP')['market']
        assert market['marketType'] == 'PERP' and market['baseSymbol'] == 'NEWCOIN'
        assert market['fundingInterval'] == 3600000 and market['imfFunction']['type'] == 'sqrt'
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'markPrice.NEWCOIN_USDC_PERP', 'openInterest.NEWCOIN_USDC_PERP')
            frames = await read_until(ws, lambda fs: of(fs, 'markPrice.NEWCOIN_USDC_PERP')
                                      and of(fs, 'openInterest.NEWCOIN_USDC_PERP'))
        assert of(frames, 'markPrice.NEWCOIN_USDC_PERP')[0]['s'] == 'NEWCOIN_USDC_PERP'
        _, oi, _ = await get_json(http, sim.rest_url + '/api/v1/openInterest', symbol='NEWCOIN_USDC_PERP')
        assert Decimal(oi[0]['openInterest']) > 0
        _, rates, _ = await get_json(http, sim.rest_url + '/api/v1/fundingRates', symbol='NEWCOIN_USDC_PERP')
        assert len(rates) == 48


async def test_a_delisted_market_falls_silent_freezes_and_reopens(http):
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], rate=1000) as sim:
        symbol = 'NEWCOIN_USDC'
        streams = [f'{c}.{symbol}' for c in ('depth', 'trade', 'bookTicker', 'ticker', 'depth.200ms')]
        sim.list_market(symbol)
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, *streams, 'depth.SOL_USDC')
            frames = await read_until(ws, lambda fs: of(fs, f'trade.{symbol}') and of(fs, f'ticker.{symbol}'))

            status, answer = await post(http, sim.rest_url + '/_sim/delist', {'symbol': symbol})
            closed_us = time.time_ns() // 1000      # the simulator's clock (no clock offset here)
            assert status == 200 and answer['ok'] is True and answer['market']['orderBookState'] == 'Closed'
            seq, trades = sim.model.sequence(symbol), sim.trades(symbol)
            # The connection stays busy with SOL_USDC; the closed market sends nothing more, not even its
            # once-a-second ticker.
            after = len(frames)
            await read_until(ws, lambda fs: sum(f['data']['E'] > closed_us + 2_500_000
                                                for f in fs[after:] if f.get('stream') == 'depth.SOL_USDC') >= 20,
                             into=frames)
            late = [f for f in frames[after:] if f.get('stream') in streams]
            assert all(f['data']['E'] <= closed_us for f in late), late[:3]
            assert all(d['u'] <= seq for d in of(frames, f'depth.{symbol}'))
            assert sim.model.sequence(symbol) == seq and sim.trades(symbol) == trades

            _, listed, _ = await get_json(http, sim.rest_url + '/api/v1/markets')
            assert [m['orderBookState'] for m in listed] == ['Open', 'Open', 'Closed'], 'it stays listed'
            status, book, _ = await get_json(http, sim.rest_url + '/api/v1/depth', symbol=symbol)
            assert status == 200 and int(book['lastUpdateId']) == seq and book['bids'] and book['asks']
            status, rest_trades, _ = await get_json(http, sim.rest_url + '/api/v1/trades', symbol=symbol)
            assert status == 200 and rest_trades[0]['id'] == trades[-1]['id']
            with pytest.raises(OrderRejected, match='NEWCOIN_USDC is Closed'):
                sim.account.place_order(KEY, {'symbol': symbol, 'side': 'Bid', 'orderType': 'Market',
                                              'quantity': market_step(listed[2])})
            assert sim.stats()['subscriptions'] == len(streams) + 1, 'subscriptions stay'

            status, again = await post(http, sim.rest_url + '/_sim/delist', {'symbol': symbol})
            assert status == 400 and again['message'] == 'market NEWCOIN_USDC is already closed'
            status, unknown = await post(http, sim.rest_url + '/_sim/delist', {'symbol': 'NOPE_USDC'})
            assert status == 400 and 'unknown market' in unknown['message']
            with pytest.raises(ListingError, match='already closed'):
                sim.delist_market(symbol)

            status, reopened = await post(http, sim.rest_url + '/_sim/list', {'symbol': symbol})
            assert status == 200 and reopened['market']['orderBookState'] == 'Open'
            assert {**reopened['market'], 'orderBookState': 'Closed'} == answer['market']
            mark = len(frames)
            await read_until(ws, lambda fs: of(fs[mark:], f'depth.{symbol}') and of(fs[mark:], f'trade.{symbol}'),
                             into=frames)
        resumed = [d for d in of(frames[mark:], f'depth.{symbol}')]
        assert resumed[0]['U'] == seq + 1, 'the sequence carries on'
        assert of(frames[mark:], f'trade.{symbol}')[0]['t'] > trades[-1]['id']
        _, listed, _ = await get_json(http, sim.rest_url + '/api/v1/markets')
        assert [m['orderBookState'] for m in listed] == ['Open'] * 3


def market_step(market: dict) -> str:
    return market['filters']['quantity']['stepSize']


async def test_delisting_a_default_market_and_listing_with_bad_symbols_in_python():
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=0) as sim:
        closed = sim.delist_market('SOL_USDC_PERP')
        assert closed['ok'] is True and closed['market']['orderBookState'] == 'Closed'
        closed['market']['symbol'] = 'CHANGED'
        assert sim.model.market('SOL_USDC_PERP')['symbol'] == 'SOL_USDC_PERP', 'answers are copies'
        for bad in (None, 42, 'SOL'):
            with pytest.raises(ListingError):
                sim.list_market(bad)
        with pytest.raises(ListingError, match='unknown market 42'):
            sim.delist_market(42)
        assert sim.list_market('SOL_USDC_PERP')['market']['orderBookState'] == 'Open'
        # A default market left out of ``markets`` is listed with its own figures.
        btc = sim.list_market('BTC_USDC_PERP')['market']
        assert btc['filters']['price']['tickSize'] == '0.1' and btc['openInterestLimit'] == '1500'
        assert btc['createdAt'] != '2025-01-21T06:34:54.691858' and sim.model.market('BTC_USDC_PERP') == btc
        assert sim.model.mark_price('BTC_USDC_PERP') == Decimal('64998.7')


# ------------------------------------------------------------------------------------ REST rate limit

async def burst(http: aiohttp.ClientSession, url: str, count: int) -> tuple[list, float]:
    start = time.monotonic()
    answers = []
    for _ in range(count):
        async with http.get(url) as resp:
            answers.append((resp.status, resp.headers.get('Retry-After'), await resp.json(content_type=None)))
    return answers, time.monotonic() - start


async def test_past_the_rest_rate_limit_the_simulator_answers_429_and_counts_them(http):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, rest_rate_limit=2) as sim:
        answers, elapsed = await burst(http, sim.rest_url + '/api/v1/markets', 12)
        ok = [a for a in answers if a[0] == 200]
        refused = [a for a in answers if a[0] == 429]
        assert answers[:2] == [(200, None, answers[0][2])] * 2, 'a burst of R'
        assert refused and len(ok) <= 2 + 2 * elapsed + 1
        assert all(a[1] is not None and int(a[1]) >= 1 for a in refused)
        assert {json.dumps(a[2]) for a in refused} == {json.dumps({'code': 'TOO_MANY_REQUESTS',
                                                                   'message': 'Too many requests'})}
        # Signed endpoints and the controls are outside the limit; every request is counted.
        async with http.get(sim.rest_url + '/api/v1/capital') as resp:
            assert resp.status != 429
        status, stats, _ = await get_json(http, sim.rest_url + '/_sim/stats')
        assert status == 200
        assert stats['rest_429'] == len(refused) and stats['rest_requests'] == 13
        assert stats == {**sim.stats(), 'rest_429': len(refused), 'rest_requests': 13}
        assert sim.rest_limit.refused == len(refused)

        # After Retry-After seconds the bucket has a token again.
        await asyncio.sleep(int(refused[-1][1]))
        async with http.get(sim.rest_url + '/api/v1/ping') as resp:
            assert resp.status == 200


async def test_without_a_limit_nothing_is_refused_and_requests_are_counted(http):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        assert sim.rest_limit is None
        answers, _ = await burst(http, sim.rest_url + '/api/v1/depth?symbol=SOL_USDC&limit=5', 30)
        assert {a[0] for a in answers} == {200}
        assert sim.stats() == {'rest_requests': 30, 'rest_429': 0, 'ws_connections': 0, 'subscriptions': 0,
                               'ws_connections_total': 0, 'subscribe_refused': 0}


async def test_the_rate_limit_combines_with_the_429_fault_and_the_history_limit(http):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, rest_rate_limit=2,
                                 history_rate_limit=(1, 60.0), history_s=60, history_updates=500) as sim:
        url = sim.rest_url + '/api/v1/trades/history?symbol=SOL_USDC'
        sim.inject({'fault': 'http_status', 'status': 429, 'count': 1, 'retry_after': 7})
        answers, _ = await burst(http, url, 3)
        # The fault answers first (and spends no token), the bucket's burst of two lets the next two
        # through, the history budget of one takes the first of them and refuses the second.
        assert [(a[0], a[1]) for a in answers] == [(429, '7'), (200, None), (429, answers[2][1])]
        assert int(answers[2][1]) > 1 and sim.history_limit.refused == 1 and sim.rest_limit.refused == 0
        more, elapsed = await burst(http, url, 10)
        assert {a[0] for a in more} == {429}
        # Each refusal has one cause: a request the bucket refuses never reaches the history budget.
        assert sim.rest_limit.refused + sim.history_limit.refused == 11
        if elapsed < 3:
            assert sim.rest_limit.refused >= 1
        assert sim.stats()['rest_429'] == 12 and sim.stats()['rest_requests'] == 13


# ------------------------------------------------------------------------------------ stream limit

async def test_a_subscribe_past_the_stream_limit_gets_an_error_frame_and_nothing(http):
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], rate=1500, max_streams_per_connection=3) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.SOL_USDC', 'trade.SOL_USDC')
            await subscribe(ws, 'depth.ETH_USDC', 'trade.ETH_USDC', 'nonsense.ETH_USDC')
            frames = await read_until(ws, lambda fs: sum('error' in f for f in fs) == 2)
            errors = [f for f in frames if 'error' in f]
            assert errors[0] == {'id': None, 'error': {'code': 4006, 'message': 'Invalid stream'}}
            assert errors[1] == {'id': None, 'error': {
                'code': 4005, 'message': 'Too many streams: at most 3 per connection (max_streams_per_connection); '
                                         '2 subscribed, 2 more requested, none subscribed'}}
            assert sim.stats()['subscriptions'] == 2 and sim.stats()['subscribe_refused'] == 1
            # Re-subscribing what is held costs nothing; one more stream fits.
            await subscribe(ws, 'depth.SOL_USDC', 'bookTicker.ETH_USDC')
            mark = len(frames)
            await read_until(ws, lambda fs: len(of(fs[mark:], 'bookTicker.ETH_USDC')) >= 3
                             and len(of(fs[mark:], 'depth.SOL_USDC')) >= 50, into=frames)
            assert not of(frames, 'depth.ETH_USDC') and not of(frames, 'trade.ETH_USDC')
            assert sim.stats()['subscriptions'] == 3
            await subscribe(ws, 'trade.ETH_USDC')
            refused = await read_until(ws, lambda fs: any('error' in f for f in fs))
            assert [f for f in refused if 'error' in f][0]['error']['code'] == 4005
            # Unsubscribing makes room again.
            await ws.send(json.dumps({'method': 'UNSUBSCRIBE', 'params': ['bookTicker.ETH_USDC']}))
            await subscribe(ws, 'trade.ETH_USDC')
            await read_until(ws, lambda fs: of(fs, 'trade.ETH_USDC'))
            assert sim.stats()['subscriptions'] == 3 and sim.stats()['subscribe_refused'] == 2


async def test_without_a_stream_limit_a_connection_takes_every_stream():
    async with BackpackSimulator(synthetic_markets=150, rate=0) as sim:
        streams = [f'{c}.{s}' for s in sim.model.symbols for c in ('depth', 'trade', 'bookTicker', 'ticker')]
        # An unbounded receive queue: with the default one, frames unread when the test stops reading fill
        # it, and closing then waited out the ten-second close timeout for the server's close frame.
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, *streams)
            await wait_for(lambda: sim.stats()['subscriptions'] == len(streams) == 636)
            frames = await read_until(ws, lambda fs: len(fs) >= 100, timeout=30)
        assert not [f for f in frames if 'error' in f] and sim.stats()['ws_connections_total'] == 1


# ------------------------------------------------------------------------------------ the CLI

async def test_cli_options_for_the_whole_venue():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--rate', '300', '--markets', 'SOL_USDC',
        '--synthetic-markets', '30', '--rest-rate-limit', '2', '--max-streams-per-connection', '2',
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        async with aiohttp.ClientSession() as session:
            async with session.get(info['rest_url'] + '/api/v1/markets') as resp:
                listed = [m['symbol'] for m in await resp.json()]
            assert listed[0] == 'SOL_USDC' and listed[1:4] == ['SYN001_USDC', 'SYN002_USDC', 'SYN003_USDC_PERP']
            assert len(listed) == 31
            statuses = []
            for _ in range(6):
                async with session.get(info['rest_url'] + '/api/v1/ping') as resp:
                    statuses.append(resp.status)
            assert 429 in statuses
            async with websockets.connect(info['ws_url']) as ws:
                await subscribe(ws, 'depth.SYN001_USDC', 'trade.SYN001_USDC', 'depth.SYN002_USDC')
                error = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert error['error']['code'] == 4005 and 'at most 2 per connection' in error['error']['message']
            async with session.post(info['rest_url'] + '/_sim/list', json={'symbol': 'NEWCOIN_USDC'}) as resp:
                assert resp.status == 200
            async with session.get(info['rest_url'] + '/_sim/stats') as resp:
                stats = await resp.json()
            assert stats['rest_429'] == statuses.count(429) and stats['subscribe_refused'] == 1
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
        errors = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, errors
    assert 'market NEWCOIN_USDC listed' in errors


@pytest.mark.parametrize('args, message', [
    (['--synthetic-markets', '-1'], 'synthetic_markets must be an integer from 0 to'),
    (['--rest-rate-limit', '0'], 'rest_rate_limit must be a number of requests per second > 0'),
    (['--max-streams-per-connection', '0'], 'max_streams_per_connection must be an integer >= 1'),
])
def test_cli_refuses_bad_values_with_a_clear_error(args, message):
    result = run_main(simulator_main, args)   # in process: the value check, not the process, is the point
    assert result.returncode == 2 and message in result.stderr and result.stdout == ''
