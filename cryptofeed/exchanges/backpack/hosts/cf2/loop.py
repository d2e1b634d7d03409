"""Event-loop compatibility of cryptofeed 2.4.1's ``FeedHandler`` with uvloop 0.22 and later.

Use ``ensure_event_loop()`` before cryptofeed looks the loop up. ``FeedHandler()`` installs
uvloop's event-loop policy and ``FeedHandler.run()`` then calls ``asyncio.get_event_loop()``;
since uvloop 0.22 that call raises ``RuntimeError: There is no current event loop`` unless a
loop was set, so the documented ``fh.run()`` failed before any feed started. Capping uvloop
below 0.22 is no way out: ccxt (the ``[ccxt]`` extra) pins uvloop 0.22.1. ``BackpackFeed`` calls
this when it is built (normally after ``FeedHandler()``, which is when the policy is in place),
so every program that uses the feed gets a loop where cryptofeed expects one.
"""
from __future__ import annotations

import asyncio
import warnings

__all__ = ['ensure_event_loop']


def ensure_event_loop() -> None:
    """Make sure the current thread has an event loop that ``asyncio.get_event_loop()`` returns.

    Nothing happens inside a running loop, or when the current policy already has a loop for
    this thread; otherwise a new loop of the current policy is created and set.
    """
    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    policy = asyncio.get_event_loop_policy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            policy.get_event_loop()
    except RuntimeError:
        policy.set_event_loop(policy.new_event_loop())
