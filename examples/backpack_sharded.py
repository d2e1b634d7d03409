"""One process of a sharded Backpack deployment: ``python examples/backpack_sharded.py --shard I --of K``.

Run K of these, one per ``I`` in ``0..K-1``. Each runs a ``FeedHandler`` with one
``BackpackFeed(symbols='all', shard=(I, K), channels=[TRADES, L2_BOOK])``: it follows the open
markets whose ``shard_of(symbol, K) == I`` (CRC-32 of the normalized symbol, modulo K), so every
market, one listed while they run included, is followed by exactly one process. Trades and books
go through cryptofeed's own backends, either Redis Streams (``--redis URL``, the default:
``cryptofeed.backends.redis.TradeStream`` and ``BookStream``) or Kafka (``--kafka HOST:PORT``:
``TradeKafka`` and ``BookKafka``), one stream or topic per shard, kind and market::

    trades.shard<I>-BACKPACK-<symbol>     book.shard<I>-BACKPACK-<symbol>

Numbers are written as text (``numeric_type=str``): exact, as the exchange sent them. A book's
stream holds a full book (field ``book``) when it is synced, again after every resync and every
1000 updates, and a delta (field ``delta``) per update in between; ``backpack_stream_consumer.py``
rebuilds books and collects trades from those streams.

The exchange is the live one unless ``--rest-url``/``--ws-url`` (and ``--ca-file`` for a TLS
simulator) say otherwise. ``--listing-poll-s`` is how often ``/api/v1/markets`` is read again
(default 300 s, the endpoint's cache lifetime). The process prints one JSON line each time the
set of markets it follows changes (``{"shard": I, "of": K, "following": [...]}``), runs until
SIGINT/SIGTERM or ``--seconds``, and flushes its backends on the way out.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import List, Optional
from urllib.parse import urlsplit

from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TRADES

from cryptofeed.exchanges.backpack import BackpackFeed, run_handler


def stream_key(kind: str, shard: int) -> str:
    """The ``key`` given to the backend of ``kind`` (``trades`` or ``book``) in shard ``shard``;
    cryptofeed appends ``-BACKPACK-<symbol>``."""
    return f'{kind}.shard{shard}'


def redis_backends(url: str, shard: int) -> dict:
    """cryptofeed's Redis Streams backends for this shard: ``{TRADES: [...], L2_BOOK: [...]}``."""
    from cryptofeed.backends.redis import BookStream, TradeStream
    parts = urlsplit(url)
    if parts.scheme != 'redis' or not parts.hostname:
        raise SystemExit(f'--redis must look like redis://HOST:PORT, got {url!r}')
    where = {'host': parts.hostname, 'port': parts.port or 6379, 'numeric_type': str}
    return {TRADES: [TradeStream(key=stream_key('trades', shard), **where)],
            L2_BOOK: [BookStream(key=stream_key('book', shard), **where)]}


def kafka_backends(bootstrap: str, shard: int) -> dict:
    """cryptofeed's Kafka backends for this shard (nothing connects before the feed runs)."""
    from cryptofeed.backends.kafka import BookKafka, TradeKafka
    where = {'bootstrap_servers': bootstrap, 'client_id': f'backpack-shard{shard}', 'numeric_type': str}
    return {TRADES: [TradeKafka(key=stream_key('trades', shard), **where)],
            L2_BOOK: [BookKafka(key=stream_key('book', shard), **where)]}


def build_feed(args: argparse.Namespace) -> BackpackFeed:
    config = {'listing_poll_s': args.listing_poll_s}
    for option in ('rest_url', 'ws_url', 'ca_file'):
        if getattr(args, option):
            config[option] = getattr(args, option)
    backends = kafka_backends(args.kafka, args.shard) if args.kafka else redis_backends(args.redis, args.shard)
    return BackpackFeed(config=config, symbols='all', shard=(args.shard, args.of), channels=[TRADES, L2_BOOK],
                        callbacks=backends)


async def report_markets(feed: BackpackFeed, args: argparse.Namespace) -> None:
    """One JSON line whenever the markets this shard follows change (start, listings, delistings)."""
    shown: Optional[List[str]] = None
    while True:
        now = sorted(feed.followed_symbols or ())
        if now and now != shown:
            print(json.dumps({'shard': args.shard, 'of': args.of, 'following': now}), flush=True)
            shown = now
        await asyncio.sleep(0.5)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shard', type=int, required=True, help='this process: 0 .. OF-1')
    parser.add_argument('--of', type=int, required=True, help='how many processes share the markets')
    store = parser.add_mutually_exclusive_group()
    store.add_argument('--redis', default='redis://127.0.0.1:6379', help='Redis URL (default %(default)s)')
    store.add_argument('--kafka', default=None, help='Kafka bootstrap servers (HOST:PORT) instead of Redis')
    parser.add_argument('--rest-url', default=None, help='REST base URL (default: the exchange)')
    parser.add_argument('--ws-url', default=None, help='WebSocket URL (default: the exchange)')
    parser.add_argument('--ca-file', default=None, help='CA file to trust (a TLS simulator)')
    parser.add_argument('--listing-poll-s', type=float, default=300.0, help='seconds between listing checks')
    parser.add_argument('--seconds', type=float, default=None, help='stop after this long (default: run on)')
    args = parser.parse_args(argv)
    if args.of < 1 or not 0 <= args.shard < args.of:
        parser.error(f'--shard must be in 0..{args.of - 1} for --of {args.of}, got --shard {args.shard} --of {args.of}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    handler = FeedHandler(config={'log': {'disabled': True}})
    feed = build_feed(args)
    handler.add_feed(feed)
    run_handler(handler, seconds=args.seconds, beside=[report_markets(feed, args)])
    return 0


if __name__ == '__main__':
    sys.exit(main())
