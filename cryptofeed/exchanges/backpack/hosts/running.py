"""``run_handler``: run a ``FeedHandler`` for a while, the same call on every cryptofeed line.

cryptofeed 2.x's ``FeedHandler.run()`` runs on the thread's current event loop until Ctrl-C
(a ``SystemExit`` raised on that loop stops it the same way); 3.x's runs a loop of its own and
stops on ``request_stop()``. A script that streams for N seconds, or runs a coroutine beside the
feeds (placing orders, printing a report), needs different code on each; this is that code::

    run_handler(handler, seconds=20, beside=[place_orders()], on_stop=report)

``seconds=None`` runs until Ctrl-C (or SIGTERM). ``on_stop`` is called when the time is up,
before the feeds stop. Coroutines in ``beside`` are cancelled when the handler has stopped.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Iterable, Optional

from cryptofeed.exchanges.backpack.hosts.line import LINE

__all__ = ['run_handler']


def run_handler(handler, seconds: Optional[float] = None, *, beside: Iterable[Awaitable] = (),
                on_stop: Optional[Callable[[], None]] = None) -> None:
    if seconds is not None and not seconds > 0:
        raise ValueError(f'seconds must be > 0 (or None: until Ctrl-C), got {seconds!r}')
    beside = list(beside)
    if LINE >= 3:
        asyncio.run(_run_cf3(handler, seconds, beside, on_stop))
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    tasks = [loop.create_task(coro) for coro in beside]

    def time_is_up():
        if on_stop is not None:
            on_stop()
        raise SystemExit  # 2.x's run() treats it like Ctrl-C: stop the feeds, flush, close

    if seconds is not None:
        loop.call_later(seconds, time_is_up)
    try:
        handler.run()
    finally:
        for task in tasks:
            task.cancel()


async def _run_cf3(handler, seconds, beside, on_stop) -> None:
    tasks = [asyncio.ensure_future(coro) for coro in beside]

    def time_is_up():
        if on_stop is not None:
            on_stop()
        handler.request_stop()

    if seconds is not None:
        asyncio.get_running_loop().call_later(seconds, time_is_up)
    try:
        await handler.run_async()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
