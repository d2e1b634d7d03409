"""Runs a real ``FeedHandler`` with a ``BackpackFeed`` against a ``BackpackSimulator`` in a test.

``Collector`` records what the callbacks receive and keeps a replica of every L2 book built
only from what was emitted (the first full book, then the deltas), so a test can compare both
the feed's book and the replica with the simulator's truth.
"""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Callable, Dict, Iterable, List

from cryptofeed import FeedHandler
from cryptofeed.exchanges.backpack.core.defines import ASK, BID, L2_BOOK

from cryptofeed.exchanges.backpack import CRYPTOFEED_LINE, BackpackFeed

FH_CONFIG = {'log': {'disabled': True}, 'uvloop': False}


async def start_handler(handler: FeedHandler) -> None:
    """Start ``handler`` on the running loop: 2.x ``run(start_loop=False)``; 3.x a task of
    ``run_async``, returning once every feed runs its connections (as 2.x's start does)."""
    if CRYPTOFEED_LINE < 3:
        handler.run(start_loop=False, install_signal_handlers=False)
        return
    task = handler._test_task = asyncio.get_running_loop().create_task(handler.run_async(install_signal_handlers=False))
    deadline = time.monotonic() + 10
    while not task.done() and not all(feed._conn_tg is not None for feed in handler.feeds):
        if time.monotonic() > deadline:
            raise AssertionError('the FeedHandler did not start its feeds within 10 s')
        await asyncio.sleep(0)  # return before any connection is open, as 2.x's start does
    if task.done():
        task.result()


async def stop_handler(handler: FeedHandler) -> None:
    """Stop what ``start_handler`` started and wait until every feed has shut down."""
    if CRYPTOFEED_LINE < 3:
        await handler.stop_async()
        return
    handler.request_stop()
    await handler._test_task


class Collector:
    def __init__(self):
        self.items: Dict[str, List] = defaultdict(list)
        self.replicas: Dict[str, Dict[str, Dict[Decimal, Decimal]]] = {}
        self.sequences: Dict[str, List[int]] = defaultdict(list)
        self.full_books: Dict[str, int] = defaultdict(int)

    def callbacks(self, channels: Iterable[str]) -> dict:
        return {channel: self._callback(channel) for channel in channels}

    def _callback(self, channel: str):
        async def record(obj, receipt_ts):
            if channel == L2_BOOK:
                self._apply_book(obj)
            else:
                self.items[channel].append(obj)
        return record

    def _apply_book(self, book) -> None:
        symbol = book.symbol
        self.sequences[symbol].append(book.sequence_number)
        if book.delta is None:
            self.full_books[symbol] += 1
            self.replicas[symbol] = {BID: dict(book.book.bids.to_dict()), ASK: dict(book.book.asks.to_dict())}
            return
        replica = self.replicas[symbol]
        for side in (BID, ASK):
            for price, size in book.delta[side]:
                if size == 0:
                    del replica[side][price]
                else:
                    replica[side][price] = size

    def replica_levels(self, symbol: str, depth: int = 0):
        replica = self.replicas[symbol]
        bids = sorted(replica[BID].items(), reverse=True)
        asks = sorted(replica[ASK].items())
        return (bids[:depth], asks[:depth]) if depth else (bids, asks)


def truth_levels(truth: dict, depth: int = 0):
    bids = [(Decimal(p), Decimal(q)) for p, q in truth['bids']]
    asks = [(Decimal(p), Decimal(q)) for p, q in truth['asks']]
    return (bids[:depth], asks[:depth]) if depth else (bids, asks)


def feed_levels(feed: BackpackFeed, symbol: str, depth: int = 0):
    book = feed._book.books[symbol].book.book
    bids = list(book.bids.to_dict().items())
    asks = list(book.asks.to_dict().items())
    return (bids[:depth], asks[:depth]) if depth else (bids, asks)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f'condition not met within {timeout} s')
        await asyncio.sleep(interval)


def sim_config(sim, **extra) -> dict:
    config = {'rest_url': sim.rest_url, 'ws_url': sim.ws_url}
    if sim.ca_file:
        config['ca_file'] = sim.ca_file
    config.update(extra)
    return config


@asynccontextmanager
async def running_feed(sim, symbols, channels, collector: Collector, *, config=None, fh_kwargs=None,
                       feed_class=BackpackFeed, **feed_kwargs):
    """Start a FeedHandler running one feed (a BackpackFeed unless ``feed_class`` says otherwise);
    stop it on exit."""
    handler = FeedHandler(config=FH_CONFIG, **(fh_kwargs or {}))
    if 'subscription' not in feed_kwargs:
        feed_kwargs.update(symbols=symbols, channels=channels)
    feed = feed_class(config=config if config is not None else sim_config(sim),
                      callbacks=collector.callbacks(channels), **feed_kwargs)
    handler.add_feed(feed)
    await start_handler(handler)
    try:
        yield feed
    finally:
        await stop_handler(handler)


async def book_matches_truth(feed, collector, sim, symbol: str, exchange_symbol: str, depth: int = 0) -> bool:
    truth = sim.book(exchange_symbol)
    sync = feed._book.books[symbol]
    if not sync.synced or sync.last_update_id != truth['sequence']:
        return False
    return (feed_levels(feed, symbol, depth) == truth_levels(truth, depth)
            and collector.replica_levels(symbol, depth) == truth_levels(truth, depth))


async def wait_book_converged(feed, collector, sim, symbol, exchange_symbol, depth=0, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not await book_matches_truth(feed, collector, sim, symbol, exchange_symbol, depth):
        if time.monotonic() > deadline:
            truth = sim.book(exchange_symbol)
            sync = feed._book.books[symbol]
            raise AssertionError(f'{symbol}: book did not converge: feed state={sync.state} '
                                 f'last={sync.last_update_id} truth sequence={truth["sequence"]}')
        await asyncio.sleep(0.02)


def delivered_trade_ids(collector: Collector, symbol: str) -> List[int]:
    from cryptofeed.exchanges.backpack.core.defines import TRADES
    return [int(t.id) for t in collector.items[TRADES] if t.symbol == symbol]


def truth_trade_ids_from(sim, exchange_symbol: str, first_id: int) -> List[int]:
    return [t['id'] for t in sim.trades(exchange_symbol) if t['id'] >= first_id]
