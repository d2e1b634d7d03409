"""Backpack exchange integration for cryptofeed 2.4.1, 2.5.0 and 3.x.

Import from here: the feed, its configuration, the signer, the error tree, ``run_handler``, the
account channel names (``ORDER_INFO``, ``FILLS``, ``POSITIONS``, ``BALANCES``) and the order
vocabulary (``BUY``, ``LIMIT``, ``CANCELLED``, ...): cryptofeed 3 dropped most of these, so
they are exported here with cryptofeed 2.x's values and one import works on every line. The package is an overlay on the released cryptofeed distribution; it adds
``cryptofeed.exchanges.backpack`` (and the ccxt-backed ``cryptofeed.exchanges.backpack_ccxt``)
to the ``cryptofeed`` namespace. ``core/`` imports nothing from cryptofeed; ``hosts/`` maps it
onto the installed line (``hosts/line.py`` picks ``cf2`` or ``cf3``). Importing the package
registers ``registry.FEED_FACTORY`` under ``'BACKPACK'`` in cryptofeed's ``EXCHANGE_MAP``, so
``FeedHandler.add_feed('BACKPACK', ...)`` and config files naming the exchange work:
``CRYPTOFEED_BACKPACK_NATIVE`` (or ``backpack.native_enabled``) chooses ``BackpackFeed``
(true) or ``CcxtBackpackFeed`` (false or unset); see ``hosts/registry.py``.
"""
from __future__ import annotations

import sys

try:
    from cryptofeed.exchanges import EXCHANGE_MAP
except ImportError:
    import cryptofeed
    if getattr(cryptofeed, '__file__', None) is not None:
        raise  # cryptofeed is installed and failed for a reason of its own
    # No cryptofeed: ``cryptofeed`` is only this checkout's folder (a namespace package).
    raise ImportError(
        f'cryptofeed is not installed for this Python ({sys.executable}): the cryptofeed folder it found is '
        f'only the cryptofeed-backpack overlay. Use the environment `make` builds (`.venv-X.Y/bin/python`, or '
        f'`. .venv-X.Y/bin/activate` first), or `pip install cryptofeed-backpack` into this one') from None

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.config import BackpackAuth, BackpackConfig, BackpackProxies
from cryptofeed.exchanges.backpack.core.defines import (
    BACKPACK, BALANCES, BOTH, BUY, CANCELLED, EXPIRED, FAILED, FILL_OR_KILL, FILLED, FILLS, GOOD_TIL_CANCELED,
    IMMEDIATE_OR_CANCEL, LIMIT, LONG, MAKER, MAKER_OR_CANCEL, MARKET, OPEN, ORDER_INFO, PARTIAL, PENDING, POSITIONS,
    SELL, SHORT, TAKER, TRIGGER_LIMIT, TRIGGER_MARKET,
)
from cryptofeed.exchanges.backpack.core.errors import (
    BackpackAuthError, BackpackConfigError, BackpackError, BackpackMaintenanceError, BackpackProtocolError,
    BackpackRateLimitedError, BackpackRegionRestrictedError, BackpackRequestError, is_retryable,
)
from cryptofeed.exchanges.backpack.core.ops.health import BackpackHealthReport
from cryptofeed.exchanges.backpack.core.ops.prometheus import BackpackCollector
from cryptofeed.exchanges.backpack.hosts.line import LINE as CRYPTOFEED_LINE, feed_module
from cryptofeed.exchanges.backpack.hosts.registry import FEED_FACTORY
from cryptofeed.exchanges.backpack.hosts.rest_api import UnsupportedTradingOption
from cryptofeed.exchanges.backpack.hosts.running import run_handler

BackpackFeed = feed_module().BackpackFeed

# The account types of the installed line (cryptofeed's on 2.x, this package's on 3.x), bound
# by its host: ``isinstance(obj, Fill)`` works on every line.
from cryptofeed.exchanges.backpack.core.records import Balance, Fill, OrderInfo, Position  # noqa: E402

EXCHANGE_MAP.setdefault(BACKPACK, FEED_FACTORY)

#: The account and order vocabulary, importable from here on every line (3.x dropped most of it).
ORDER_NAMES = ['BUY', 'SELL', 'LIMIT', 'MARKET', 'TRIGGER_LIMIT', 'TRIGGER_MARKET', 'GOOD_TIL_CANCELED',
               'IMMEDIATE_OR_CANCEL', 'FILL_OR_KILL', 'MAKER_OR_CANCEL', 'OPEN', 'PENDING', 'PARTIAL', 'FILLED',
               'CANCELLED', 'EXPIRED', 'FAILED', 'MAKER', 'TAKER', 'LONG', 'SHORT', 'BOTH']

__all__ = ORDER_NAMES + [
    'BACKPACK', 'ORDER_INFO', 'FILLS', 'POSITIONS', 'BALANCES', 'CRYPTOFEED_LINE',
    'OrderInfo', 'Fill', 'Position', 'Balance',
    'BackpackFeed', 'BackpackHealthReport', 'BackpackCollector', 'BackpackConfig', 'BackpackAuth', 'BackpackProxies',
    'BackpackSigner', 'BackpackError', 'BackpackConfigError', 'BackpackAuthError', 'BackpackProtocolError',
    'BackpackRequestError', 'BackpackRateLimitedError', 'BackpackRegionRestrictedError',
    'BackpackMaintenanceError', 'UnsupportedTradingOption', 'is_retryable', 'run_handler',
]
