"""Errors raised by the Backpack integration, and which of them are worth retrying.

Every error the package raises on purpose derives from ``BackpackError``::

    BackpackError
     +-- BackpackConfigError            invalid settings or keys; fix the configuration
     +-- BackpackHistoryWindowError     a history download too long for the rate limit; narrow it
     +-- BackpackAuthError              a key was rejected or a signature could not be made
     +-- BackpackProtocolError          the exchange sent something we cannot interpret
     +-- BackpackRequestError           an HTTP request failed (status, code, body)
          +-- BackpackRateLimitedError      HTTP 429; carries ``retry_after`` seconds
          +-- BackpackRegionRestrictedError HTTP 451; the exchange refuses this location
          +-- BackpackMaintenanceError      HTTP 503 / status "Maintenance"

Network calls translate transport failures into this tree where they return, so callers
catch ``BackpackError`` and ask ``is_retryable(exc)`` instead of inspecting status codes.
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence, Tuple

__all__ = [
    'BackpackError', 'BackpackConfigError', 'BackpackHistoryWindowError', 'BackpackAuthError', 'BackpackProtocolError',
    'BackpackRequestError', 'BackpackRateLimitedError', 'BackpackRegionRestrictedError',
    'BackpackMaintenanceError', 'is_retryable',
]

_MAX_BODY_IN_MESSAGE = 300


class BackpackError(Exception):
    """Base class of every error raised by this package."""


class BackpackConfigError(BackpackError, ValueError):
    """Settings or credentials are invalid; the message says what to change.

    ``problems`` lists every problem found as ``(location, message)`` pairs, the location a
    tuple of option names (``('proxies', 'url')``); empty when the error has no single option.
    """

    def __init__(self, message: str = '', problems: Sequence[Tuple[Tuple[Any, ...], str]] = ()):
        super().__init__(message)
        self.problems = list(problems)


class BackpackHistoryWindowError(BackpackError, ValueError):
    """A history download (``candles``) whose window would take too many requests at the history
    rate limit; raised before the first request. The message names the window, the number of
    requests and how long they take, and how to go ahead (``max_requests``)."""


class BackpackAuthError(BackpackError):
    """The exchange rejected our credentials, or a request could not be signed."""


class BackpackProtocolError(BackpackError):
    """A response or frame does not have the shape the Backpack API documents."""


class BackpackRequestError(BackpackError):
    """An HTTP request completed with an error status (or never completed: ``status`` is None)."""

    def __init__(self, message: str, *, status: Optional[int] = None, code: Optional[str] = None,
                 body: Optional[str] = None, path: Optional[str] = None):
        self.status = status
        self.code = code
        self.body = body
        self.path = path
        detail = [message]
        if status is not None:
            detail.append(f'status={status}')
        if code:
            detail.append(f'code={code}')
        if path:
            detail.append(f'path={path}')
        if body:
            detail.append(f'body={body[:_MAX_BODY_IN_MESSAGE]!r}')
        super().__init__(' '.join(detail))


class BackpackRateLimitedError(BackpackRequestError):
    """HTTP 429. ``retry_after`` is the server's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class BackpackRegionRestrictedError(BackpackRequestError):
    """HTTP 451: Backpack does not serve this location; a proxy in an allowed region
    (``BackpackConfig.proxies``) helps. ``retry_in``: seconds until the REST client's next trial."""

    retry_in: Optional[float] = None


class BackpackMaintenanceError(BackpackRequestError):
    """HTTP 503 or ``/api/v1/status`` reporting maintenance; retry later."""


_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def is_retryable(exc: BaseException) -> bool:
    """True when repeating the same request later may succeed.

    Pure: looks only at the exception. Rate limits, maintenance, server errors and transport
    failures are retryable; bad requests, auth failures, region blocks and config errors are not.
    """
    if isinstance(exc, BackpackRegionRestrictedError):
        return False
    if isinstance(exc, (BackpackRateLimitedError, BackpackMaintenanceError)):
        return True
    if isinstance(exc, BackpackRequestError):
        return exc.status is None or exc.status in _RETRYABLE_STATUSES
    if isinstance(exc, BackpackError):
        return False
    return isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError))
