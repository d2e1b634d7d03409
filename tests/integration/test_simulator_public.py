"""The simulator's public side over real sockets: REST and WS shapes, book sync, TLS, the CLI.

Clients here are plain ``aiohttp`` and ``websockets`` (never a cryptofeed feed): the point is to
show that the simulator speaks the protocol of backpack-api.md, so shapes are compared with the
fixture payloads derived from that document and the book is rebuilt with the §9 algorithm.
"""
from __future__ import annotations

import asyncio
import calendar
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Optional

import aiohttp
import pytest
import websockets

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.conftest import get_json, load_fixture

WS_FIXTURES = load_fixture('sim_ws_frames.json')
REST_FIXTURES = load_fixture('sim_rest_responses.json')
SECRET = 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE='
NAIVE_SPACE = re.compile(r'^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$')
NAIVE_T = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$')


# ------------------------------------------------------------------------------------ helpers

def shape(value: Any) -> Any:
    """The JSON type skeleton of a value: dict keys kept, list reduced to its first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'int'
    return {str: 'str', float: 'float', type(None): 'null'}[type(value)]


def assert_same_shape(actual: Any, expected: Any, where: str = '$') -> None:
    """Same keys and JSON types; an empty list on either side matches any list."""
    sa, se = shape(actual), shape(expected)
    _compare(sa, se, where)


def _compare(a: Any, e: Any, where: str) -> None:
    if isinstance(e, dict):
        assert isinstance(a, dict), f'{where}: expected object, got {a}'
        assert set(a) == set(e), f'{where}: keys differ: extra {set(a) - set(e)}, missing {set(e) - set(a)}'
        for k in e:
            _compare(a[k], e[k], f'{where}.{k}')
    elif isinstance(e, list):
        assert isinstance(a, list), f'{where}: expected array, got {a}'
        if a and e:
            _compare(a[0], e[0], f'{where}[0]')
    else:
        assert a == e, f'{where}: expected {e}, got {a}'


def book_of(levels: list[list[str]]) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in levels}


class BookSync:
    """The client procedure of backpack-api.md §9, written from the document."""

    def __init__(self) -> None:
        self.buffer: list[dict] = []
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.last_id: Optional[int] = None
        self.wants_snapshot = False
        self.fresh = False
        self.snapshots = 0
        self.gaps = 0
        self.frames = 0

    def on_delta(self, data: dict) -> None:
        self.frames += 1
        if self.last_id is None:
            self.buffer.append(data)
            self.wants_snapshot = True
            return
        if data['u'] <= self.last_id:
            return
        if data['U'] > self.last_id + 1 or (data['U'] != self.last_id + 1 and not self.fresh):
            self.gaps += 1
            self.last_id = None
            self.buffer = [data]
            self.wants_snapshot = True
            return
        self._apply(data)

    def on_snapshot(self, snap: dict) -> None:
        self.snapshots += 1
        last = int(snap['lastUpdateId'])
        pending = [f for f in self.buffer if f['u'] > last]
        if pending and pending[0]['U'] > last + 1:
            self.buffer = pending
            return
        self.bids, self.asks = book_of(snap['bids']), book_of(snap['asks'])
        self.last_id = last
        self.fresh = True
        self.buffer = []
        self.wants_snapshot = False
        for frame in pending:
            self.frames -= 1
            self.on_delta(frame)

    def _apply(self, data: dict) -> None:
        self.fresh = False
        for side, levels in ((self.bids, data['b']), (self.asks, data['a'])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.last_id = data['u']


async def subscribe(ws, *streams: str, **extra) -> None:
    await ws.send(json.dumps({'method': 'SUBSCRIBE', 'params': list(streams), **extra}))


async def drive_sync(ws, http: aiohttp.ClientSession, sim: BackpackSimulator, symbol: str, stream: str,
                     sync: BookSync, until: Callable[[BookSync], bool], timeout: float = 10.0) -> None:
    """Feed ``stream`` frames to ``sync`` (fetching snapshots when it asks) until ``until(sync)``."""
    deadline = time.monotonic() + timeout
    while not until(sync):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f'sync did not converge (last_id={sync.last_id}, gaps={sync.gaps})'
        try:
            raw = await asyncio.wait_for(ws.recv(), min(remaining, 0.5))
        except asyncio.TimeoutError:
            continue
        msg = json.loads(raw)
        if msg.get('stream') != stream:
            continue
        sync.on_delta(msg['data'])
        while sync.wants_snapshot:
            async with http.get(f'{sim.rest_url}/api/v1/depth', params={'symbol': symbol}) as resp:
                sync.on_snapshot(await resp.json())
            if sync.wants_snapshot:
                await asyncio.sleep(0.01)


async def collect(ws, wanted: set[str], timeout: float) -> dict[str, dict]:
    """The first frame of every stream in ``wanted`` (plus error frames under 'error')."""
    got: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while not wanted <= set(got):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f'no frame for {wanted - set(got)}'
        msg = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        got.setdefault(msg.get('stream', 'error'), msg)
    return got


# ------------------------------------------------------------------------------------ REST

async def test_rest_shapes_match_the_reference(http):
    async with BackpackSimulator(markets=['SOL_USDC', 'USDT_USDC', 'SOL_USDC_PERP'], rate=3000) as sim:
        await asyncio.sleep(0.3)
        base = sim.rest_url + '/api/v1'
        _, perp, _ = await get_json(http, base + '/market', symbol='SOL_USDC_PERP')
        assert_same_shape(perp, REST_FIXTURES['market_perp'])
        _, spot, _ = await get_json(http, base + '/market', symbol='USDT_USDC')
        expected = REST_FIXTURES['market_spot_usdt']
        assert {k: spot[k] for k in ('symbol', 'marketType', 'imfFunction', 'mmfFunction', 'fundingInterval')} == \
            {k: expected[k] for k in ('symbol', 'marketType', 'imfFunction', 'mmfFunction', 'fundingInterval')}
        assert spot['filters']['price']['tickSize'] == '0.0001' and spot['filters']['price']['maxPrice'] is None
        assert set(spot) == set(perp)
        # Spot markets carry the band object too (backpack-api.md 3.1 live captures), not null.
        assert_same_shape(spot['filters']['price']['meanMarkPriceBand'],
                          REST_FIXTURES['market_perp']['filters']['price']['meanMarkPriceBand'])
        _, ticker, _ = await get_json(http, base + '/ticker', symbol='SOL_USDC')
        assert_same_shape(ticker, REST_FIXTURES['ticker'])
        _, tickers, _ = await get_json(http, base + '/tickers')
        assert [t['symbol'] for t in tickers] == ['SOL_USDC', 'USDT_USDC', 'SOL_USDC_PERP']
        assert_same_shape(tickers[0], REST_FIXTURES['ticker'])
        _, depth, _ = await get_json(http, base + '/depth', symbol='SOL_USDC')
        assert_same_shape(depth, REST_FIXTURES['depth'])
        _, trades, _ = await get_json(http, base + '/trades', symbol='SOL_USDC', limit='5')
        assert len(trades) == 5
        assert_same_shape(trades, REST_FIXTURES['trades'])
        _, history, _ = await get_json(http, base + '/trades/history', symbol='SOL_USDC', limit='3', offset='2')
        assert_same_shape(history, REST_FIXTURES['trades'])
        _, klines, _ = await get_json(http, base + '/klines', symbol='SOL_USDC', interval='1m',
                                      startTime=str(int(time.time()) - 3600))
        assert_same_shape(klines, REST_FIXTURES['klines'])
        _, marks, _ = await get_json(http, base + '/markPrices')
        assert_same_shape(marks, REST_FIXTURES['markPrices'])
        assert [m['symbol'] for m in marks] == ['SOL_USDC_PERP']
        status, funding, headers = await get_json(http, base + '/fundingRates', symbol='SOL_USDC_PERP', limit='10')
        assert status == 200 and len(funding) == 10
        assert_same_shape(funding, REST_FIXTURES['fundingRates'])
        assert (headers['X-PAGE-SIZE'], headers['X-CURRENT-PAGE']) == ('10', '1')
        assert int(headers['X-TOTAL']) >= 48 and int(headers['X-PAGE-COUNT']) >= 5
        ends = [row['intervalEndTimestamp'] for row in funding]
        assert ends == sorted(ends, reverse=True) and all(NAIVE_T.match(e) for e in ends)
        _, oi_all, _ = await get_json(http, base + '/openInterest')
        assert_same_shape(oi_all, REST_FIXTURES['openInterest'])
        assert [r['symbol'] for r in oi_all] == ['SOL_USDC_PERP']
        _, oi_one, _ = await get_json(http, base + '/openInterest', symbol='SOL_USDC_PERP')
        assert isinstance(oi_one, list) and len(oi_one) == 1
        _, status_body, _ = await get_json(http, base + '/status')
        assert status_body == REST_FIXTURES['status']


PADDED_DECIMAL = re.compile(r'^-?\d+\.\d*0$|^-0$')


def padded_decimals(value: Any) -> list:
    """Every decimal string in a JSON document printed with trailing zeros (``"100.70"``)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in padded_decimals(v)]
    if isinstance(value, list):
        return [p for v in value for p in padded_decimals(v)]
    return [value] if isinstance(value, str) and PADDED_DECIMAL.match(value) else []


