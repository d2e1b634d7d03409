"""What ``'BACKPACK'`` means to cryptofeed: the native ``BackpackFeed`` or the ccxt-backed one.

Use this module when a deployment names the exchange instead of importing a class:
``FeedHandler.add_feed('BACKPACK', ...)``, cryptofeed config files, ``raw_data_collection``
playback. Importing ``cryptofeed.exchanges.backpack`` registers ``FEED_FACTORY`` under
``'BACKPACK'`` in cryptofeed's ``EXCHANGE_MAP``; each call picks the class (DESIGN D11):

1. the environment variable ``CRYPTOFEED_BACKPACK_NATIVE``, when set and not empty (it wins);
2. otherwise ``native_enabled`` in the ``backpack:`` section of the configuration that
   ``add_feed`` passes (the handler's ``config``), so two handlers may choose differently;
3. otherwise the ccxt feed, ``CcxtBackpackFeed`` (the default until the migration flips it).

Accepted values, case-insensitive: ``true``/``1``/``yes`` (native) and ``false``/``0``/``no``
(ccxt); YAML booleans and integers 0/1 work in the config too. Anything else raises
``BackpackConfigError`` naming the variable (or option) and the accepted values. Choosing the
ccxt feed without the ``ccxt`` package installed raises ``BackpackConfigError`` saying to
install ``cryptofeed-backpack[ccxt]`` or to enable the native feed. The choice is logged at
INFO once per distinct outcome.

Importing a class by name (``from cryptofeed.exchanges.backpack import BackpackFeed``,
``from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed``) bypasses all of this.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Mapping, NamedTuple, Optional

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.config import warn_misspelt_sections
from cryptofeed.exchanges.backpack.core.defines import BACKPACK
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError

__all__ = [
    'ENV_VAR', 'CONFIG_OPTION', 'TRUE_VALUES', 'FALSE_VALUES', 'CCXT_MODULE', 'Choice', 'parse_flag',
    'choose', 'feed_class', 'BackpackFeedFactory', 'FEED_FACTORY',
]

LOG = log.get()

ENV_VAR = 'CRYPTOFEED_BACKPACK_NATIVE'
CONFIG_OPTION = 'backpack.native_enabled'
TRUE_VALUES = ('true', '1', 'yes')
FALSE_VALUES = ('false', '0', 'no')
CCXT_MODULE = 'cryptofeed.exchanges.backpack_ccxt'
CCXT_INSTALL_HINT = (
    'the ccxt-backed Backpack feed needs the ccxt package: install it with '
    "`pip install 'cryptofeed-backpack[ccxt]'`, or use the native feed by setting "
    f'{ENV_VAR}=true (or native_enabled: true in the backpack: section of the config)')


class Choice(NamedTuple):
    """Which feed ``'BACKPACK'`` stands for, and what decided it (for the log line)."""

    native: bool
    source: str  # e.g. 'CRYPTOFEED_BACKPACK_NATIVE=yes', 'backpack.native_enabled=True', 'default'


def parse_flag(value: Any, name: str) -> bool:
    """``value`` of the flag ``name`` as a bool. Pure.

    Strings are compared case-insensitively after stripping; ``bool`` and the integers 0 and 1
    (what YAML gives for ``true``/``1``) are taken as they are. Anything else raises
    ``BackpackConfigError`` naming ``name`` and the accepted values.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_VALUES:
            return True
        if word in FALSE_VALUES:
            return False
    accepted = '/'.join(TRUE_VALUES) + ' (native BackpackFeed) or ' + '/'.join(FALSE_VALUES) + ' (CcxtBackpackFeed)'
    raise BackpackConfigError(f'{name} has an invalid value {value!r}; accepted values, case-insensitive: {accepted}')


