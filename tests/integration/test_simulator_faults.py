"""Every fault the simulator can inject does what its documentation says, seen from real clients.

Also covers the keepalive contract (server pings, closing silent clients) and pause/resume,
since several faults are about liveness. Clients are plain ``aiohttp`` and ``websockets``.
"""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from cryptofeed.exchanges.backpack.simulator.faults import FaultError
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator


async def subscribe(ws, *streams: str) -> None:
    await ws.send(json.dumps({'method': 'SUBSCRIBE', 'params': list(streams)}))


async def depth_frames(ws, count: int, timeout: float = 3.0) -> list[dict]:
    out = []
    while len(out) < count:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get('stream', '').startswith('depth.'):
            out.append(msg['data'])
    return out


async def post_fault(session: aiohttp.ClientSession, sim: BackpackSimulator, body) -> tuple[int, dict]:
    async with session.post(sim.rest_url + '/_sim/faults', json=body) as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


# ------------------------------------------------------------------------------------ depth stream faults

async def test_skip_sequence_leaves_exactly_the_requested_gap(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=2000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.SOL_USDC')
            before = await depth_frames(ws, 5)
            status, body = await post_fault(session, sim, {'fault': 'skip_sequence', 'symbol': 'SOL_USDC', 'count': 3})
            assert status == 200 and body == {'ok': True, 'fault': {'fault': 'skip_sequence', 'symbol': 'SOL_USDC',
                                                                    'count': 3}}
            # Frames sent before the fault took effect may still be queued (a loaded machine reads
            # behind the sender): read until 20 frames past the gap, or 600 frames at most.
            after = []
            while len(after) < 600:
                after += await depth_frames(ws, 20)
                frames = before + after
                jumps = [(a['u'], b['U']) for a, b in zip(frames, frames[1:]) if b['U'] != a['u'] + 1]
                if jumps and frames[-1]['u'] - jumps[0][1] >= 20:
                    break
    assert len(jumps) == 1
    prev_u, next_u = jumps[0]
    assert next_u - prev_u == 4, 'three ids skipped'
    assert all(f['U'] == f['u'] for f in frames), 'realtime frames carry one id each'


async def test_duplicate_sends_the_next_frames_twice():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=2000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.SOL_USDC')
            await depth_frames(ws, 3)
            sim.inject({'fault': 'duplicate', 'symbol': 'SOL_USDC', 'count': 2})
            frames = await depth_frames(ws, 40)
    ids = [f['u'] for f in frames]
    repeats = [a for a, b in zip(ids, ids[1:]) if a == b]
    assert len(repeats) == 2
    assert frames[ids.index(repeats[0])] == frames[ids.index(repeats[0]) + 1], 'an exact copy'
    assert sorted(set(ids)) == list(range(min(ids), max(ids) + 1)), 'nothing lost'


async def test_reorder_swaps_the_next_frames_in_pairs():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=2000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.SOL_USDC')
            await depth_frames(ws, 3)
            sim.inject({'fault': 'reorder', 'symbol': 'SOL_USDC', 'count': 4})
            # The frames sent before the fault may still be on their way (a busy machine reads
            # them late): the 40 looked at are the first ones sent after it.
            sent = sim.model.sequence('SOL_USDC')
            frames = []
            while len(frames) < 40:
                frames += [f for f in await depth_frames(ws, 1) if f['U'] > sent]
    ids = [f['U'] for f in frames]
    inversions = [i for i in range(1, len(ids)) if ids[i] < ids[i - 1]]
    assert len(inversions) == 2
    first = inversions[0]
    assert ids[first - 1] == ids[first] + 1, 'a swapped neighbour pair'
    assert sorted(ids) == list(range(min(ids), max(ids) + 1)), 'nothing lost or repeated'


async def test_frame_faults_on_an_aggregated_stream():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=3000) as sim:
        async with websockets.connect(sim.ws_url, max_queue=None) as ws:
            await subscribe(ws, 'depth.200ms.SOL_USDC')
            sim.inject({'fault': 'duplicate', 'symbol': 'SOL_USDC', 'stream': 'depth.200ms.SOL_USDC', 'count': 1})
            frames = await depth_frames(ws, 3)
    assert frames[0] == frames[1] and frames[2]['U'] == frames[1]['u'] + 1