async def test_rest_decimals_are_printed_unpadded(http):
    """backpack-api.md 3.3: REST prints "100.7", never "100.70" (the streams keep the padding)."""
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC_PERP'], rate=3000) as sim:
        await asyncio.sleep(0.5)
        base = sim.rest_url + '/api/v1'
        since = str(int(time.time()) - 60)
        queries = [('/ticker', {'symbol': 'SOL_USDC'}), ('/tickers', {}), ('/depth', {'symbol': 'SOL_USDC'}),
                   ('/trades', {'symbol': 'SOL_USDC', 'limit': '1000'}),
                   ('/trades/history', {'symbol': 'BTC_USDC_PERP', 'limit': '1000'}),
                   ('/klines', {'symbol': 'SOL_USDC', 'interval': '1s', 'startTime': since}),
                   ('/markPrices', {}), ('/markPrices', {'marketType': 'SPOT'}),
                   ('/fundingRates', {'symbol': 'BTC_USDC_PERP', 'limit': '1000'}), ('/openInterest', {}),
                   ('/markets', {})]
        # A loaded machine makes the market slower: ask again until the answers hold plenty of
        # decimals with a fraction (every answer is checked each time).
        deadline = time.monotonic() + 15
        while True:
            decimals = 0
            for path, params in queries:
                status, body, _ = await get_json(http, base + path, **params)
                assert status == 200, path
                assert padded_decimals(body) == [], path
                decimals += len(re.findall(r'"-?\d+\.\d+"', json.dumps(body)))
            if decimals > 1000 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert decimals > 1000  # the check saw plenty of decimals with a fraction


