"""Checks of ``BackpackFeed``'s keyword arguments, made at construction.

Use ``check_feed_options`` before building a feed: it rejects what would otherwise fail late or
silently (a negative timeout that reconnects every few seconds, a misspelt keyword that cryptofeed
would swallow, ``sandbox=True`` quietly connecting to production), with a ``BackpackConfigError``
that names the keyword and says what to give instead. cryptofeed keywords that mean nothing on
Backpack (``checksum_validation``, ``snapshot_interval``) are accepted with one warning each.

``check_symbol_request`` checks what to subscribe: ``symbols='all'`` (with ``market_types`` and
``shard``) or a list, ``channels``, ``subscription``; a request that would subscribe nothing is
refused with what to give instead, rather than running a feed that idles.
"""
from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, Dict, Mapping, Optional

from cryptofeed.exchange import Exchange
from cryptofeed.feed import Feed

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.config import NO_SANDBOX_MESSAGE
from cryptofeed.exchanges.backpack.core.defines import ACCOUNT_CHANNELS
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.core.listings import ALL, Selection, parse_market_types
from cryptofeed.exchanges.backpack.core.sharding import check_shard

__all__ = ['check_feed_options', 'check_symbol_request', 'is_all']

LOG = log.get()


# Keywords cryptofeed's Feed and Exchange take by name; anything else in **kwargs is a mistake.
_CRYPTOFEED_KEYWORDS = frozenset(
    name for function in (Feed.__init__, Exchange.__init__)
    for name, parameter in inspect.signature(function).parameters.items()
    if name != 'self' and parameter.kind is not inspect.Parameter.VAR_KEYWORD)

_MEANINGLESS = {
    'checksum_validation': 'Backpack sends no order book checksum; books are checked by sequence ids '
                           'and for crossed prices instead',
    'snapshot_interval': 'books are kept exact by sequence ids and re-snapshotted only when needed',
}

# name -> (kind, lowest accepted value, whether the lowest is allowed)
_NUMBERS = {
    'ping_interval': (float, 0.0, False),
    'ping_timeout': (float, 0.0, False),
    'snapshot_spacing_s': (float, 0.0, True),
    'trade_backfill_limit': (int, 0, True),
    'snapshot_workers': (int, 1, True),
    'streams_per_connection': (int, 1, True),
    'max_frame_bytes': (int, 65536, True),
}


def check_feed_options(own: Mapping[str, Any], passed_on: Dict[str, Any], known: frozenset) -> None:
    """Validate ``own`` (the feed's keywords) and ``passed_on`` (what goes to cryptofeed's Feed).

    ``known`` is the set of the feed's own keyword names, for suggestions. Keywords that mean
    nothing here are removed from ``passed_on`` after their warning.
    """
    for name, (kind, lowest, inclusive) in _NUMBERS.items():
        if name in own:
            _check_number(name, own[name], kind, lowest, inclusive)
    for name in ('keep_raw', 'raise_callback_errors'):
        if name in own and not isinstance(own[name], bool):
            raise BackpackConfigError(f'{name} must be True or False, got {own[name]!r}')
    if passed_on.get('sandbox'):
        raise BackpackConfigError(f'sandbox=True: {NO_SANDBOX_MESSAGE}')
    for name in list(passed_on):
        if name in _MEANINGLESS:
            value = passed_on.pop(name)
            if value:
                LOG.warning('BACKPACK: %s=%r is ignored: %s', name, value, _MEANINGLESS[name])
        elif name not in _CRYPTOFEED_KEYWORDS:
            candidates = sorted(_CRYPTOFEED_KEYWORDS | known)
            close = difflib.get_close_matches(name, candidates, n=1)
            hint = f'; did you mean {close[0]!r}?' if close else ''
            raise BackpackConfigError(f'BackpackFeed got an unknown keyword argument {name!r}{hint}')


def _check_number(name: str, value: Any, kind: type, lowest: float, inclusive: bool) -> None:
    ok = not isinstance(value, bool) and (isinstance(value, int) if kind is int else isinstance(value, (int, float)))
    if ok and kind is float:
        ok = math.isfinite(value)
    if ok:
        ok = value >= lowest if inclusive else value > lowest
    if not ok:
        bound = f'>= {lowest}' if inclusive else f'> {lowest}'
        noun = 'an integer' if kind is int else 'a finite number of seconds'
        raise BackpackConfigError(f'{name} must be {noun} {bound}, got {value!r}')


def is_all(symbols: Any) -> bool:
    """``symbols='all'`` (any case, surrounding blanks ignored: a config file may say ``symbols: all``)."""
    return isinstance(symbols, str) and symbols.strip().lower() == ALL


def check_symbol_request(subscription: Any, symbols: Any, channels: Any, market_types: Any,
                         shard: Any) -> Optional[Selection]:
    """The ``Selection`` of ``symbols='all'``, or None for symbols given by name; a
    ``BackpackConfigError`` for a request that is malformed or would subscribe nothing."""
    if is_all(symbols):
        if subscription is not None:
            raise BackpackConfigError("symbols='all' goes with channels=[...], not with subscription=")
        if not channels or isinstance(channels, str):
            raise BackpackConfigError("symbols='all' needs channels=[...]: the channels to subscribe on every market")
        try:
            types = parse_market_types(market_types)
            return Selection(types, None if shard is None else check_shard(shard))
        except ValueError as exc:
            raise BackpackConfigError(str(exc)) from None
    if isinstance(symbols, str):
        raise BackpackConfigError(f"symbols must be a list of symbols (e.g. ['SOL-USDC']) or 'all', got {symbols!r}")
    if market_types is not None:
        raise BackpackConfigError("market_types= filters symbols='all'; with symbols given by name, list the ones "
                                  'you want')
    if shard is not None:
        raise BackpackConfigError("shard=(index, count) splits symbols='all' between processes; with symbols given "
                                  'by name, give each process its own list')
    if subscription is not None:
        if not isinstance(subscription, Mapping) or not subscription:
            raise BackpackConfigError(f'subscription must map channels to lists of symbols, e.g. '
                                      f"{{'trades': ['SOL-USDC']}}; got {subscription!r}")
        for channel, names in subscription.items():
            if isinstance(names, str):
                raise BackpackConfigError(f'subscription[{channel!r}] must be a list of symbols, got {names!r}'
                                          + (" (for every market: symbols='all', channels=[...])"
                                             if is_all(names) else ''))
            if channel not in ACCOUNT_CHANNELS and not names:
                raise BackpackConfigError(f'subscription[{channel!r}] has no symbols: it would subscribe nothing; '
                                          "list them, or use symbols='all', channels=[...] for every market")
        return None
    if channels is not None and symbols is None and not all(c in ACCOUNT_CHANNELS for c in channels):
        raise BackpackConfigError("channels=[...] needs symbols=: a list such as ['SOL-USDC'], or 'all' for every "
                                  'listed market')
    if symbols is not None and not channels:
        raise BackpackConfigError('symbols= needs channels=[...] (e.g. channels=[TRADES, L2_BOOK]), or use '
                                  'subscription={channel: [symbols]}')
    if channels and symbols is not None and not list(symbols) and not all(c in ACCOUNT_CHANNELS for c in channels):
        raise BackpackConfigError("symbols=[] subscribes nothing: list the symbols, or give symbols='all'")
    return None
