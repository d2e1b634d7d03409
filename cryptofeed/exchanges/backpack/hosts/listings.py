"""Markets followed while running: ``symbols='all'``, the listing poll, ``add_symbols`` /
``remove_symbols``, and no feed left idling with nothing.

``BackpackListingsMixin`` is a part of ``BackpackFeedBase`` (``hosts/feed.py``):

* ``symbols='all'``: once running, the feed reads ``/api/v1/markets`` (retrying with backoff
  until it answers), subscribes every market ``Selection`` keeps (open, of ``market_types``, in
  ``shard``) over as many connections as ``streams_per_connection`` requires, starts the private
  connection if account channels were asked (filtered to the markets followed), then polls the
  markets every ``BackpackConfig.listing_poll_s`` seconds: a new open market is subscribed (its
  book synced, its trades from the moment it was seen), one that left the list or stopped being
  ``Open`` is unsubscribed and its book dropped; each logged once and counted in the metrics
  (``listings_added`` / ``listings_removed``). Other markets' streams are not touched.
* ``await feed.add_symbols([...])`` / ``await feed.remove_symbols([...])`` on a running feed, with
  the guarantees of the start: an exact book from a snapshot, and every trade after the one that
  was newest when the symbol was added (the first ones fetched from REST). A symbol Backpack does
  not list raises ``BackpackConfigError`` with the close matches ("did you mean SOL-USDC?").
* Symbols given as a list are checked against the markets at the first subscribe: the unlisted
  ones are reported (ERROR log, ``unlisted_symbols`` in the metrics, health degraded) with their
  close matches, and when none is listed the feed stops with that error (``stopped``; health
  unhealthy) instead of running with nothing. So does ``symbols='all'`` when nothing matches.
"""
from __future__ import annotations

import asyncio
from typing import Iterable, List, Optional, Sequence, Tuple

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.channels.account import PRIVATE_CHANNELS
from cryptofeed.exchanges.backpack.core.defines import LIQUIDATIONS
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError, BackpackError
from cryptofeed.exchanges.backpack.core.listings import ListingChange, diff_listings, unlisted_message
from cryptofeed.exchanges.backpack.core.subscriptions import Stream, streams_for
from cryptofeed.exchanges.backpack.core.symbols import BackpackSymbolService, SymbolTable, normalized_to_exchange
from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays
from cryptofeed.exchanges.backpack.core.wire.parse import rest_trade_id

__all__ = ['BackpackListingsMixin']

LOG = log.get()