async def test_rest_values_units_and_order(http):
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC_PERP'], rate=4000) as sim:
        await asyncio.sleep(0.4)
        sim.pause()
        base = sim.rest_url + '/api/v1'
        now_us = time.time_ns() // 1000
        _, depth, _ = await get_json(http, base + '/depth', symbol='SOL_USDC')
        assert isinstance(depth['lastUpdateId'], str) and int(depth['lastUpdateId']) == sim.book('SOL_USDC')['sequence']
        assert abs(depth['timestamp'] - now_us) < 5_000_000, 'depth timestamp is µs'
        for side in ('bids', 'asks'):
            prices = [Decimal(p) for p, _ in depth[side]]
            assert prices == sorted(prices), f'{side} ascending'
        assert Decimal(depth['bids'][-1][0]) < Decimal(depth['asks'][0][0]), 'best bid is the LAST bid'
        truth = sim.book('SOL_USDC')
        assert book_of(depth['bids']) == book_of(truth['bids']) and book_of(depth['asks']) == book_of(truth['asks'])
        _, five, _ = await get_json(http, base + '/depth', symbol='SOL_USDC', limit='5')
        assert len(five['bids']) == len(five['asks']) == 5
        assert five['bids'] == depth['bids'][-5:] and five['asks'] == depth['asks'][:5]

        truth_trades = sim.trades('SOL_USDC')
        assert len(truth_trades) > 20
        _, recent, _ = await get_json(http, base + '/trades', symbol='SOL_USDC', limit='1000')
        assert [t['id'] for t in recent] == [t['id'] for t in reversed(truth_trades)][:1000], 'newest first'
        assert abs(recent[0]['timestamp'] - now_us // 1000) < 5000, 'trade timestamp is ms'
        for row in recent[:20]:
            assert Decimal(row['quoteQuantity']) == Decimal(row['price']) * Decimal(row['quantity'])
        offset = len(truth_trades) - 3
        _, oldest, _ = await get_json(http, base + '/trades/history', symbol='SOL_USDC', limit='10',
                                      offset=str(offset))
        assert [t['id'] for t in oldest] == [t['id'] for t in truth_trades[:3]][::-1], 'offset reaches the start'
        truth_by_id = {t['id']: t for t in truth_trades}
        for row in oldest:
            ref = truth_by_id[row['id']]
            assert (Decimal(row['price']), Decimal(row['quantity']), row['isBuyerMaker']) == \
                (Decimal(ref['price']), Decimal(ref['quantity']), ref['side'] == 'Sell')

        _, ticker, _ = await get_json(http, base + '/ticker', symbol='SOL_USDC')
        assert all(isinstance(v, str) for v in ticker.values())
        first, last = Decimal(ticker['firstPrice']), Decimal(ticker['lastPrice'])
        assert (first, last) == (Decimal(truth_trades[0]['price']), Decimal(truth_trades[-1]['price']))
        assert Decimal(ticker['priceChangePercent']) == ((last - first) / first).quantize(Decimal('0.000001'))
        assert int(ticker['trades']) == len(truth_trades)

        _, klines, _ = await get_json(http, base + '/klines', symbol='SOL_USDC', interval='1s',
                                      startTime=str(int(time.time()) - 60))
        assert klines and all(NAIVE_SPACE.match(r['start']) and NAIVE_SPACE.match(r['end']) for r in klines)
        assert [r['start'] for r in klines] == sorted(r['start'] for r in klines), 'oldest first'
        assert sum(int(r['trades']) for r in klines) == len(truth_trades)
        assert sum(Decimal(r['volume']) for r in klines) == sum(Decimal(t['quantity']) for t in truth_trades)

        _, marks, _ = await get_json(http, base + '/markPrices', symbol='BTC_USDC_PERP')
        assert marks[0]['nextFundingTimestamp'] % 3_600_000 == 0
        assert 0 < marks[0]['nextFundingTimestamp'] - now_us // 1000 <= 3_600_000
        async with http.get(base + '/ping') as resp:
            assert resp.content_type == 'text/plain' and await resp.text() == 'pong'
        async with http.get(base + '/time') as resp:
            assert resp.content_type == 'text/plain' and abs(int(await resp.text()) - time.time() * 1000) < 5000


async def test_rest_markets_filter_and_errors(http):
    async with BackpackSimulator(rate=0) as sim:
        base = sim.rest_url + '/api/v1'
        _, everything, _ = await get_json(http, base + '/markets')
        symbols = [m['symbol'] for m in everything]
        for needed in ('SOL_USDC', 'BTC_USDC', 'ETH_USDC', 'USDT_USDC', 'SPCX.US_USDC', 'SOL_USDC_PERP',
                       'BTC_USDC_PERP', 'ETH_USDC_PERP', 'kPEPE_USDC_PERP'):
            assert needed in symbols
        for market in everything:
            assert_same_shape({k: market[k] for k in ('symbol', 'marketType', 'orderBookState', 'visible')},
                              {k: REST_FIXTURES['market_perp'][k]
                               for k in ('symbol', 'marketType', 'orderBookState', 'visible')})
        async with http.get(base + '/markets', params=[('marketType', 'SPOT')]) as resp:
            spot = await resp.json()
        assert spot and {m['marketType'] for m in spot} == {'SPOT'}
        async with http.get(base + '/markets', params=[('marketType', 'PERP')]) as resp:
            perp = await resp.json()
        assert perp and {m['marketType'] for m in perp} == {'PERP'}
        async with http.get(base + '/markets', params=[('marketType', 'SPOT'), ('marketType', 'PERP')]) as resp:
            assert len(await resp.json()) == len(everything)
        async with http.get(base + '/markets', params=[('marketType', 'PREDICTION')]) as resp:
            assert await resp.json() == []
        stock = next(m for m in everything if m['symbol'] == 'SPCX.US_USDC')
        assert stock['rwaMarketType'] == 'STOCK'

        status, body, _ = await get_json(http, base + '/depth', symbol='NOPE_USDC')
        assert (status, body['code']) == (400, 'INVALID_SYMBOL')
        assert_same_shape(body, REST_FIXTURES['error'])
        status, body, _ = await get_json(http, base + '/depth', symbol='SOL_USDC', limit='7')
        assert (status, body['code']) == (400, 'INVALID_CLIENT_REQUEST')
        status, body, _ = await get_json(http, base + '/trades', symbol='SOL_USDC', limit='1001')
        assert status == 400
        status, body, _ = await get_json(http, base + '/klines', symbol='SOL_USDC', interval='1m')
        assert (status, body['code']) == (400, 'INVALID_CLIENT_REQUEST')
        status, body, _ = await get_json(http, base + '/klines', symbol='SOL_USDC', interval='7m', startTime='0')
        assert status == 400
        status, body, _ = await get_json(http, base + '/ticker')
        assert status == 400
        status, body, _ = await get_json(http, base + '/nothing/here')
        assert (status, body['code']) == (404, 'RESOURCE_NOT_FOUND')
        status, body, _ = await get_json(http, sim.rest_url + '/')
        assert status == 426


# ------------------------------------------------------------------------------------ WebSocket

async def test_every_public_stream_has_the_reference_shape():
    streams = {
        'bookTicker': 'bookTicker.SOL_USDC_PERP', 'depth': 'depth.SOL_USDC_PERP',
        'depth_aggregated': 'depth.200ms.SOL_USDC_PERP', 'trade': 'trade.SOL_USDC_PERP',
        'ticker': 'ticker.SOL_USDC_PERP', 'kline': 'kline.1s.SOL_USDC_PERP', 'markPrice': 'markPrice.SOL_USDC_PERP',
        'openInterest': 'openInterest.SOL_USDC_PERP', 'liquidation': 'liquidation',
    }
    async with BackpackSimulator(markets=['SOL_USDC_PERP'], rate=3000, open_interest_interval=0.5,
                                 liquidation_probability=0.2) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, *streams.values())
            got = await collect(ws, set(streams.values()), timeout=8)
    assert 'error' not in got
    for key, name in streams.items():
        frame = got[name]
        assert frame['stream'] == name
        assert_same_shape(frame, WS_FIXTURES[key], where=name)
        data = frame['data']
        assert isinstance(data['E'], int) and data['E'] > 10 ** 15, 'E is µs'
        if isinstance(data.get('T'), int):
            assert data['T'] <= data['E'] and data['T'] > 10 ** 15
    # An aggregated frame spans the window's updates: U..u, one id when the window held one update.
    assert got['depth.200ms.SOL_USDC_PERP']['data']['U'] <= got['depth.200ms.SOL_USDC_PERP']['data']['u']
    mark = got['markPrice.SOL_USDC_PERP']['data']
    assert mark['n'] % 3_600_000 == 0 and 10 ** 12 < mark['n'] < 10 ** 13, 'n is ms'
    kline = got['kline.1s.SOL_USDC_PERP']['data']
    assert NAIVE_T.match(kline['t']) and NAIVE_T.match(kline['T'])


