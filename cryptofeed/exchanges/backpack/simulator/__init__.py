"""A local, protocol-faithful Backpack exchange for tests, the demo and benchmarks.

Start one in-process with ``BackpackSimulator`` (an async context manager; see ``server``) or
as a process with ``python -m cryptofeed.exchanges.backpack.simulator`` (see ``__main__``).
Modules: ``markets`` (the listed markets), ``market`` (the pure, seeded market model),
``wire`` (JSON shapes of events and REST bodies), ``faults`` (fault injection), ``server``
(the aiohttp application, WebSocket fan-out and controls), and the account side: ``account``
(balances, orders, positions), ``verify`` (signature checks) and ``private`` (signed REST
routes and private-stream hooks).
"""
from __future__ import annotations

from cryptofeed.exchanges.backpack.simulator.market import MarketModel
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator, ListingError

__all__ = ['BackpackSimulator', 'ListingError', 'MarketModel']
