"""Which cryptofeed line is installed, and so which host serves it.

``LINE`` is the installed cryptofeed's major version (2 or 3); ``feed_module()`` imports the
host's feed module for it, ``lifecycle()`` the mixin that runs a feed the line's way (the ccxt
feed uses it too). A line this package does not know is refused at import with the
versions it supports, rather than failing later on a missing name.
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

__all__ = ['CRYPTOFEED_VERSION', 'LINE', 'HOSTS', 'feed_module', 'lifecycle']

HOSTS = {2: 'cryptofeed.exchanges.backpack.hosts.cf2.feed', 3: 'cryptofeed.exchanges.backpack.hosts.cf3.feed'}
"""cryptofeed major version -> the module holding that line's ``BackpackFeed``."""

try:
    CRYPTOFEED_VERSION = version('cryptofeed')
except PackageNotFoundError:  # pragma: no cover - cryptofeed importable but not installed as a distribution
    import cryptofeed
    CRYPTOFEED_VERSION = getattr(cryptofeed, '__version__', '0')

LINE = int(CRYPTOFEED_VERSION.split('.')[0])

if LINE not in HOSTS:
    raise ImportError(f'cryptofeed-backpack supports cryptofeed 2.4.1 to 3.x; cryptofeed {CRYPTOFEED_VERSION} '
                      f'is installed')


def feed_module() -> ModuleType:
    """The installed line's feed module (imports and so binds its host)."""
    return importlib.import_module(HOSTS[LINE])


def lifecycle() -> type:
    """The installed line's lifecycle mixin (``Cf2Lifecycle`` or ``Cf3Lifecycle``)."""
    module = importlib.import_module(f'cryptofeed.exchanges.backpack.hosts.cf{LINE}.lifecycle')
    return getattr(module, f'Cf{LINE}Lifecycle')
