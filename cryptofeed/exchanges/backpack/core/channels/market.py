"""The stateless market channels: TICKER, CANDLES, FUNDING, INDEX, OPEN_INTEREST, LIQUIDATIONS.

Each handler counts the frame, parses it with a pure function of ``adapters.py`` and emits the
result through the context. ``markPrice`` serves both FUNDING and INDEX (emitted per what was
asked for each symbol); ``liquidation`` is one all-market stream, filtered to the symbols asked.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping

from cryptofeed.exchanges.backpack.core.defines import CANDLES, FUNDING, INDEX, LIQUIDATIONS, OPEN_INTEREST, TICKER

from cryptofeed.exchanges.backpack.core.wire import parse as adapters
from cryptofeed.exchanges.backpack.core.channels.context import ChannelContext

__all__ = ['MarketChannels']


class MarketChannels:
    """Handlers for ``bookTicker``, ``kline``, ``markPrice``, ``openInterest`` and ``liquidation``.

    ``wanted`` maps a cryptofeed channel to the normalized symbols asked for on it;
    ``candle_intervals`` maps Backpack's kline interval names to cryptofeed's.
    """

    def __init__(self, ctx: ChannelContext, wanted: Mapping[str, set], *, candle_closed_only: bool,
                 candle_intervals: Mapping[str, str]):
        self.ctx = ctx
        self._counts = ctx.metrics.messages
        self._counts.update(dict.fromkeys((TICKER, CANDLES, 'markPrice', OPEN_INTEREST, LIQUIDATIONS), 0))
        self._funding = wanted.get(FUNDING, set())
        self._index = wanted.get(INDEX, set())
        self._liquidations = wanted.get(LIQUIDATIONS, set())
        self._candle_closed_only = candle_closed_only
        self._candle_intervals = candle_intervals

    def handlers(self) -> Dict[str, Callable]:
        """Stream kind -> handler, for the router."""
        return {'bookTicker': self.on_book_ticker, 'kline': self.on_kline, 'markPrice': self.on_mark_price,
                'openInterest': self.on_open_interest, 'liquidation': self.on_liquidation}

    async def on_book_ticker(self, msg, symbol: str, _variant, receipt_ts: float) -> None:
        self._counts[TICKER] += 1
        ctx = self.ctx
        await ctx.emit(TICKER, adapters.parse_book_ticker(msg, symbol, receipt_ts, ctx.raw(msg)), receipt_ts)

    async def on_kline(self, msg, symbol: str, variant: str, receipt_ts: float) -> None:
        self._counts[CANDLES] += 1
        if self._candle_closed_only and not msg.X:
            return
        ctx = self.ctx
        candle = adapters.parse_kline(msg, symbol, self._candle_intervals.get(variant, variant), receipt_ts,
                                      ctx.raw(msg))
        if candle is not None:
            await ctx.emit(CANDLES, candle, receipt_ts)

    async def on_mark_price(self, msg, symbol: str, _variant, receipt_ts: float) -> None:
        self._counts['markPrice'] += 1
        ctx = self.ctx
        raw = ctx.raw(msg)
        if symbol in self._funding:
            await ctx.emit(FUNDING, adapters.parse_funding(msg, symbol, receipt_ts, raw), receipt_ts)
        if symbol in self._index:
            index = adapters.parse_index(msg, symbol, receipt_ts, raw)
            if index is not None:
                await ctx.emit(INDEX, index, receipt_ts)

    async def on_open_interest(self, msg, symbol: str, _variant, receipt_ts: float) -> None:
        self._counts[OPEN_INTEREST] += 1
        ctx = self.ctx
        await ctx.emit(OPEN_INTEREST, adapters.parse_open_interest(msg, symbol, receipt_ts, ctx.raw(msg)),
                       receipt_ts)

    async def on_liquidation(self, msg, symbol: str, _variant, receipt_ts: float) -> None:
        self._counts[LIQUIDATIONS] += 1
        if symbol in self._liquidations:
            ctx = self.ctx
            await ctx.emit(LIQUIDATIONS, adapters.parse_liquidation(msg, symbol, receipt_ts, ctx.raw(msg)),
                           receipt_ts)
