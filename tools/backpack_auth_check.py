"""Entry point for ``python -m tools.backpack_auth_check`` from a source checkout.

The implementation lives in ``cryptofeed.exchanges.backpack.auth_check`` and is the same code the
installed ``backpack-auth-check`` console script runs; see that module for the options.
"""
from __future__ import annotations

import sys

from cryptofeed.exchanges.backpack.auth_check import main

__all__ = ['main']

if __name__ == '__main__':
    sys.exit(main())