# ------------------------------------------------------------------------------------ connections and liveness

async def test_drop_connections_aborts_every_socket(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=500) as sim:
        async with websockets.connect(sim.ws_url) as first, websockets.connect(sim.ws_url) as second:
            await subscribe(first, 'depth.SOL_USDC')
            await depth_frames(first, 1)
            status, _ = await post_fault(session, sim, {'fault': 'drop_connections'})
            assert status == 200
            for ws in (first, second):
                with pytest.raises(ConnectionClosedError) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 3)
                assert closed.value.rcvd is None, 'no Close frame: the TCP connection was cut'
        for _ in range(50):
            if sim.connections == 0:
                break
            await asyncio.sleep(0.02)
        assert sim.connections == 0
        async with websockets.connect(sim.ws_url) as again:
            await subscribe(again, 'depth.SOL_USDC')
            assert len(await depth_frames(again, 1)) == 1, 'new connections are accepted'


async def test_server_pings_and_closes_a_client_that_never_pongs():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, ping_interval=0.2, ping_timeout=0.6) as sim:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(sim.ws_url, autoping=False) as ws:
                started = time.monotonic()
                kinds = []
                while True:
                    msg = await asyncio.wait_for(ws.receive(), 3)
                    kinds.append(msg.type)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                elapsed = time.monotonic() - started
                assert kinds.count(aiohttp.WSMsgType.PING) >= 2
                assert kinds[-1] == aiohttp.WSMsgType.CLOSE and ws.close_code == 1011
                assert 0.55 < elapsed < 2.0


async def test_a_client_that_pongs_stays_connected():
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, ping_interval=0.2, ping_timeout=0.5) as sim:
        async with websockets.connect(sim.ws_url, ping_interval=None) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.3)
            assert sim.connections == 1


async def test_silence_pings_makes_a_client_liveness_check_fire(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, ticker_interval=3600, mark_interval=3600) as sim:
        async with websockets.connect(sim.ws_url, ping_interval=0.2, ping_timeout=0.4) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.8)
            status, body = await post_fault(session, sim, {'fault': 'silence_pings', 'duration': 5})
            assert status == 200 and body['fault'] == {'fault': 'silence_pings', 'duration': 5.0}
            started = time.monotonic()
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), 3)
            assert time.monotonic() - started < 1.5
            assert closed.value.sent is not None and closed.value.sent.code == 1011


async def test_hostile_depth_frames_follow_the_sequence_and_reach_depth_subscribers_only(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, ticker_interval=3600) as sim:
        async with websockets.connect(sim.ws_url) as quiet, websockets.connect(sim.ws_url) as depth:
            await subscribe(depth, 'depth.SOL_USDC')
            await asyncio.sleep(0.05)
            truth = sim.book('SOL_USDC')
            sim.inject({'fault': 'hostile_depth', 'kind': 'nan_size', 'symbol': 'SOL_USDC'})
            status, answer = await post_fault(session, sim, {'fault': 'hostile_depth', 'kind': 'snan_price'})
            assert status == 200 and answer['fault'] == {'fault': 'hostile_depth', 'kind': 'snan_price',
                                                         'symbol': 'SOL_USDC'}
            sim.inject({'fault': 'hostile_depth', 'kind': 'id_jump', 'symbol': 'SOL_USDC'})
            frames = [json.loads(await asyncio.wait_for(depth.recv(), 2))['data'] for _ in range(3)]
            nxt = truth['sequence'] + 1
            assert [(f['U'], f['u']) for f in frames] == [(nxt, nxt), (nxt, nxt), (nxt, nxt - 1 + 10 ** 9)]
            assert frames[0]['b'] == [[truth['bids'][0][0], 'NaN']] and frames[1]['b'][0][0] == 'sNaN'
            assert frames[2]['b'] == [truth['bids'][0]] and frames[2]['a'] == []
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(quiet.recv(), 0.2)
            assert sim.book('SOL_USDC') == truth                 # the market itself is untouched


