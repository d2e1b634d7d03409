"""Retry and reconnect timing as plain data: jittered exponential delays and ``Retry-After``.

Use ``backoff_delays`` wherever something is attempted again (REST retries, WebSocket
reconnects): it yields an endless sequence of waits that grow geometrically from ``base``,
never exceed ``cap`` and are jittered so that many clients do not retry in lock step. Use
``parse_retry_after`` to turn a server's ``Retry-After`` header into seconds.

Both functions are pure: no sleeping, no clock reads unless ``now`` is omitted, and the
random source is injectable so tests can seed it.
"""
from __future__ import annotations

import math
import random
import time
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Iterator, Optional, Protocol

__all__ = ['JITTER_MODES', 'backoff_delays', 'parse_retry_after']

JITTER_MODES = ('full', 'equal', 'none')


class _RandomSource(Protocol):
    def random(self) -> float: ...


def backoff_delays(base: float, cap: float, factor: float = 2.0, jitter: str = 'full',
                   rng: Optional[_RandomSource] = None) -> Iterator[float]:
    """Endless delays (seconds) for attempt 1, 2, 3, ...

    The n-th ceiling is ``min(cap, base * factor ** n)`` (n from 0). ``jitter`` picks where in
    ``[0, ceiling]`` each delay falls:

    * ``'full'``  -- uniformly in ``[0, ceiling]``: spreads clients the most;
    * ``'equal'`` -- uniformly in ``[ceiling / 2, ceiling]``: keeps at least half the wait;
    * ``'none'``  -- exactly the ceiling (deterministic; for callers that jitter elsewhere).

    ``rng`` is anything with a ``random()`` method returning floats in ``[0, 1)``, such as a
    seeded ``random.Random``; by default a fresh unseeded ``random.Random`` is used.
    """
    if not (isinstance(base, (int, float)) and math.isfinite(base) and base > 0):
        raise ValueError(f'base must be a positive number of seconds, got {base!r}')
    if not (isinstance(cap, (int, float)) and math.isfinite(cap) and cap >= base):
        raise ValueError(f'cap must be a finite number of seconds >= base ({base}), got {cap!r}')
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 1):
        raise ValueError(f'factor must be >= 1, got {factor!r}')
    if jitter not in JITTER_MODES:
        raise ValueError(f'jitter must be one of {JITTER_MODES}, got {jitter!r}')
    return _delays(float(base), float(cap), float(factor), jitter, rng or random.Random())


def _delays(base: float, cap: float, factor: float, jitter: str, rng: _RandomSource) -> Iterator[float]:
    ceiling = base
    while True:
        if jitter == 'full':
            delay = ceiling * rng.random()
        elif jitter == 'equal':
            delay = ceiling / 2 + (ceiling / 2) * rng.random()
        else:
            delay = ceiling
        yield min(cap, max(0.0, delay))
        # Once at the cap, stay there: no ever-growing exponent, no float overflow.
        ceiling = cap if ceiling >= cap else min(cap, ceiling * factor)


def parse_retry_after(header_value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait according to a ``Retry-After`` header, or None if absent or unreadable.

    Accepts delta-seconds (``"120"``; a decimal such as ``"0.5"`` is tolerated) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``), which is measured against ``now`` (Unix seconds,
    default ``time.time()``). A date in the past gives ``0.0``; negative or non-finite values
    give None.
    """
    if header_value is None:
        return None
    text = str(header_value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less parse means the same
        when = when.replace(tzinfo=timezone.utc)
    reference = time.time() if now is None else float(now)
    return max(0.0, when.timestamp() - reference)
