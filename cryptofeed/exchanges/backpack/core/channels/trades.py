"""TRADES: every trade exactly once, in id order, across dropped frames and reconnects.

``on_trade`` is the hot path: a trade that directly follows the last one is emitted at once.
Anything else goes through the symbol's ``TradeSequencer``; when ids are missing (a dropped
frame, or a reconnect) it holds live trades back while a task fetches the missing ids from REST
(``trades.fetch_trade_range``), then everything is released in order. While that release is
delivered, live trades of the symbol wait behind it (``SymbolGate``). Symbols are added and
removed while running (``add`` / ``remove``); one added with the id of its newest trade at that
moment gets every trade after it, the first ones from REST.
"""
from __future__ import annotations

import asyncio
import time
from typing import Dict, Iterable, Optional

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.defines import TRADES

from cryptofeed.exchanges.backpack.core.wire import parse as adapters
from cryptofeed.exchanges.backpack.core.wire.parse import parse_trade, raw_payload
from cryptofeed.exchanges.backpack.core.channels.context import ChannelContext, SymbolGate
from cryptofeed.exchanges.backpack.core.errors import BackpackError
from cryptofeed.exchanges.backpack.core.symbols import normalized_to_exchange
from cryptofeed.exchanges.backpack.core.sync.trades import TradeGap, TradeSequencer, fetch_trade_range

__all__ = ['TradeChannel']

LOG = log.get()


