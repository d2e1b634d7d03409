"""The sharded deployment of docs/deployments/backpack_sharded.md, run for real.

A simulator with synthetic markets, a real ``redis-server`` (``make services`` installs it), and
K=3 processes of ``examples/backpack_sharded.py`` writing through cryptofeed's Redis Streams
backends; ``examples/backpack_stream_consumer.py``'s ``StreamConsumer`` reads the streams.
While they run a market is listed: it lands in exactly one shard and appears in Redis. Then the
simulator is paused and, once the consumer has read everything, each market must have been
written by exactly one shard (the one ``shard_of`` names), its book rebuilt from Redis must equal
the simulator's, and every trade from the first one its shard wrote must be there exactly once.

cryptofeed's ``BookStream`` does not write sequence numbers (``OrderBook.to_dict`` leaves them
out), so "the same sequence" is the paused simulator's: nothing changes after the pause, and a
book equal to the truth then is the book at the truth's last sequence.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import sys
from pathlib import Path

import aiohttp

from cryptofeed.exchanges.backpack.core.sharding import shard_of
from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import truth_levels, truth_trade_ids_from, wait_until
from tests.integration.services import redis_server  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
SHARD_SCRIPT = ROOT / 'examples' / 'backpack_sharded.py'
K = 3
NEW_MARKET = 'NEWCOIN_USDC'


def load_consumer_module():
    spec = importlib.util.spec_from_file_location('backpack_stream_consumer',
                                                  ROOT / 'examples' / 'backpack_stream_consumer.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ShardProcess:
    """One ``backpack_sharded.py`` process and the ``following`` lines it printed."""

    def __init__(self, index: int):
        self.index = index
        self.process = None
        self.following: list = []
        self.lines: list = []
        self._reader = None

    async def start(self, sim, redis_url: str, logs: Path) -> None:
        self.stderr_path = logs / f'shard{self.index}.stderr'
        with open(self.stderr_path, 'wb') as stderr:  # a file: a pipe nobody reads could fill and block it
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(SHARD_SCRIPT), '--shard', str(self.index), '--of', str(K), '--redis', redis_url,
                '--rest-url', sim.rest_url, '--ws-url', sim.ws_url, '--listing-poll-s', '1', cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=stderr)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for line in self.process.stdout:
            self.lines.append(line.decode())
            report = json.loads(line)
            assert (report['shard'], report['of']) == (self.index, K)
            self.following = report['following']

    async def stop(self) -> str:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        stderr = self.stderr_path.read_text()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=10)
        return stderr


async def open_markets(sim) -> list:
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.rest_url + '/api/v1/markets') as resp:
            return sorted(exchange_to_normalized(m['symbol']) for m in await resp.json()
                          if m['orderBookState'] == 'Open')


async def test_three_shards_write_every_market_once_into_redis_streams_and_the_consumer_rebuilds_the_truth(
        redis_server, tmp_path):
    consumer_module = load_consumer_module()
    async with BackpackSimulator(synthetic_markets=24, rate=600, seed=31) as sim:
        shards = [ShardProcess(i) for i in range(K)]
        consumer = consumer_module.StreamConsumer(redis_server)
        try:
            for shard in shards:
                await shard.start(sim, redis_server, tmp_path)
            markets = await open_markets(sim)
            assert len(markets) == 33

            async def followed_by_shards():
                return sorted(s for shard in shards for s in shard.following)

            await wait_until_async(lambda: followed_by_shards(), markets, timeout=60, shards=shards)
            for shard in shards:  # each follows exactly its markets: together all, none twice
                assert shard.following == [s for s in markets if shard_of(s, K) == shard.index]

            async def consumer_has_books(symbols):
                await consumer.poll()
                return all(consumer.full_books[s] for s in symbols)

            await wait_until_async(lambda: consumer_has_books(markets), True, timeout=90, shards=shards)

            # A listing while they run: exactly one shard takes it, and it appears in Redis.
            sim.list_market(NEW_MARKET)
            new = exchange_to_normalized(NEW_MARKET)
            owner = shard_of(new, K)
            await wait_until(lambda: new in shards[owner].following, timeout=30)
            await wait_until_async(lambda: consumer_has_books([new]), True, timeout=30, shards=shards)

            async def new_market_traded():
                await consumer.poll()
                return len(consumer.trades.get(new, ())) >= 3

            await wait_until_async(new_market_traded, True, timeout=60, shards=shards)
            markets = sorted(markets + [new])
            assert sorted(s for shard in shards for s in shard.following) == markets
            assert [new in shard.following for shard in shards] == [i == owner for i in range(K)]

            # Pause, let the consumer catch up, compare with the truth.
            sim.pause()

            async def caught_up():
                await consumer.poll()
                for symbol in markets:
                    exchange = symbol.replace('-', '_')
                    if consumer.levels(symbol) != truth_levels(sim.book(exchange)):
                        return False
                    ids = consumer.trade_ids(symbol)
                    truth = sim.trades(exchange)
                    if ids and ids[-1] != truth[-1]['id']:
                        return False
                return True

            await wait_until_async(caught_up, True, timeout=60, shards=shards)
            for symbol in markets:
                exchange = symbol.replace('-', '_')
                assert consumer.shards_seen[symbol] == {shard_of(symbol, K)}, symbol
                assert consumer.levels(symbol) == truth_levels(sim.book(exchange)), symbol
                ids = consumer.trade_ids(symbol)
                if ids:
                    assert ids == truth_trade_ids_from(sim, exchange, ids[0]), symbol
            # the books were rebuilt from deltas, not only from full books
            assert consumer.entries > sum(consumer.full_books.values()) + sum(len(t) for t in consumer.trades.values())
            traded = [s for s in markets if consumer.trade_ids(s)]
            assert len(traded) > len(markets) // 2 and new in traded
        finally:
            await consumer.close()
            errors = [await shard.stop() for shard in shards]
        for shard, stderr in zip(shards, errors):
            assert shard.process.returncode == 0, stderr[-3000:]
            assert 'Traceback' not in stderr, stderr[-3000:]


async def wait_until_async(probe, expected, *, timeout: float, shards) -> None:
    """Poll the coroutine ``probe()`` until it returns ``expected``; on time-out, say which shards
    exited and the end of what they wrote to stderr."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value == expected:
            return
        if loop.time() > deadline:
            exited = {s.index: s.process.returncode for s in shards if s.process.returncode is not None}
            logs = {s.index: s.stderr_path.read_text()[-1500:] for s in shards}
            raise AssertionError(f'not reached within {timeout} s: got {value!r}; exited shards {exited}; '
                                 f'stderr {logs}')
        await asyncio.sleep(0.2)
