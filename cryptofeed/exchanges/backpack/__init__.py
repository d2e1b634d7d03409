"""Backpack exchange integration for cryptofeed.

Import from here: the feed, its configuration, the signer and the error tree. The package is
an overlay on the released cryptofeed distribution; it adds ``cryptofeed.exchanges.backpack``
(and the ccxt-backed ``cryptofeed.exchanges.backpack_ccxt``) to the ``cryptofeed`` namespace.
Importing it registers ``registry.FEED_FACTORY`` under ``'BACKPACK'`` in cryptofeed's
``EXCHANGE_MAP``, so ``FeedHandler.add_feed('BACKPACK', ...)`` and cryptofeed config files naming
the exchange work: ``CRYPTOFEED_BACKPACK_NATIVE`` (or ``backpack.native_enabled``) chooses
``BackpackFeed`` (true) or ``CcxtBackpackFeed`` (false or unset); see ``registry.py``.
"""
from __future__ import annotations

from cryptofeed.exchanges import EXCHANGE_MAP

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.config import BackpackAuth, BackpackConfig, BackpackProxies
from cryptofeed.exchanges.backpack.core.defines import BACKPACK
from cryptofeed.exchanges.backpack.core.errors import (
    BackpackAuthError, BackpackConfigError, BackpackError, BackpackMaintenanceError, BackpackProtocolError,
    BackpackRateLimitedError, BackpackRegionRestrictedError, BackpackRequestError, is_retryable,
)
from cryptofeed.exchanges.backpack.hosts.cf2.feed import BackpackFeed
from cryptofeed.exchanges.backpack.core.ops.health import BackpackHealthReport
from cryptofeed.exchanges.backpack.hosts.registry import FEED_FACTORY

EXCHANGE_MAP.setdefault(BACKPACK, FEED_FACTORY)

__all__ = [
    'BACKPACK', 'BackpackFeed', 'BackpackHealthReport', 'BackpackConfig', 'BackpackAuth', 'BackpackProxies',
    'BackpackSigner', 'BackpackError', 'BackpackConfigError', 'BackpackAuthError', 'BackpackProtocolError',
    'BackpackRequestError', 'BackpackRateLimitedError', 'BackpackRegionRestrictedError',
    'BackpackMaintenanceError', 'is_retryable',
]