async def test_spot_and_symbol_edge_cases_stream():
    streams = ['depth.SPCX.US_USDC', 'trade.kPEPE_USDC_PERP', 'bookTicker.SPCX.US_USDC', 'depth.1000ms.kPEPE_USDC_PERP',
               'kline.1m.SPCX.US_USDC']
    async with BackpackSimulator(markets=['SPCX.US_USDC', 'kPEPE_USDC_PERP'], rate=3000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, *streams)
            got = await collect(ws, set(streams) - {'kline.1m.SPCX.US_USDC'}, timeout=5)
    assert got['depth.SPCX.US_USDC']['data']['s'] == 'SPCX.US_USDC'
    assert got['trade.kPEPE_USDC_PERP']['data']['s'] == 'kPEPE_USDC_PERP'
    assert_same_shape(got['bookTicker.SPCX.US_USDC'], WS_FIXTURES['bookTicker'])
    price = got['trade.kPEPE_USDC_PERP']['data']['p']
    assert re.match(r'^0\.\d{6}$', price), price


async def test_errors_no_ack_and_unsubscribe():
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=0, ticker_interval=3600,
                                 mark_interval=3600) as sim:
        async with websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, 'trade.SOL_USDC')
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            await subscribe(ws, 'depth.NOPE_USDC', 'bogus.SOL_USDC', 'markPrice.SOL_USDC', 'kline.7m.SOL_USDC',
                            'bookTicker.SOL_USDC')
            errors = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(4)]
            assert errors == [WS_FIXTURES['error_invalid_stream']] * 4
            await subscribe(ws, 'account.orderUpdate')
            assert json.loads(await asyncio.wait_for(ws.recv(), 2)) == WS_FIXTURES['error_invalid_signature']
            await ws.send('not json')
            assert json.loads(await asyncio.wait_for(ws.recv(), 2))['error']['code'] == 4000
            await ws.send(json.dumps({'method': 'SUBSCRIBE'}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 2))['error']['code'] == 4000
            # the valid stream of the mixed frame was subscribed: a taker order shows on it
            sim.model.execute_taker('SOL_USDC', 'Bid', sim.model.min_quantity('SOL_USDC'), None)
            sim.pause()
            frame = json.loads(await asyncio.wait_for(ws.recv(), 2))
            assert frame['stream'] in ('trade.SOL_USDC', 'bookTicker.SOL_USDC')
            await ws.send(json.dumps({'method': 'UNSUBSCRIBE', 'params': ['trade.SOL_USDC', 'bookTicker.SOL_USDC']}))
            await asyncio.sleep(0.1)
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.1)
                except asyncio.TimeoutError:
                    break
            sim.model.execute_taker('SOL_USDC', 'Ask', sim.model.min_quantity('SOL_USDC'), None)
            sim.pause()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)


