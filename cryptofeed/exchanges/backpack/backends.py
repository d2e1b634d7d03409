"""Redis and PostgreSQL backends for Backpack's account channels, on every cryptofeed line.

``from cryptofeed.exchanges.backpack.backends import BalancesRedis, PositionsPostgres, ...``: one
class per channel (``BALANCES``, ``POSITIONS``, ``ORDER_INFO``, ``FILLS``) and store, given as
that channel's callback. They replace cryptofeed's own account backends, which fail on Backpack
data or do not exist (see ``hosts/backends.py`` and docs/exchanges/backpack.md, "Backends").
Install the client library with ``cryptofeed-backpack[redis]`` or ``cryptofeed-backpack[postgres]``.
"""
from __future__ import annotations

from cryptofeed.exchanges.backpack.hosts.backends import (
    BalancesPostgres, BalancesRedis, FillsPostgres, FillsRedis, OrderInfoPostgres, OrderInfoRedis,
    PermanentWriteError, PositionsPostgres, PositionsRedis,
)

__all__ = ['BalancesRedis', 'PositionsRedis', 'OrderInfoRedis', 'FillsRedis',
           'BalancesPostgres', 'PositionsPostgres', 'OrderInfoPostgres', 'FillsPostgres',
           'PermanentWriteError']
