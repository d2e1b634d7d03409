"""``python -m cryptofeed.exchanges.backpack.which_feed``: which class ``'BACKPACK'`` means here.

Use it during a migration to check, before (re)starting a collector, what
``FeedHandler.add_feed('BACKPACK', ...)`` will build with the current environment and config:

    $ python -m cryptofeed.exchanges.backpack.which_feed --config config.yaml
    BACKPACK -> BackpackFeed (backpack.native_enabled=True)

The config is the cryptofeed YAML file given with ``--config``, else the one named by
``CRYPTOFEED_CONFIG``, else none. ``CRYPTOFEED_BACKPACK_NATIVE`` wins over it (``registry.py``).
Exit status: 0 when the feed can be built, 2 when the flag is invalid or the chosen ccxt feed
cannot be imported (the message says what to fix).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.hosts.registry import CONFIG_OPTION, ENV_VAR, FEED_FACTORY, feed_class

__all__ = ['main']


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m cryptofeed.exchanges.backpack.which_feed',
                                     description=f"Print the feed class 'BACKPACK' resolves to ({ENV_VAR} wins "
                                                 f'over {CONFIG_OPTION}).')
    parser.add_argument('--config', help='cryptofeed YAML file (default: $CRYPTOFEED_CONFIG)')
    args = parser.parse_args(argv)
    if args.config is not None and not os.path.isfile(args.config):
        print(f'error: --config {args.config}: no such file', file=sys.stderr)
        return 2
    try:
        native, source = FEED_FACTORY.choice(args.config)
        cls = feed_class(native)
    except BackpackConfigError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'BACKPACK -> {cls.__name__} ({source})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