class BackpackListingsMixin:
    """Following markets while running (see the module docstring)."""

    # ------------------------------------------------------------------ public API

    @property
    def followed_symbols(self) -> List[str]:
        """The markets this feed subscribes now (normalized symbols), sorted."""
        return sorted(self._followed)

    async def add_symbols(self, symbols: Iterable[str], channels: Optional[Sequence[str]] = None) -> List[str]:
        """Subscribe ``symbols`` on the running feed, on ``channels`` (default: every channel of
        the feed); returns the symbols that were not followed yet. ``BackpackConfigError`` when
        one is not listed, or a channel is not one of the feed's."""
        self._check_running('add_symbols')
        wanted = self._normalize(symbols)
        channels = self._feed_channels() if channels is None else list(channels)
        strange = [c for c in channels if c not in self._wanted]
        if strange:
            raise BackpackConfigError(f'add_symbols: {strange} not among this feed\'s channels '
                                      f'{sorted(self._wanted)}; start a feed for those channels')
        table = await self._markets_table()
        if any(s not in table.normalized for s in wanted):
            table = await self._markets_table(refresh=True)  # listed a moment ago?
        unlisted = [s for s in wanted if s not in table.normalized]
        if unlisted:
            raise BackpackConfigError('; '.join(unlisted_message(s, list(table.normalized)) for s in unlisted))
        async with self._change_lock():
            new = [s for s in wanted if s not in self._followed]
            self._pinned.update(wanted)
            self._excluded.difference_update(wanted)
            await self._add(wanted, channels, anchor=True)
            self.metrics.symbols_added += len(new)
        LOG.info('%s: subscribed %s', self.id, ', '.join(new) or 'nothing new')
        return new

    async def remove_symbols(self, symbols: Iterable[str]) -> List[str]:
        """Unsubscribe ``symbols`` (UNSUBSCRIBE frames; their books and trade state dropped);
        returns them. ``BackpackConfigError`` for a symbol the feed does not follow, or when
        nothing would be left."""
        self._check_running('remove_symbols')
        gone = self._normalize(symbols)
        async with self._change_lock():
            strangers = [s for s in gone if s not in self._followed]
            if strangers:
                raise BackpackConfigError(f'remove_symbols: {", ".join(strangers)} not subscribed on this feed '
                                          f'(it follows {len(self._followed)} markets: see feed.followed_symbols)')
            if set(gone) >= self._followed and self._account is None:
                raise BackpackConfigError('remove_symbols would leave the feed with no market; stop the feed instead')
            await self._remove(gone)
            self._excluded.update(gone)
            self._pinned.difference_update(gone)
            self.metrics.symbols_removed += len(gone)
        LOG.info('%s: unsubscribed %s', self.id, ', '.join(gone))
        return gone

    # ------------------------------------------------------------------ markets

    async def _markets_table(self, refresh: bool = False) -> SymbolTable:
        if self._symbol_service is None:
            self._symbol_service = BackpackSymbolService(self.rest.markets,
                                                         ttl_s=self.backpack_config.symbol_cache_ttl_s)
        return await self._symbol_service.get(refresh=refresh)

    async def _known_symbols(self) -> Optional[set]:
        """The listed symbols (None when the markets cannot be read); checks the requested
        symbols against them once (see the module docstring)."""
        try:
            table = await self._markets_table()
        except BackpackError as exc:
            LOG.warning('%s: could not load /api/v1/markets (%s); subscribing without checking symbols',
                        self.id, exc)
            return None
        if not self._checked and self._selection is None:
            self._checked = True
            await self._check_requested(table)
        return set(table.normalized)

    async def _check_requested(self, table: SymbolTable) -> None:
        requested = set().union(*(s for c, s in self._wanted.items() if c not in PRIVATE_CHANNELS))
        listed = list(table.normalized)
        unlisted = sorted(requested - set(listed))
        for symbol in unlisted:
            message = self.metrics.unlisted[symbol] = unlisted_message(symbol, listed)
            LOG.error('%s: %s (its streams are not subscribed)', self.id, message)
            for wanted in self._wanted.values():
                wanted.discard(symbol)
            self._router.remove_symbol(normalized_to_exchange(symbol))
            self._book.remove(symbol)  # health judges the books that exist
            self._trade.remove(symbol)
        for conn in self._public:  # never subscribed: add_symbols may subscribe them once listed
            conn.streams[:] = [s for s in conn.streams if s.symbol not in unlisted]
        self._followed.difference_update(unlisted)
        self._sync_account_filters()
        self.metrics.subscribed_symbols = len(self._followed)
        if requested and len(unlisted) == len(requested):
            await self._halt('none of the requested symbols is listed: ' + '; '.join(
                self.metrics.unlisted[s] for s in unlisted))

    # ------------------------------------------------------------------ symbols='all'

    async def _follow_listings(self) -> None:
        """The task of ``symbols='all'``: subscribe the selection, then follow listings."""
        delays = backoff_delays(self.reconnect_backoff_base_s, self.reconnect_backoff_max_s)
        while True:
            try:
                table = await self._markets_table(refresh=True)
                break
            except BackpackError as exc:
                delay = next(delays)
                LOG.warning("%s: symbols='all': /api/v1/markets failed (%s); asking again in %.1f s",
                            self.id, exc, delay)
                await asyncio.sleep(delay)
        selected = self._selection.select(table)
        if not selected:
            await self._halt(f"symbols='all' found no {self._selection.describe()} among the "
                             f'{len(table)} markets of /api/v1/markets')
            return
        async with self._change_lock():
            await self._add(selected, self._feed_channels(), anchor=False)
        LOG.info("%s: symbols='all': following %d %s", self.id, len(selected), self._selection.describe())
        if self._account is not None:
            self._launch_connection(*self._private_connection())
        while True:
            await asyncio.sleep(self.backpack_config.listing_poll_s)
            try:
                table = await self._markets_table(refresh=True)
            except BackpackError as exc:
                LOG.warning('%s: listing poll failed (%s); trying again in %.0f s', self.id, exc,
                            self.backpack_config.listing_poll_s)
                continue
            if self._symbol_service.last_error is not None:
                continue  # the previous table, served because the request failed: nothing learnt
            await self._apply_listings(diff_listings(self._followed, table, self._selection, pinned=self._pinned,
                                                     excluded=self._excluded))

    async def _apply_listings(self, change: ListingChange) -> None:
        if not change:
            return
        async with self._change_lock():
            if change.removed:
                await self._remove(change.removed)
                self.metrics.listings_removed += len(change.removed)
                for symbol in change.removed:
                    LOG.info('%s: %s delisted or no longer open: unsubscribed, book dropped', self.id, symbol)
            if change.added:
                await self._add(change.added, self._feed_channels(), anchor=True)
                self.metrics.listings_added += len(change.added)
                for symbol in change.added:
                    LOG.info('%s: new listing %s: subscribed', self.id, symbol)

    # ------------------------------------------------------------------ the changes themselves

    def _check_running(self, what: str) -> None:
        if not self._running or self._closing:
            raise BackpackConfigError(f'{what} changes a running feed; this one is '
                                      f'{"stopped" if self._closing else "not started"} (give the symbols to '
                                      f'BackpackFeed(...) instead)')

    def _change_lock(self) -> asyncio.Lock:
        if self._changes is None:
            self._changes = asyncio.Lock()
        return self._changes

    def _feed_channels(self) -> List[str]:
        return sorted(self._wanted)

    def _normalize(self, symbols: Iterable[str]) -> List[str]:
        if isinstance(symbols, str):
            symbols = [symbols]
        out = []
        for symbol in symbols:
            name = self.exchange_symbol_to_std_symbol(self.std_symbol_to_exchange_symbol(symbol))
            if name not in out:
                out.append(name)
        if not out:
            raise BackpackConfigError('no symbols given')
        return out

    async def _add(self, symbols: Sequence[str], channels: Sequence[str], *, anchor: bool) -> None:
        """Register ``symbols`` with the router and the channels, then subscribe their streams.
        ``anchor``: start each trade stream after the newest trade now (one REST request each)."""
        kinds = {self.websocket_channels[c] for c in channels if c not in PRIVATE_CHANNELS}
        streams: List[Stream] = []
        for symbol in symbols:
            for channel in channels:
                self._wanted[channel].add(symbol)
            known = self._streams_of(symbol)
            self._router.add_symbol(normalized_to_exchange(symbol), symbol)
            if 'depth' in kinds:
                self._book.add(symbol)
            if 'trade' in kinds and symbol not in self._trade.sequencers:
                answered, newest = await self._newest_trade_id(symbol) if anchor else (False, None)
                self._trade.add(symbol, newest, from_start=answered and newest is None)
            streams.extend(s for s in streams_for(symbol, kinds, self._prefixes) if s.name not in known)
            self._followed.add(symbol)
            self.metrics.unlisted.pop(symbol, None)
        if LIQUIDATIONS in channels and not any(s.kind == 'liquidation' for c in self._public for s in c.streams):
            streams.append(Stream('liquidation', 'liquidation', None))
        self._sync_account_filters()
        self.metrics.subscribed_symbols = len(self._followed)
        await self._open_streams(streams)

    async def _remove(self, symbols: Sequence[str]) -> None:
        gone = set(symbols)
        for symbol in symbols:
            for wanted in self._wanted.values():
                wanted.discard(symbol)
            self._router.remove_symbol(normalized_to_exchange(symbol))
            self._book.remove(symbol)
            self._trade.remove(symbol)
        self._followed.difference_update(gone)
        self._sync_account_filters()
        self.metrics.subscribed_symbols = len(self._followed)
        await self._close_streams(gone)

    def _streams_of(self, symbol: str) -> set:
        return {s.name for conn in self._public for s in conn.streams if s.symbol == symbol}

    async def _newest_trade_id(self, symbol: str) -> Tuple[bool, Optional[int]]:
        """(known, id of the newest trade): (True, None) for a market without a trade yet,
        (False, None) when REST could not say."""
        try:
            rows = await self.rest.trades(normalized_to_exchange(symbol), 1)
        except BackpackError as exc:
            LOG.warning('%s: %s: newest trade unknown (%s); its trades start with the first one streamed',
                        self.id, symbol, exc)
            return False, None
        ids = [i for i in (rest_trade_id(row) for row in rows or ()) if i is not None]
        if rows and not ids:
            return False, None
        return True, (max(ids) if ids else None)

    def _sync_account_filters(self) -> None:
        """Account channels deliver the markets followed: ``symbols='all'`` ones, and those
        asked with a symbol list (an empty list keeps meaning every market)."""
        if self._account is None:
            return
        for channel in self._account.filters:
            if self._selection is not None or channel not in self._account_every_market:
                self._account.filters[channel] = frozenset(self._wanted[channel])

    async def _halt(self, message: str) -> None:
        """Stop the feed for good with ``message`` (health: unhealthy, ``stopped``)."""
        if self.metrics.stopped is not None:
            return
        self.metrics.stopped = message
        LOG.error('%s: %s; the feed stops', self.id, message)
        self._closing = True
        if self._account is not None:
            self._account.stopping = True
        await self._halt_line(BackpackConfigError(message))