class TradeChannel:
    """The trade streams of ``symbols``; gaps up to ``backfill_limit`` ids are fetched from REST."""

    def __init__(self, ctx: ChannelContext, symbols: Iterable[str], *, backfill_limit: int):
        self.ctx = ctx
        self.backfill_limit = backfill_limit
        self.sequencers: Dict[str, TradeSequencer] = {s: TradeSequencer(max_gap=backfill_limit) for s in symbols}
        self.gate = SymbolGate()
        self._metrics = ctx.metrics
        self._callbacks = ctx.callbacks.get(TRADES, ())  # the feed's own list: later additions count
        self._counts = ctx.metrics.messages
        self._counts[TRADES] = 0
        self._from_start: set = set()  # added with no trade yet: everything from their first trade

    def handlers(self):
        return {'trade': self.on_trade}

    def add(self, symbol: str, last_id: Optional[int] = None, *, from_start: bool = False) -> None:
        """Follow ``symbol``'s trades too (subscribed while running). ``last_id``: the newest trade
        id when it was added; the trades after it are fetched from REST when the stream starts
        later, so none printed since the add is missed. ``from_start``: the market had no trade
        when it was added (a new listing), so every trade it prints is delivered, the ones before
        the stream starts fetched from REST."""
        if symbol not in self.sequencers:
            sequencer = self.sequencers[symbol] = TradeSequencer(max_gap=self.backfill_limit)
            sequencer.last_id = last_id
            if from_start and last_id is None:
                self._from_start.add(symbol)
                sequencer.backfilling = True  # live trades wait for the fetch of those before them

    def remove(self, symbol: str) -> None:
        """Stop following ``symbol`` (unsubscribed); a backfill still running for it delivers nothing."""
        self.sequencers.pop(symbol, None)
        self._from_start.discard(symbol)

    def on_subscribe(self, symbol: str) -> None:
        """``symbol``'s connection (re)subscribes: fetch whatever was missed while it was down."""
        if symbol in self._from_start:
            self._from_start.discard(symbol)
            self.ctx.spawn(self._backfill(symbol, TradeGap(0, None)))
            return
        gap = self.sequencers[symbol].on_reconnect()
        if gap is not None:
            self.ctx.spawn(self._backfill(symbol, gap))

    # ---------------------------------------------------------------- the hot path

    def on_trade(self, msg, symbol: str, variant, receipt_ts: float):
        gate = self.gate
        if gate:
            released = gate.get(symbol)
            if released is not None:  # a backfill of this symbol is being delivered: queue behind it
                return gate.behind(released, self.on_trade, msg, symbol, variant, receipt_ts)
        self._counts[TRADES] += 1
        sequencer = self.sequencers.get(symbol)
        if sequencer is None:
            return self.ctx.unexpected('trade', symbol)
        ctx = self.ctx
        trade = parse_trade(msg, symbol, receipt_ts, raw_payload(msg) if ctx.keep_raw else None)
        if sequencer.accept_next(msg.t):
            metrics = self._metrics  # the consumer lag is measured on what reaches callbacks only
            metrics.exchange_time, metrics.delivered_at = trade.timestamp, receipt_ts
            callbacks = self._callbacks
            if len(callbacks) == 1:  # ChannelContext.emit's fast path, inlined: one call less per trade
                return callbacks[0](trade, receipt_ts)
            return ctx.emit(TRADES, trade, receipt_ts)
        return self._out_of_order(msg.t, trade, symbol, receipt_ts)

    async def _out_of_order(self, trade_id: int, trade, symbol: str, receipt_ts: float) -> None:
        sequencer = self.sequencers.get(symbol)
        if sequencer is None:
            return  # unsubscribed meanwhile
        implausible = sequencer.implausible
        ready, gap = sequencer.on_live(trade_id, trade)
        if sequencer.implausible > implausible:  # a corrupt trade id: counted like a corrupt frame
            self.ctx.metrics.on_dropped()
            self.ctx.metrics.on_parse_error()
            if implausible == 0 or sequencer.implausible % 100 == 0:
                LOG.warning('%s: %s: dropped a trade with an implausible id (%d so far); the stream continues '
                            'from id %s', self.ctx.exchange_id, symbol, sequencer.implausible, sequencer.last_id)
        for item in ready:
            await self.ctx.deliver(TRADES, item, receipt_ts)
        if gap is not None:
            self._on_gap(symbol, gap)

    # ---------------------------------------------------------------- backfill

    def _on_gap(self, symbol: str, gap: TradeGap) -> None:
        if self.sequencers[symbol].backfilling:
            LOG.info('%s: %s trade ids %s..%s missing; fetching them from REST', self.ctx.exchange_id, symbol,
                     gap.first, gap.last)
            self.ctx.spawn(self._backfill(symbol, gap))
        else:
            self.ctx.metrics.on_trade_gap_unrecovered()
            LOG.warning('%s: %s lost %d trades (ids %d..%d): more than trade_backfill_limit=%d, not fetched',
                        self.ctx.exchange_id, symbol, gap.size, gap.first, gap.last, self.backfill_limit)

    async def _backfill(self, symbol: str, gap: TradeGap) -> None:
        ctx = self.ctx
        sequencer = self.sequencers.get(symbol)
        if sequencer is None:
            return
        exchange_symbol = normalized_to_exchange(symbol)
        lost_before = sequencer.unrecovered
        try:
            rows = await fetch_trade_range(
                lambda limit: ctx.rest.trades(exchange_symbol, limit),
                lambda limit, offset: ctx.rest.trades_history(exchange_symbol, limit, offset),
                gap.first, gap.last, self.backfill_limit)
            fetched, _skipped = adapters.parse_rest_trades(rows, symbol, time.time(), ctx.keep_raw)
        except asyncio.CancelledError:
            raise
        except (BackpackError, KeyError, TypeError, ValueError) as exc:
            LOG.warning('%s: trade backfill for %s failed (%s); releasing held trades', ctx.exchange_id, symbol, exc)
            ctx.metrics.on_rest_failure()
            fetched = None
        if self.sequencers.get(symbol) is not sequencer:
            return  # unsubscribed while the request was out
        with self.gate.hold(symbol):
            before = sequencer.backfilled
            ready = sequencer.abandon_backfill() if fetched is None else sequencer.on_backfill(fetched)
            ctx.metrics.on_backfilled_trades(sequencer.backfilled - before)
            if sequencer.unrecovered > lost_before:
                ctx.metrics.on_trade_gap_unrecovered()
                LOG.warning('%s: %s: %d trades could not be recovered', ctx.exchange_id, symbol,
                            sequencer.unrecovered - lost_before)
            receipt = time.time()
            for trade in ready:
                await ctx.deliver(TRADES, trade, receipt)

    # ---------------------------------------------------------------- observability

    def state(self) -> Dict[str, dict]:
        return {symbol: {'last_id': seq.last_id, 'duplicates': seq.duplicates, 'gaps': seq.gaps,
                         'backfilled': seq.backfilled, 'unrecovered': seq.unrecovered, 'implausible': seq.implausible}
                for symbol, seq in self.sequencers.items()}