async def test_private_streams_are_delegated_to_the_account_side(http):
    signer = BackpackSigner(SECRET)
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        async with websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, 'account.orderUpdate.SOL_USDC', signature=signer.ws_signature())
            order = {'symbol': 'SOL_USDC', 'side': 'Bid', 'orderType': 'Limit', 'price': '95.00', 'quantity': '1.00'}
            headers = signer.rest_headers('orderExecute', order)
            async with http.post(sim.rest_url + '/api/v1/order', json=order, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                placed = await resp.json()
            frame = json.loads(await asyncio.wait_for(ws.recv(), 2))
            assert frame['stream'] == 'account.orderUpdate.SOL_USDC'
            assert frame['data']['e'] == 'orderAccepted' and frame['data']['i'] == placed['id']
            assert isinstance(frame['data']['E'], int)


async def test_kline_closes_with_a_final_frame():
    async with BackpackSimulator(markets=['ETH_USDC'], rate=2000) as sim:
        async with websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, 'kline.1s.ETH_USDC')
            deadline = time.monotonic() + 5
            frames = []
            while not any(f['X'] and f['n'] for f in frames):
                assert time.monotonic() < deadline
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 3))['data'])
            final = next(f for f in frames if f['X'] and f['n'])
            sim.pause()
            start, end = start_epoch(final['t']), start_epoch(final['T'])
            assert end - start == 1
            _, rows, _ = await get_json_once(sim.rest_url + '/api/v1/klines', symbol='ETH_USDC', interval='1s',
                                             startTime=str(start), endTime=str(end))
            # The same values; REST prints them unpadded, the stream padded to the tick.
            assert Decimal(rows[0]['close']) == Decimal(final['c']) and Decimal(rows[0]['open']) == Decimal(final['o'])
            assert rows[0]['trades'] == str(final['n']) and Decimal(rows[0]['volume']) == Decimal(final['v'])


