"""A ``BackpackSimulator`` on an event loop of its own thread, for tests of synchronous code.

``*_sync`` calls block the calling thread; a simulator on that thread's loop could not answer
them. ``SimulatorThread`` runs it elsewhere::

    with SimulatorThread(markets=['SOL_USDC'], rate=0) as (sim, run):
        feed.balances_sync()            # served by the simulator thread
        truth = run(lambda: sim.trades('SOL_USDC'))   # read the truth on the simulator's loop
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator


class SimulatorThread:
    def __init__(self, **sim_kwargs: Any):
        self.sim = BackpackSimulator(**sim_kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name='backpack-sim', daemon=True)

    def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` evaluated on the simulator's loop (the simulator is not thread-safe)."""
        async def call():
            return fn()
        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    def __enter__(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop).result(timeout=60)
        return self.sim, self.run

    def __exit__(self, *exc_info) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