def _backpack_section(config: Any) -> Mapping[str, Any]:
    """The mapping that may hold ``native_enabled`` in a feed's ``config=`` argument.

    A cryptofeed ``Config`` (what ``add_feed`` passes), a YAML path, ``None`` (cryptofeed's
    ``CRYPTOFEED_CONFIG`` file) and a dict with a ``backpack`` key give their ``backpack:``
    section; any other dict is a mapping of Backpack options itself; a ``BackpackConfig`` has
    no such option.
    """
    from cryptofeed.config import Config

    if isinstance(config, Mapping):
        if 'backpack' in config:
            warn_misspelt_sections(config, 'the cryptofeed configuration')
        section = config.get('backpack', {}) if 'backpack' in config else config
    elif config is None or isinstance(config, (Config, str, os.PathLike)):
        root = (config if isinstance(config, Config) else Config(os.fspath(config) if config is not None else None))
        warn_misspelt_sections(root.config, 'the cryptofeed configuration')  # `backpak:` would be ignored
        section = root.config.get('backpack', {}) if 'backpack' in root.config else {}
    else:
        return {}
    return section if isinstance(section, Mapping) else {}


def choose(config: Any = None, environ: Mapping[str, str] = os.environ) -> Choice:
    """Decide native or ccxt for a feed built with ``config``; the environment wins."""
    raw = environ.get(ENV_VAR)
    if raw is not None and raw.strip():
        return Choice(parse_flag(raw, ENV_VAR), f'{ENV_VAR}={raw.strip()}')
    value = _backpack_section(config).get('native_enabled')
    if value is not None and not (isinstance(value, str) and not value.strip()):
        return Choice(parse_flag(value, CONFIG_OPTION), f'{CONFIG_OPTION}={value}')
    return Choice(False, f'{ENV_VAR} and {CONFIG_OPTION} unset: the ccxt default')


def feed_class(native: bool) -> type:
    """The class for a choice. Importing the ccxt class needs the ``ccxt`` package."""
    if native:
        from cryptofeed.exchanges.backpack.hosts.line import feed_module
        return feed_module().BackpackFeed
    module = importlib.import_module(CCXT_MODULE)  # imports without ccxt; require_ccxt() says what is missing
    module.require_ccxt()
    return module.CcxtBackpackFeed


class BackpackFeedFactory:
    """Stands in ``EXCHANGE_MAP['BACKPACK']``: called like a feed class, builds the chosen feed.

    ``symbols()`` / ``symbol_mapping()`` / ``info()`` answer for the class chosen with no
    configuration (cryptofeed calls them on every ``EXCHANGE_MAP`` entry in
    ``Symbols.load_all``). ``environ`` is read at every call (tests pass their own).
    """

    id = BACKPACK

    def __init__(self, environ: Optional[Mapping[str, str]] = None):
        self._environ = environ
        self._logged: set = set()

    def choice(self, config: Any = None) -> Choice:
        return choose(config, os.environ if self._environ is None else self._environ)

    def resolve(self, config: Any = None) -> type:
        """The feed class for ``config``; logs the choice once per distinct outcome."""
        native, source = self.choice(config)
        cls = feed_class(native)
        if (cls, source) not in self._logged:
            self._logged.add((cls, source))
            LOG.info('%s: using %s (%s)', BACKPACK, cls.__name__, source)
        return cls

    def __call__(self, config: Any = None, **kwargs: Any):
        return self.resolve(config)(config=config, **kwargs)

    def symbol_mapping(self, refresh: bool = False, config: Any = None) -> dict:
        return self.resolve(config).symbol_mapping(refresh=refresh, config=config)

    def symbols(self, refresh: bool = False, config: Any = None) -> list:
        return list(self.symbol_mapping(refresh=refresh, config=config))

    def info(self, config: Any = None) -> dict:
        return self.resolve(config).info(config=config)

    def __repr__(self) -> str:
        return f'<BackpackFeedFactory: {ENV_VAR} / {CONFIG_OPTION} -> BackpackFeed or CcxtBackpackFeed>'


FEED_FACTORY = BackpackFeedFactory()
