"""Parity: the native ``BackpackFeed`` and ``CcxtBackpackFeed`` in one ``FeedHandler``, one simulator.

What the migration runbook's shadow phase compares, asserted: both books equal the simulator's
truth at the end and equal each other at every sequence number both emitted; the same trade ids
(and prices, sizes, sides) over the window both saw; the same best bid/ask values, ccxt's being
the native feed's in order with some skipped. The differences that are expected (timestamps,
ccxt's skipped intermediate updates) are measured here and written down in
docs/migrations/backpack_ccxt.md.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Dict, Tuple

from cryptofeed import FeedHandler
from cryptofeed.exchanges.backpack.core.defines import L2_BOOK, TICKER, TRADES

from cryptofeed.exchanges.backpack import BackpackFeed
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed

from tests.integration.feed_harness import (
    FH_CONFIG, Collector, sim_config, start_handler, stop_handler, truth_levels, wait_until,
)

PAIRS = [('SOL-USDC', 'SOL_USDC'), ('SOL-USDC-PERP', 'SOL_USDC_PERP')]
CHANNELS = [TRADES, L2_BOOK, TICKER]
TOP = 10


class TopRecorder(Collector):
    """A Collector that also remembers the top of its replica at every sequence number."""

    def __init__(self):
        super().__init__()
        self.tops: Dict[str, Dict[int, Tuple]] = {symbol: {} for symbol, _ in PAIRS}

    def _apply_book(self, book) -> None:
        super()._apply_book(book)
        bids, asks = self.replica_levels(book.symbol, TOP)
        self.tops[book.symbol][book.sequence_number] = (tuple(bids), tuple(asks))


def is_subsequence(short, long) -> bool:
    remaining = iter(long)
    return all(any(item == other for other in remaining) for item in short)


async def test_native_and_ccxt_feeds_agree_on_the_same_simulator():
    async with BackpackSimulator(markets=[e for _, e in PAIRS], seed=51, rate=400, tls=True) as sim:
        native, ccxt_side = TopRecorder(), TopRecorder()
        handler = FeedHandler(config=FH_CONFIG)
        symbols = [s for s, _ in PAIRS]
        native_feed = BackpackFeed(config=sim_config(sim), symbols=symbols, channels=CHANNELS,
                                   callbacks=native.callbacks(CHANNELS))
        ccxt_feed = CcxtBackpackFeed(config=sim_config(sim), symbols=symbols, channels=CHANNELS,
                                     callbacks=ccxt_side.callbacks(CHANNELS))
        handler.add_feed(native_feed)
        handler.add_feed(ccxt_feed)
        await start_handler(handler)
        try:
            def both_have(count):
                return all(sum(t.symbol == s for t in c.items[TRADES]) >= count
                           for c in (native, ccxt_side) for s in symbols)
            await wait_until(lambda: both_have(40), timeout=30)
            sim.pause()

            def converged(collector, symbol, exchange_symbol):
                truth = sim.book(exchange_symbol)
                return (collector.sequences[symbol][-1:] == [truth['sequence']]
                        and collector.replica_levels(symbol) == truth_levels(truth))
            await wait_until(lambda: all(converged(c, s, e) for c in (native, ccxt_side) for s, e in PAIRS),
                             timeout=10)
            await wait_until(lambda: all(
                [int(t.id) for t in c.items[TRADES] if t.symbol == s][-1] == sim.trades(e)[-1]['id']
                for c in (native, ccxt_side) for s, e in PAIRS), timeout=5)

            def top_quotes(collector, symbol):
                return [(t.bid, t.ask) for t in collector.items[TICKER] if t.symbol == symbol][-1:]
            await wait_until(lambda: all(
                top_quotes(c, s) == [(Decimal(sim.book(e)['bids'][0][0]), Decimal(sim.book(e)['asks'][0][0]))]
                for c in (native, ccxt_side) for s, e in PAIRS), timeout=5)
        finally:
            await stop_handler(handler)

    for symbol, exchange_symbol in PAIRS:
        truth = sim.book(exchange_symbol)
        # Books: both equal the truth at the end, and each other wherever both emitted a sequence.
        assert native_feed._book.books[symbol].last_update_id == truth['sequence']
        assert ccxt_feed._books[symbol].levels() == truth_levels(truth)
        common = set(native.tops[symbol]) & set(ccxt_side.tops[symbol])
        assert len(common) >= 20
        assert all(native.tops[symbol][seq] == ccxt_side.tops[symbol][seq] for seq in common)
        assert set(ccxt_side.sequences[symbol]) <= set(native.sequences[symbol]), \
            'ccxt book states are native book states (ccxt may skip some)'

        # Trades: the same ids over the common window, with the same price, size and side.
        trades = {name: {int(t.id): t for t in c.items[TRADES] if t.symbol == symbol}
                  for name, c in (('native', native), ('ccxt', ccxt_side))}
        first = max(min(trades['native']), min(trades['ccxt']))
        last = min(max(trades['native']), max(trades['ccxt']))
        window = {name: sorted(i for i in ids if first <= i <= last) for name, ids in trades.items()}
        assert window['native'] == window['ccxt'] == list(range(first, last + 1)) and last - first >= 30
        for trade_id in window['native']:
            a, b = trades['native'][trade_id], trades['ccxt'][trade_id]
            assert (a.price, a.amount, a.side, a.exchange) == (b.price, b.amount, b.side, b.exchange)
            assert abs(a.timestamp - b.timestamp) < 0.25  # trade time T (µs) vs event time E (ms): known

        # Tickers: the same values; ccxt's are the native ones in order, some possibly skipped.
        quotes = {name: [(t.bid, t.ask) for t in c.items[TICKER] if t.symbol == symbol]
                  for name, c in (('native', native), ('ccxt', ccxt_side))}
        assert quotes['native'][-1] == quotes['ccxt'][-1] == (Decimal(truth['bids'][0][0]), Decimal(truth['asks'][0][0]))
        # The feeds subscribe at slightly different moments: skip ccxt quotes from before native's first.
        skipped = next(i for i, quote in enumerate(quotes['ccxt']) if quote in quotes['native'])
        assert skipped <= len(quotes['ccxt']) // 10
        common_quotes = quotes['ccxt'][skipped:]
        assert is_subsequence(common_quotes, quotes['native'][quotes['native'].index(common_quotes[0]):])
