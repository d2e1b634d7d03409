"""Reads what the shards of ``backpack_sharded.py`` wrote to Redis Streams: books and trades.

``python examples/backpack_stream_consumer.py [--redis redis://127.0.0.1:6379] [--seconds S]``
prints, every second, one JSON line: the markets seen per shard, books rebuilt, trades read.

``StreamConsumer`` is the part to reuse. ``await consumer.poll()`` finds the shards' streams
(``SCAN`` for ``book.shard*-*`` and ``trades.shard*-*``, again on every poll, so a market listed
while it runs is picked up) and reads every entry after the last one it read (``XREAD``), in the
order each stream holds them. Books are rebuilt as cryptofeed's ``BookStream`` writes them: an
entry with a ``book`` field is a full book (it replaces the one held), an entry with ``delta``
changes levels (size ``0`` removes the level). Trades are kept in arrival order per market.
Prices and sizes stay ``Decimal``; the shards write them as text, so nothing is rounded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import defaultdict
from decimal import Decimal
from typing import Dict, List, Optional, Tuple

from redis import asyncio as aioredis

#: ``<kind>.shard<I>-<EXCHANGE>-<symbol>``, as ``backpack_sharded.stream_key`` names them.
STREAM_NAME = re.compile(r'^(book|trades)\.shard(\d+)-([A-Z0-9_]+)-(.+)$')
Levels = Dict[Decimal, Decimal]


class StreamConsumer:
    """Books and trades rebuilt from the shards' streams (see the module docstring)."""

    def __init__(self, url: str, *, batch: int = 1000):
        self.redis = aioredis.from_url(url)
        self.batch = batch
        self.positions: Dict[str, bytes] = {}                 # stream -> last entry id read
        self.shard_of: Dict[str, int] = {}                    # symbol -> shard whose streams hold it
        self.shards_seen: Dict[str, set] = defaultdict(set)   # symbol -> every shard that wrote it
        self.books: Dict[str, Dict[str, Levels]] = {}         # symbol -> {'bid': {...}, 'ask': {...}}
        self.full_books: Dict[str, int] = defaultdict(int)    # symbol -> full books read
        self.trades: Dict[str, List[dict]] = defaultdict(list)
        self.entries = 0

    async def close(self) -> None:
        await self.redis.aclose()

    async def discover(self) -> None:
        for pattern in ('book.shard*-*', 'trades.shard*-*'):
            async for raw in self.redis.scan_iter(match=pattern, count=1000, _type='stream'):
                name = raw.decode()
                match = STREAM_NAME.match(name)
                if match is None or name in self.positions:
                    continue
                shard, symbol = int(match.group(2)), match.group(4)
                self.positions[name] = b'0-0'
                self.shards_seen[symbol].add(shard)
                self.shard_of[symbol] = shard

    async def poll(self) -> int:
        """Read every entry written since the last poll; how many were read."""
        await self.discover()
        read = 0
        while self.positions:
            answer = await self.redis.xread(dict(self.positions), count=self.batch)
            if not answer:
                break
            for raw_name, entries in answer:
                name = raw_name.decode()
                kind, symbol = STREAM_NAME.match(name).group(1, 4)
                for entry_id, fields in entries:
                    self._apply(kind, symbol, {k.decode(): v.decode() for k, v in fields.items()})
                    self.positions[name] = entry_id
                    read += 1
        self.entries += read
        return read

    def _apply(self, kind: str, symbol: str, fields: Dict[str, str]) -> None:
        if kind == 'trades':
            self.trades[symbol].append(fields)
        elif 'book' in fields:
            full = json.loads(fields['book'])
            self.books[symbol] = {side: {Decimal(p): Decimal(q) for p, q in full[side].items()}
                                  for side in ('bid', 'ask')}
            self.full_books[symbol] += 1
        elif 'delta' in fields:
            book = self.books.get(symbol)
            if book is None:
                raise ValueError(f'{symbol}: a delta before any full book; the stream was trimmed or written '
                                 'by something else')
            delta = json.loads(fields['delta'])
            for side in ('bid', 'ask'):
                levels = book[side]
                for price, size in delta[side]:
                    price, size = Decimal(price), Decimal(size)
                    if size == 0:
                        levels.pop(price, None)
                    else:
                        levels[price] = size

    def levels(self, symbol: str) -> Tuple[List[Tuple[Decimal, Decimal]], List[Tuple[Decimal, Decimal]]]:
        """``(bids best first, asks best first)`` of the rebuilt book of ``symbol``."""
        book = self.books[symbol]
        return sorted(book['bid'].items(), reverse=True), sorted(book['ask'].items())

    def trade_ids(self, symbol: str) -> List[int]:
        return [int(t['id']) for t in self.trades.get(symbol, ())]

    def summary(self) -> dict:
        per_shard: Dict[int, int] = defaultdict(int)
        for shard in self.shard_of.values():
            per_shard[shard] += 1
        return {'markets': len(self.shard_of), 'markets_per_shard': {str(k): v for k, v in sorted(per_shard.items())},
                'books': len(self.books), 'trades': sum(len(t) for t in self.trades.values()),
                'entries': self.entries}


async def run(url: str, seconds: Optional[float]) -> None:
    consumer = StreamConsumer(url)
    loop = asyncio.get_running_loop()
    end = None if seconds is None else loop.time() + seconds
    try:
        while end is None or loop.time() < end:
            await consumer.poll()
            print(json.dumps(consumer.summary()), flush=True)
            await asyncio.sleep(1.0)
    finally:
        await consumer.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--redis', default='redis://127.0.0.1:6379', help='Redis URL (default %(default)s)')
    parser.add_argument('--seconds', type=float, default=None, help='stop after this long (default: run on)')
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.redis, args.seconds))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
