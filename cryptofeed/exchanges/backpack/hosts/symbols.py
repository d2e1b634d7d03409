"""Symbols for cryptofeed's ``Exchange`` contract, shared by the native and the ccxt feed.

Use ``BackpackSymbolsMixin`` as the first base of a Backpack ``Feed``: symbols are converted by
Backpack's spelling rules (``SOL-USDC`` <-> ``SOL_USDC``, ``SOL-USDC-PERP`` <-> ``SOL_USDC_PERP``)
without a download at construction, and ``symbols()`` / ``symbol_mapping()`` / ``info()`` read
``/api/v1/markets`` through ``BackpackRestClient`` when asked (``config`` chooses URL, proxy, CA).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from contextlib import contextmanager
from typing import Dict, Iterator

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
        """normalized -> exchange symbol for every listed spot/perp market (cached process-wide).

        Blocking, like cryptofeed's own: call it outside the event loop or accept the stall.
        ``config`` chooses the REST URL, proxy and CA (default: the live exchange).
        """
        if Symbols.populated(cls.id) and not refresh:
            return Symbols.get(cls.id)[0]

        async def fetch():
            async with BackpackRestClient.from_config(BackpackConfig.coerce(config)) as client:
                return await client.markets()

        normalized, info = cls._parse_symbol_data(_run_blocking(fetch()))
        Symbols.set(cls.id, normalized, info)
        return normalized

    @classmethod
    def symbols(cls, refresh: bool = False, config=None) -> list:
        return list(cls.symbol_mapping(refresh=refresh, config=config))

    @classmethod
    def info(cls, config=None) -> dict:
        cls.symbol_mapping(config=config)
        return super().info()