async def test_a_quiet_interval_closes_with_null_prices_and_volume():
    """backpack-api.md 8.1: a closed kline of an interval without trades has o/h/l/c and v null, n 0."""
    async with BackpackSimulator(markets=['ETH_USDC'], rate=200) as sim:
        sim.pause()  # no trades from now on
        async with websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, 'kline.1s.ETH_USDC')
            quiet = []
            deadline = time.monotonic() + 6
            while len(quiet) < 2:
                assert time.monotonic() < deadline
                frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
                if frame['data']['n'] == 0:
                    quiet.append(frame)
        for frame in quiet:
            data = frame['data']
            assert frame['stream'] == 'kline.1s.ETH_USDC'
            assert {k: data[k] for k in 'ohlcvnXe'} == {'o': None, 'h': None, 'l': None, 'c': None, 'v': None,
                                                        'n': 0, 'X': True, 'e': 'kline'}
            assert start_epoch(data['T']) - start_epoch(data['t']) == 1
        assert start_epoch(quiet[1]['data']['t']) == start_epoch(quiet[0]['data']['T'])  # one per interval


def start_epoch(naive: str) -> int:
    return calendar.timegm(time.strptime(naive, '%Y-%m-%dT%H:%M:%S'))


async def get_json_once(url: str, **params) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as session:
        return await get_json(session, url, **params)


