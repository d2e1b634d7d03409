"""Which of K shards a market belongs to: a pure, stable function of its normalized symbol.

Use ``shard_of`` to split a venue's markets between K processes that each run a feed with
``shard=(index, K)``: every process computes the same answer for the same symbol, with no
coordination and no shared state, so a market listed tomorrow lands in exactly one shard::

    shard_of('SOL-USDC', 4)        # -> an int in 0..3, the same in every process and release

The hash is CRC-32 (``zlib.crc32``) of the normalized cryptofeed symbol (``SOL-USDC``,
``SOL-USDC-PERP``) encoded as UTF-8, modulo ``count``. It is not Python's ``hash()``, which
changes between processes.
"""
from __future__ import annotations

import zlib
from typing import Any, Tuple

__all__ = ['shard_of', 'check_shard']


def shard_of(symbol: str, count: int) -> int:
    """The shard (``0 .. count - 1``) of the normalized ``symbol``; ``ValueError`` for ``count < 1``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f'the shard count must be an integer >= 1, got {count!r}')
    if not isinstance(symbol, str):
        raise TypeError(f'shard_of takes a normalized symbol string such as SOL-USDC, got {symbol!r}')
    return zlib.crc32(symbol.encode('utf-8')) % count


def check_shard(shard: Any) -> Tuple[int, int]:
    """``shard=(index, count)`` checked: ``(index, count)`` with ``0 <= index < count``, or a
    ``ValueError`` that says what to give."""
    try:
        index, count = shard
    except (TypeError, ValueError):
        raise ValueError(f'shard must be a pair (index, count), e.g. shard=(0, 4), got {shard!r}') from None
    for name, value in (('index', index), ('count', count)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'shard {name} must be an integer, got {value!r} in shard={shard!r}')
    if count < 1:
        raise ValueError(f'shard count must be >= 1, got shard={shard!r}')
    if not 0 <= index < count:
        raise ValueError(f'shard index must be in 0..{count - 1} for {count} shards, got shard={shard!r}')
    return index, count
