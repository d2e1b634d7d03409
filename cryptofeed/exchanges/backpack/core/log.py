"""The package's loggers, under the logger of the installed cryptofeed line.

cryptofeed 2.x logs to ``feedhandler`` (its ``FeedHandler`` sets that logger up from the
``log:`` config); 3.x to ``cryptofeed``. Modules take their logger here when they are imported,
before a host is; the host names the line's root once (``set_root``), and every message goes to
``<root>`` or ``<root><suffix>`` (e.g. ``feedhandler.backpack.book``), so it lands where the
user's cryptofeed logging sends that line's own messages.
"""
from __future__ import annotations

import logging

__all__ = ['get', 'set_root', 'root']

_ROOT = 'feedhandler'


class _LineLogger:
    """A ``logging.Logger`` looked up by name at each use, so that ``set_root`` applies to it."""

    __slots__ = ('suffix',)

    def __init__(self, suffix: str):
        self.suffix = suffix

    def __getattr__(self, name: str):
        return getattr(logging.getLogger(_ROOT + self.suffix), name)


def get(suffix: str = '') -> _LineLogger:
    """The logger ``<root><suffix>`` (``suffix`` empty or starting with a dot)."""
    return _LineLogger(suffix)


def set_root(name: str) -> None:
    global _ROOT
    _ROOT = name


def root() -> str:
    """The line's logger name (``feedhandler`` on 2.x, ``cryptofeed`` on 3.x)."""
    return _ROOT
