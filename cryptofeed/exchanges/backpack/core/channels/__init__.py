"""The feed's channel families, one module each, every one owning its state and background work.

``BackpackFeed`` builds a ``ChannelContext`` and hands it to each family; the families give the
router their stream handlers and never import the feed:

* ``market.MarketChannels``: bookTicker, kline, markPrice, openInterest, liquidation;
* ``book.BookChannel``: per-symbol ``BookSync`` plus the REST snapshot queue and its workers;
* ``trades.TradeChannel``: per-symbol ``TradeSequencer`` plus REST backfill of missed trades;
* ``account.AccountChannel``: ORDER_INFO, FILLS, POSITIONS, BALANCES on a signed connection of
  their own, with REST catch-up after every (re)connect.
"""
from __future__ import annotations

from cryptofeed.exchanges.backpack.core.channels.book import BookChannel
from cryptofeed.exchanges.backpack.core.channels.context import DONE, ChannelContext, SymbolGate
from cryptofeed.exchanges.backpack.core.channels.market import MarketChannels
from cryptofeed.exchanges.backpack.core.channels.trades import TradeChannel

__all__ = ['ChannelContext', 'SymbolGate', 'DONE', 'MarketChannels', 'BookChannel', 'TradeChannel']
