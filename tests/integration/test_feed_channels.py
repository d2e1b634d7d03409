"""BackpackFeed under a real FeedHandler against the simulator: every public channel, compared
with the simulator's truth."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from cryptofeed.exchanges.backpack.core.defines import (
    BUY, CANDLES, FUNDING, INDEX, L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, SELL, TICKER, TRADES,
)
from cryptofeed.exchanges.backpack.core.records import Candle, Funding, Index, Liquidation, OpenInterest, Ticker, Trade

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.feed_harness import (
    start_handler, stop_handler,
    Collector, delivered_trade_ids, running_feed, truth_levels, truth_trade_ids_from, wait_book_converged,
    wait_until,
)

ALL_CHANNELS = [TRADES, L2_BOOK, TICKER, CANDLES, FUNDING, INDEX, OPEN_INTEREST, LIQUIDATIONS]


async def test_every_channel_delivers_typed_objects_equal_to_the_simulator_truth():
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC_PERP'], seed=3, rate=400,
                                 open_interest_interval=0.5, liquidation_probability=0.3) as sim:
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC', 'BTC-USDC-PERP'], ALL_CHANNELS, collector,
                                candle_interval='1s', candle_closed_only=True) as feed:
            # A closed candle of each symbol (the first one of either is not enough: the other's
            # may close a moment later, after the market is paused below).
            await wait_until(lambda: all(collector.items[c] for c in
                                         (TRADES, TICKER, CANDLES, FUNDING, INDEX, OPEN_INTEREST, LIQUIDATIONS))
                             and {c.symbol for c in collector.items[CANDLES]} == {'SOL-USDC', 'BTC-USDC-PERP'},
                             timeout=15)
            sim.pause()
            for symbol, exchange_symbol in (('SOL-USDC', 'SOL_USDC'), ('BTC-USDC-PERP', 'BTC_USDC_PERP')):
                await wait_book_converged(feed, collector, sim, symbol, exchange_symbol)
                # Trades: every id from the first delivered one, once, in order, with the truth's values.
                truth = {t['id']: t for t in sim.trades(exchange_symbol)}
                await wait_until(lambda: delivered_trade_ids(collector, symbol)[-1:] == [max(truth)])
                ids = delivered_trade_ids(collector, symbol)
                assert ids == truth_trade_ids_from(sim, exchange_symbol, ids[0])
                for trade in (t for t in collector.items[TRADES] if t.symbol == symbol):
                    row = truth[int(trade.id)]
                    assert isinstance(trade, Trade) and trade.exchange == 'BACKPACK'
                    assert (trade.price, trade.amount) == (Decimal(row['price']), Decimal(row['quantity']))
                    assert trade.side == (BUY if row['side'] == 'Buy' else SELL)
                    assert abs(trade.timestamp - row['timestamp_us'] / 1e6) < 1e-6
                # Ticker: the last best bid/ask equals the top of the true book.
                await wait_until(lambda: _last(collector, TICKER, symbol) is not None)
                bids, asks = truth_levels(sim.book(exchange_symbol), 1)
                await wait_until(lambda: (_last(collector, TICKER, symbol).bid,
                                          _last(collector, TICKER, symbol).ask) == (bids[0][0], asks[0][0]))
                # Candles: closed 1 s candles agree with the trades printed in their interval.
                candles = [c for c in collector.items[CANDLES] if c.symbol == symbol]
                assert candles and all(isinstance(c, Candle) and c.closed and c.interval == '1s' for c in candles)
                for candle in candles:
                    inside = [t for t in truth.values() if candle.start <= t['timestamp_us'] / 1e6 < candle.stop]
                    if inside and min(truth) <= min(t['id'] for t in inside):
                        assert candle.trades == len(inside)
                        assert candle.volume == sum(Decimal(t['quantity']) for t in inside)
                        assert candle.high == max(Decimal(t['price']) for t in inside)
                        assert candle.low == min(Decimal(t['price']) for t in inside)
            perp = 'BTC-USDC-PERP'
            funding = [f for f in collector.items[FUNDING]]
            assert funding and all(isinstance(f, Funding) and f.symbol == perp for f in funding)
            assert all(isinstance(f.rate, Decimal) and f.next_funding_time > time.time() - 1 for f in funding)
            assert all(isinstance(i, Index) and i.symbol == perp and i.price > 0 for i in collector.items[INDEX])
            oi = collector.items[OPEN_INTEREST]
            assert oi and all(isinstance(o, OpenInterest) and o.symbol == perp for o in oi)
            # The REST value read now is the one the stream published last or publishes next.
            rest_oi = Decimal((await feed.rest.open_interest('BTC_USDC_PERP'))[0]['openInterest'])
            count = len(oi)
            await wait_until(lambda: len(collector.items[OPEN_INTEREST]) > count, timeout=5)
            assert rest_oi in {o.open_interest for o in collector.items[OPEN_INTEREST][count - 1:]}
            liquidations = collector.items[LIQUIDATIONS]
            assert liquidations and all(isinstance(x, Liquidation) and x.symbol == perp for x in liquidations)
            # Spot symbols never get perp-only streams.
            assert not [x for x in funding + oi if x.symbol == 'SOL-USDC']


async def test_quiet_intervals_give_no_candle_and_no_parse_error():
    async with BackpackSimulator(markets=['SOL_USDC'], seed=5, rate=200) as sim:
        sim.pause()  # no trades: every 1 s candle closes empty (o/h/l/c and v null)
        collector = Collector()
        async with running_feed(sim, ['SOL-USDC'], [CANDLES], collector, candle_interval='1s') as feed:
            await wait_until(lambda: feed.metrics_snapshot()['messages'][CANDLES] >= 2, timeout=8)
            snapshot = feed.metrics_snapshot()
            assert not collector.items[CANDLES]
            assert snapshot['parse_errors'] == 0 and snapshot['dropped'] == 0
            assert not any('parse' in reason for reason in feed.health().reasons)
            sim.resume()  # and trading intervals still give candles
            await wait_until(lambda: collector.items[CANDLES], timeout=8)
            assert all(isinstance(c, Candle) and c.open is not None for c in collector.items[CANDLES])


def _last(collector, channel, symbol):
    items = [x for x in collector.items[channel] if x.symbol == symbol]
    return items[-1] if items else None


async def test_max_depth_books_and_their_deltas_match_the_top_of_the_truth():
    async with BackpackSimulator(markets=['ETH_USDC'], seed=5, rate=500) as sim:
        collector = Collector()
        async with running_feed(sim, ['ETH-USDC'], [L2_BOOK], collector, max_depth=5) as feed:
            await wait_until(lambda: len(collector.sequences['ETH-USDC']) > 200, timeout=15)
            sim.pause()
            await wait_book_converged(feed, collector, sim, 'ETH-USDC', 'ETH_USDC', depth=5)
            bids, asks = collector.replica_levels('ETH-USDC')
            assert len(bids) == 5 and len(asks) == 5
            sequences = collector.sequences['ETH-USDC']
            assert sequences == sorted(sequences) and collector.full_books['ETH-USDC'] == 1


async def test_aggregated_depth_and_subscription_form_with_several_connections():
    async with BackpackSimulator(markets=['SOL_USDC', 'ETH_USDC', 'BTC_USDC'], seed=7, rate=600) as sim:
        collector = Collector()
        from cryptofeed import FeedHandler
        from cryptofeed.exchanges.backpack import BackpackFeed
        from tests.integration.feed_harness import FH_CONFIG, sim_config
        handler = FeedHandler(config=FH_CONFIG)
        feed = BackpackFeed(config=sim_config(sim), depth_interval='200ms', streams_per_connection=2,
                            subscription={L2_BOOK: ['SOL-USDC', 'ETH-USDC', 'BTC-USDC'], TRADES: ['SOL-USDC']},
                            callbacks=collector.callbacks([L2_BOOK, TRADES]))
        handler.add_feed(feed)
        await start_handler(handler)
        try:
            assert len(feed.connection_handlers) == 2
            await wait_until(lambda: all(len(collector.sequences[s]) > 3 for s in ('SOL-USDC', 'ETH-USDC', 'BTC-USDC')),
                             timeout=15)
            sim.pause()
            await asyncio.sleep(0.5)  # let the last 200 ms window flush
            for symbol in ('SOL-USDC', 'ETH-USDC', 'BTC-USDC'):
                await wait_book_converged(feed, collector, sim, symbol, symbol.replace('-', '_'))
        finally:
            await stop_handler(handler)
