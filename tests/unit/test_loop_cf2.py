"""loop.ensure_event_loop: cryptofeed's FeedHandler.run() finds a loop under uvloop >= 0.22."""
from __future__ import annotations

import asyncio
import threading

import uvloop

from cryptofeed.exchanges.backpack.hosts.cf2.loop import ensure_event_loop

UVLOOP = tuple(int(part) for part in uvloop.__version__.split('.')[:2])


def _in_fresh_thread(body):
    """Run ``body`` in a new thread (no event loop of its own); re-raise what it raised."""
    errors = []

    def run():
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_a_loop_is_set_where_the_uvloop_policy_has_none():
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # what FeedHandler() does
    try:
        def body():
            if UVLOOP >= (0, 22):
                try:
                    asyncio.get_event_loop()
                except RuntimeError:
                    pass  # the defect: cryptofeed's run() failed right here
                else:
                    raise AssertionError('uvloop >= 0.22 was expected to have no current loop')
            ensure_event_loop()
            loop = asyncio.get_event_loop()
            assert isinstance(loop, uvloop.Loop)
            ensure_event_loop()
            assert asyncio.get_event_loop() is loop  # idempotent
            loop.close()

        _in_fresh_thread(body)
    finally:
        asyncio.set_event_loop_policy(previous)


def test_nothing_changes_inside_a_running_loop():
    async def main():
        running = asyncio.get_running_loop()
        ensure_event_loop()
        assert asyncio.get_event_loop() is running

    asyncio.run(main())