async def test_book_ticker_ids_point_into_the_depth_sequence():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=3000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'bookTicker.SOL_USDC')
            tickers = [json.loads(await asyncio.wait_for(ws.recv(), 2))['data'] for _ in range(30)]
        sim.pause()
        for t in tickers:
            book = sim.book('SOL_USDC', sequence=t['u'])
            assert [t['b'], t['B']] == book['bids'][0] and [t['a'], t['A']] == book['asks'][0]


# ------------------------------------------------------------------------------------ §9 book sync

@pytest.mark.parametrize('stream, frames', [('depth.SOL_USDC', 40), ('depth.200ms.SOL_USDC', 3)])
async def test_section9_client_rebuilds_the_truth_book(http, stream, frames):
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], rate=4000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, stream)
            sync = BookSync()
            await drive_sync(ws, http, sim, 'SOL_USDC', stream, sync, lambda s: s.frames >= frames and s.last_id)
            sim.pause()
            truth = sim.book('SOL_USDC')
            await drive_sync(ws, http, sim, 'SOL_USDC', stream, sync, lambda s: s.last_id == truth['sequence'])
        assert sync.bids == book_of(truth['bids']) and sync.asks == book_of(truth['asks'])
        assert sync.gaps == 0 and sync.snapshots >= 1


async def test_section9_client_resyncs_through_injected_gaps(http):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=3000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.SOL_USDC')
            sync = BookSync()
            await drive_sync(ws, http, sim, 'SOL_USDC', 'depth.SOL_USDC', sync, lambda s: s.frames >= 20 and s.last_id)
            for round_ in range(2):
                async with http.post(sim.rest_url + '/_sim/faults',
                                     json={'fault': 'skip_sequence', 'symbol': 'SOL_USDC', 'count': 2}) as resp:
                    assert resp.status == 200
                await drive_sync(ws, http, sim, 'SOL_USDC', 'depth.SOL_USDC', sync,
                                 lambda s: s.gaps > round_ and s.last_id is not None and s.frames >= 5)
            async with http.post(sim.rest_url + '/_sim/pause') as resp:
                assert await resp.json() == {'paused': True}
            async with http.get(sim.rest_url + '/_sim/book', params={'symbol': 'SOL_USDC'}) as resp:
                truth = await resp.json()
            await drive_sync(ws, http, sim, 'SOL_USDC', 'depth.SOL_USDC', sync,
                             lambda s: s.last_id == truth['sequence'])
        assert sync.gaps == 2 and sync.snapshots >= 3
        assert sync.bids == book_of(truth['bids']) and sync.asks == book_of(truth['asks'])
        best = [Decimal(p) for p, _ in truth['bids']]
        assert best == sorted(best, reverse=True), 'truth bids best first'


