"""Symbols for cryptofeed's ``Exchange`` contract, shared by the native and the ccxt feed.

Use ``BackpackSymbolsMixin`` as the first base of a Backpack ``Feed``: symbols are converted by
Backpack's spelling rules (``SOL-USDC`` <-> ``SOL_USDC``, ``SOL-USDC-PERP`` <-> ``SOL_USDC_PERP``)
without a download at construction, and ``symbols()`` / ``symbol_mapping()`` / ``info()`` read
``/api/v1/markets`` through ``BackpackRestClient`` when asked (``config`` chooses URL, proxy, CA),
cached per REST URL for ``symbol_cache_ttl_s``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Dict, Iterator, Tuple

from cryptofeed.exceptions import UnsupportedSymbol
from cryptofeed.symbols import Symbol, Symbols

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.config import BackpackConfig
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.core.symbols import exchange_to_normalized, normalized_to_exchange, parse_symbol_data

__all__ = ['BackpackSymbolsMixin']

LOG = log.get()


def _run_blocking(coro):
    """Run ``coro`` to completion from synchronous code, even when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class BackpackSymbolsMixin:
    """cryptofeed's symbol hooks for Backpack (see the module docstring); needs the class's ``id``."""

    _parse_symbol_data = classmethod(lambda cls, data: parse_symbol_data(data))

    @contextmanager
    def _no_symbol_download(self) -> Iterator[None]:
        """cryptofeed's ``Exchange.__init__`` downloads the markets when none are cached; we
        convert symbols by spelling rules instead, so hand it an empty table for the duration."""
        lent_empty_table = not Symbols.populated(self.id)
        if lent_empty_table:
            Symbols.set(self.id, {}, {})
        try:
            yield
        finally:
            if lent_empty_table and Symbols.data.get(self.id) == {'normalized': {}, 'info': {}}:
                Symbols.data.pop(self.id, None)

    def std_symbol_to_exchange_symbol(self, symbol) -> str:
        if isinstance(symbol, Symbol):
            symbol = symbol.normalized
        try:
            return normalized_to_exchange(symbol)
        except (ValueError, TypeError):
            if self.ignore_invalid_instruments:
                LOG.warning('%s: invalid symbol %s ignored', self.id, symbol)
                return symbol
            raise UnsupportedSymbol(f'{symbol} is not a Backpack spot or perpetual symbol '
                                    f'(expected BASE-QUOTE or BASE-QUOTE-PERP, e.g. SOL-USDC, SOL-USDC-PERP)')

    def exchange_symbol_to_std_symbol(self, symbol: str) -> str:
        try:
            return exchange_to_normalized(symbol)
        except (ValueError, TypeError):
            if self.ignore_invalid_instruments:
                return symbol
            raise UnsupportedSymbol(f'{symbol} is not a Backpack spot or perpetual symbol')

    @classmethod
    def symbol_mapping(cls, refresh: bool = False, headers: dict = None, config=None) -> Dict[str, str]:
        """normalized -> exchange symbol for every listed spot/perp market.

        Blocking, like cryptofeed's own: call it outside the event loop or accept the stall.
        ``config`` chooses the REST URL, proxy and CA (default: ``BackpackConfig.coerce(None)``,
        the live exchange unless ``CRYPTOFEED_CONFIG`` says otherwise). Answers are cached per
        REST URL for the config's ``symbol_cache_ttl_s``; ``refresh=True`` fetches anyway.
        cryptofeed's ``Symbols`` table holds the markets of the URL asked last.
        """
        if config is None:
            config = _INFO_CONFIG.get()
        cfg = BackpackConfig.coerce(config)
        key = (cls.id, cfg.rest_url)
        entry = _MARKETS.get(key)
        now = time.monotonic()
        if entry is None or refresh or now - entry[0] >= cfg.symbol_cache_ttl_s:
            async def fetch():
                async with BackpackRestClient.from_config(cfg) as client:
                    return await client.markets()

            normalized, info = cls._parse_symbol_data(_run_blocking(fetch()))
            entry = _MARKETS[key] = (now, normalized, info)
        Symbols.set(cls.id, dict(entry[1]), dict(entry[2]))
        return dict(entry[1])

    @classmethod
    def symbols(cls, refresh: bool = False, config=None) -> list:
        return list(cls.symbol_mapping(refresh=refresh, config=config))

    @classmethod
    def info(cls, config=None) -> dict:
        """cryptofeed's ``info()`` of the markets at ``config``'s REST URL."""
        token = _INFO_CONFIG.set(config)   # cryptofeed's info() asks symbol_mapping() without a config
        try:
            return super().info()
        finally:
            _INFO_CONFIG.reset(token)


# (exchange id, REST URL) -> (monotonic time fetched, normalized -> exchange symbol, info): the
# markets of each endpoint, kept for the asking config's symbol_cache_ttl_s.
_MARKETS: Dict[Tuple[str, str], Tuple[float, Dict[str, str], dict]] = {}
# The config of an info() call in progress, for the symbol_mapping() it makes without one.
_INFO_CONFIG: ContextVar = ContextVar('backpack_info_config', default=None)
