"""Public streams of a feed and how they are spread over WebSocket connections: pure planning.

Use ``streams_for(symbol, kinds, prefixes)`` for the stream names one market needs (perp-only
kinds such as ``markPrice`` and ``openInterest`` are left out for spot markets) and
``place(streams, loads, limit)`` to put new streams on connections: each goes to the first
connection with room (``loads[i]`` streams of at most ``limit``), and only when none has room to
a new one. The feed (``hosts/subscribing.py``) sends the SUBSCRIBE frames.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

__all__ = ['Stream', 'PERP_ONLY_KINDS', 'stream_prefixes', 'streams_for', 'place']

#: Stream kinds Backpack publishes for perpetual markets only.
PERP_ONLY_KINDS = frozenset({'markPrice', 'openInterest'})


class Stream(NamedTuple):
    name: str              # e.g. 'depth.200ms.SOL_USDC'
    kind: str              # 'depth'
    symbol: Optional[str]  # normalized symbol; None for the all-market 'liquidation' stream


def stream_prefixes(depth_interval: Optional[str], kline_interval: str) -> Dict[str, str]:
    """Stream kind -> the name prefix its streams use (the kind itself unless listed)."""
    return {'depth': 'depth' if depth_interval is None else f'depth.{depth_interval}',
            'kline': f'kline.{kline_interval}'}


def streams_for(symbol: str, kinds: Iterable[str], prefixes: Mapping[str, str]) -> List[Stream]:
    """The streams of one market (normalized ``symbol``) for ``kinds``, in a stable order.
    All-market and account kinds are not per market and are skipped."""
    exchange = symbol.replace('-', '_')
    perp = symbol.endswith('-PERP')
    out = []
    for kind in sorted(set(kinds)):
        if kind == 'liquidation' or kind.startswith('account.') or (kind in PERP_ONLY_KINDS and not perp):
            continue
        out.append(Stream(f'{prefixes.get(kind, kind)}.{exchange}', kind, symbol))
    return out


def place(streams: Sequence[Stream], loads: Sequence[int], limit: int) -> List[Tuple[int, List[Stream]]]:
    """``(connection index, streams)`` for each connection that gets some of ``streams``:
    existing connections (``0 .. len(loads) - 1``) while they have room, then new ones
    (``len(loads)``, ...), each filled up to ``limit``."""
    if limit < 1:
        raise ValueError(f'limit must be >= 1, got {limit}')
    loads = list(loads)
    placed: Dict[int, List[Stream]] = {}
    index = 0
    for stream in streams:
        while index < len(loads) and loads[index] >= limit:
            index += 1
        if index == len(loads):
            loads.append(0)
        loads[index] += 1
        placed.setdefault(index, []).append(stream)
    return sorted(placed.items())