async def test_corrupt_snapshots_carry_an_impossible_last_update_id(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        sim.inject({'fault': 'corrupt_snapshot', 'count': 1})
        url = sim.rest_url + '/api/v1/depth?symbol=SOL_USDC'
        async with session.get(url) as resp:
            corrupt = await resp.json()
        async with session.get(url) as resp:
            fine = await resp.json()
        assert corrupt['lastUpdateId'] == str(10 ** 30) and corrupt['bids'] == fine['bids']
        assert int(fine['lastUpdateId']) == sim.book('SOL_USDC')['sequence']


async def test_malformed_frames_reach_every_connection():
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC'], rate=0, ticker_interval=3600) as sim:
        async with websockets.connect(sim.ws_url) as quiet, websockets.connect(sim.ws_url) as busy:
            await subscribe(busy, 'trade.ETH_USDC')
            await asyncio.sleep(0.05)
            for kind in ('truncated_json', 'unknown_stream', 'wrong_types'):
                sim.inject({'fault': 'malformed', 'kind': kind, 'symbol': 'ETH_USDC'})
            for ws in (quiet, busy):
                raw = [await asyncio.wait_for(ws.recv(), 2) for _ in range(3)]
                assert raw[0].startswith('{"stream":"trade.ETH_USDC","data":{')
                with pytest.raises(json.JSONDecodeError):
                    json.loads(raw[0])
                unknown = json.loads(raw[1])
                assert unknown['stream'] == 'unknownStream.ETH_USDC' and unknown['data']['e'] == 'unknownStream'
                wrong = json.loads(raw[2])['data']
                assert wrong['e'] == 'trade' and wrong['s'] == 'ETH_USDC'
                assert isinstance(wrong['p'], float) and isinstance(wrong['t'], str) and isinstance(wrong['E'], str)
                assert wrong['T'] is None and isinstance(wrong['q'], list) and wrong['m'] == 'false'
            default = sim.inject({'fault': 'malformed', 'kind': 'unknown_stream'})
            assert default['symbol'] == 'SOL_USDC'
            assert json.loads(await asyncio.wait_for(quiet.recv(), 2))['stream'] == 'unknownStream.SOL_USDC'


# ------------------------------------------------------------------------------------ HTTP faults

async def test_http_429_carries_retry_after_then_recovers(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        status, body = await post_fault(session, sim, {'fault': 'http_status', 'status': 429, 'count': 2,
                                                       'retry_after': 3})
        assert status == 200 and body['fault'] == {'fault': 'http_status', 'status': 429, 'count': 2,
                                                   'retry_after': 3}
        url = sim.rest_url + '/api/v1/depth?symbol=SOL_USDC'
        for _ in range(2):
            async with session.get(url) as resp:
                assert resp.status == 429 and resp.headers['Retry-After'] == '3'
                assert await resp.json() == {'code': 'TOO_MANY_REQUESTS', 'message': 'Too many requests'}
        async with session.get(url) as resp:
            assert resp.status == 200


async def test_http_451_only_on_the_chosen_path_and_controls_unaffected(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        await post_fault(session, sim, {'fault': 'http_status', 'status': 451, 'count': 1, 'path': '/api/v1/depth'})
        async with session.get(sim.rest_url + '/_sim/book?symbol=SOL_USDC') as resp:
            assert resp.status == 200
        async with session.get(sim.rest_url + '/api/v1/ticker?symbol=SOL_USDC') as resp:
            assert resp.status == 200
        async with session.get(sim.rest_url + '/api/v1/depth?symbol=SOL_USDC') as resp:
            assert resp.status == 451 and 'Retry-After' not in resp.headers
            assert (await resp.json())['code'] == 'FORBIDDEN'
        async with session.get(sim.rest_url + '/api/v1/depth?symbol=SOL_USDC') as resp:
            assert resp.status == 200


async def test_http_503_also_refuses_websocket_handshakes(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        sim.inject({'fault': 'http_status', 'status': 503, 'count': 2})
        async with session.get(sim.rest_url + '/api/v1/markets') as resp:
            assert resp.status == 503 and (await resp.json())['code'] == 'MAINTENANCE'
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(sim.ws_url)
        assert refused.value.response.status_code == 503
        async with websockets.connect(sim.ws_url) as ws:
            await subscribe(ws, 'depth.SOL_USDC')


async def test_slow_rest_by_count_and_by_duration(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        url = sim.rest_url + '/api/v1/ticker?symbol=SOL_USDC'
        sim.inject({'fault': 'slow_rest', 'delay': 0.4, 'count': 1})
        started = time.monotonic()
        async with session.get(url) as resp:
            assert resp.status == 200
        assert time.monotonic() - started >= 0.4
        started = time.monotonic()
        async with session.get(url) as resp:
            assert resp.status == 200
        assert time.monotonic() - started < 0.2
        status, _ = await post_fault(session, sim, {'fault': 'slow_rest', 'delay': 0.25, 'duration': 0.6})
        assert status == 200
        timings = []
        for _ in range(2):
            started = time.monotonic()
            async with session.get(url) as resp:
                assert resp.status == 200
            timings.append(time.monotonic() - started)
        assert all(t >= 0.25 for t in timings)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        async with session.get(url) as resp:
            assert resp.status == 200
        assert time.monotonic() - started < 0.2


async def test_invalid_fault_requests_are_refused(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        for body in ({'fault': 'explode'}, {'fault': 'skip_sequence'}, {'fault': 'skip_sequence', 'symbol': 'NOPE'},
                     {'fault': 'http_status', 'status': 418}, {'fault': 'malformed', 'kind': 'garbage'},
                     {'fault': 'hostile_depth', 'kind': 'garbage'}, {'fault': 'corrupt_snapshot', 'count': 0},
                     {'fault': 'silence_pings'}, {'fault': 'slow_rest', 'delay': 1, 'count': 1, 'duration': 1},
                     {'fault': 'duplicate', 'symbol': 'SOL_USDC', 'stream': 'trade.SOL_USDC'}, ['not', 'an', 'object']):
            status, answer = await post_fault(session, sim, body)
            assert status == 400 and answer['code'] == 'INVALID_CLIENT_REQUEST', body
        with pytest.raises(FaultError):
            sim.inject({'fault': 'reorder', 'symbol': 'SOL_USDC', 'count': 0})


async def test_pause_freezes_the_truth_and_resume_restarts_it(session):
    async with BackpackSimulator(markets=['SOL_USDC'], rate=2000) as sim:
        await asyncio.sleep(0.1)
        async with session.post(sim.rest_url + '/_sim/pause') as resp:
            assert await resp.json() == {'paused': True}
        book = sim.book('SOL_USDC')
        trades = sim.trades('SOL_USDC')
        await asyncio.sleep(0.3)
        async with session.get(sim.rest_url + '/_sim/book', params={'symbol': 'SOL_USDC'}) as resp:
            assert await resp.json() == book
        assert sim.trades('SOL_USDC') == trades
        earlier = book['sequence'] - 20
        async with session.get(sim.rest_url + '/_sim/book', params={'symbol': 'SOL_USDC', 'sequence': earlier}) as resp:
            assert resp.status == 200 and (await resp.json())['sequence'] == earlier
        async with session.get(sim.rest_url + '/_sim/book', params={'symbol': 'SOL_USDC', 'sequence': 1}) as resp:
            assert resp.status == 404 and (await resp.json())['code'] == 'RESOURCE_NOT_FOUND'
        async with session.post(sim.rest_url + '/_sim/resume') as resp:
            assert await resp.json() == {'paused': False}
        await asyncio.sleep(0.2)
        assert sim.book('SOL_USDC')['sequence'] > book['sequence']