async def test_trade_stream_matches_the_truth_log(http):
    async with BackpackSimulator(markets=['SOL_USDC_PERP'], rate=3000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'trade.SOL_USDC_PERP')
            received = [json.loads(await asyncio.wait_for(ws.recv(), 2))['data'] for _ in range(40)]
            sim.pause()
            while True:
                try:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2))['data'])
                except asyncio.TimeoutError:
                    break
        async with http.get(sim.rest_url + '/_sim/trades', params={'symbol': 'SOL_USDC_PERP'}) as resp:
            truth = await resp.json()
    ids = [t['t'] for t in received]
    assert ids == list(range(ids[0], ids[0] + len(ids))), 'sequential per-symbol ids, none missing'
    assert ids[-1] == truth[-1]['id']
    by_id = {t['id']: t for t in truth}
    for t in received:
        ref = by_id[t['t']]
        assert (t['p'], t['q']) == (ref['price'], ref['quantity'])
        assert ref['side'] == ('Sell' if t['m'] else 'Buy')
        assert t['T'] == ref['timestamp_us']


# ------------------------------------------------------------------------------------ TLS, CLI

async def test_tls_with_the_client_context():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=500, tls=True) as sim:
        assert sim.rest_url.startswith('https://127.0.0.1:') and sim.ws_url.startswith('wss://127.0.0.1:')
        assert Path(sim.ca_file).read_text().startswith('-----BEGIN CERTIFICATE-----')
        ctx = sim.client_ssl_context()
        assert isinstance(ctx, ssl.SSLContext)
        async with aiohttp.ClientSession() as session:
            async with session.get(sim.rest_url + '/api/v1/ping', ssl=ctx) as resp:
                assert await resp.text() == 'pong'
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.get(sim.rest_url + '/api/v1/ping', ssl=ssl.create_default_context()):
                    pass
        async with websockets.connect(sim.ws_url, ssl=ctx, max_queue=None) as ws:
            await subscribe(ws, 'depth.SOL_USDC')
            frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
            assert frame['stream'] == 'depth.SOL_USDC'
        ca_file = sim.ca_file
    assert not os.path.exists(ca_file), 'the CA directory is removed on shutdown'


async def test_cli_prints_one_json_line_and_exits_cleanly_on_sigterm():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, '-m', 'cryptofeed.exchanges.backpack.simulator', '--rate', '500', '--seed', '3',
        '--markets', 'SOL_USDC,SOL_USDC_PERP', '--ping-interval', '30',
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        info = json.loads(line)
        assert set(info) == {'rest_url', 'ws_url', 'ca_file'} and info['ca_file'] is None
        async with aiohttp.ClientSession() as session:
            async with session.get(info['rest_url'] + '/api/v1/markets') as resp:
                assert [m['symbol'] for m in await resp.json()] == ['SOL_USDC', 'SOL_USDC_PERP']
        async with websockets.connect(info['ws_url']) as ws:
            await subscribe(ws, 'depth.SOL_USDC')
            assert json.loads(await asyncio.wait_for(ws.recv(), 3))['stream'] == 'depth.SOL_USDC'
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        code = await asyncio.wait_for(proc.wait(), 10)
        rest = await proc.stdout.read()
        errors = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, errors
    assert rest == b'', 'exactly one line on stdout'
    assert 'listening on' in errors
