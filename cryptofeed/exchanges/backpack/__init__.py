"""Backpack exchange integration for cryptofeed.

Import from here: the configuration, the signer and the error tree. The package is an overlay
on the released cryptofeed distribution; it adds ``cryptofeed.exchanges.backpack`` and nothing
else to the ``cryptofeed`` namespace.
"""
from __future__ import annotations

from cryptofeed.exchanges.backpack.auth import BackpackSigner
from cryptofeed.exchanges.backpack.defines import BACKPACK
from cryptofeed.exchanges.backpack.config import BackpackAuth, BackpackConfig, BackpackProxies
from cryptofeed.exchanges.backpack.errors import (
    BackpackAuthError, BackpackConfigError, BackpackError, BackpackMaintenanceError, BackpackProtocolError,
    BackpackRateLimitedError, BackpackRegionRestrictedError, BackpackRequestError, is_retryable,
)

__all__ = [
    'BACKPACK', 'BackpackConfig', 'BackpackAuth', 'BackpackProxies', 'BackpackSigner', 'BackpackError', 'BackpackConfigError', 'BackpackAuthError',
    'BackpackProtocolError', 'BackpackRequestError', 'BackpackRateLimitedError',
    'BackpackRegionRestrictedError', 'BackpackMaintenanceError', 'is_retryable',
]
