"""``RecordedRestClient``: REST answers read from a recording, for playback on every line.

Playback serves the responses a recorder captured, keyed by URL; this client asks ``read`` (the
line's playback reader: 2.x's patched ``HTTPAsyncConn.read``, 3.x's ``feed.http_conn.read``) for
the URL the live client requested, so nothing reaches the network.

A recording holds the URLs it was made against (the simulator's ``https://127.0.0.1:PORT``, say).
``recorded_endpoint`` makes playback self-contained: when the configured ``rest_url`` (or, on
3.x, ``ws_url``) is not in the recording and the recording was made against one endpoint, that
endpoint is used, and the feed logs which one when the playback starts; when it cannot tell
(nothing recorded, or several endpoints), it keeps the configured one and says why with a warning.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from yarl import URL

from cryptofeed.exchanges.backpack.core.errors import BackpackRequestError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient, parse_success

__all__ = ['RecordedRestClient', 'recorded_endpoint']


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f'{parts.scheme}://{parts.netloc}'


def recorded_endpoint(option: str, configured: str, recorded_urls: Optional[Iterable[str]]) -> Tuple[str, int, str]:
    """``(url, log level, message)``: the endpoint playback should use for ``option``
    (``rest_url`` / ``ws_url``) given the URLs a recording holds (None: unknown). Pure."""
    if recorded_urls is None:
        return configured, logging.INFO, f'playback: answers for {option} are looked up under {configured}'
    origins = sorted({_origin(url) for url in recorded_urls if '://' in url})
    if _origin(configured) in origins:
        return configured, logging.INFO, f'playback: {option} {configured} is the endpoint the recording was made against'
    if len(origins) == 1:
        adopted = origins[0] + urlsplit(configured).path
        return adopted, logging.INFO, (
            f'playback: the recording was made against {origins[0]}; its {option} answers are replayed from it '
            f'(the configured {option} {configured} is not in the recording)')
    if not origins:
        return configured, logging.WARNING, (
            f'playback: the recording holds nothing for {option}: what needs it (markets, book snapshots, trade '
            f'backfills) cannot be replayed; record with the REST side included')
    return configured, logging.WARNING, (
        f'playback: the recording was made against several endpoints ({", ".join(origins)}) and the configured '
        f'{option} {configured} is none of them: set {option} to the one to replay')


class RecordedRestClient(BackpackRestClient):
    """A REST client answering from a recording. ``recorded_urls`` (when the line's playback
    lists them) lets it find the recorded endpoint itself; ``playback_note`` is the
    ``(log level, message)`` saying which endpoint it uses, for the feed to log at start."""

    def __init__(self, base_url: str, read: Callable[[str], Awaitable[str]],
                 recorded_urls: Optional[Iterable[str]] = None, **kwargs: Any):
        base, level, message = recorded_endpoint('rest_url', base_url, recorded_urls)
        super().__init__(base, **kwargs)
        self._read = read
        self.playback_note: Tuple[int, str] = (level, message)

    async def _attempt(self, method: str, path: str, query: List[Tuple[str, str]], body: Any,
                       instruction: Optional[str], expect: str, state: Any) -> Any:
        url = URL(self.base_url + path)
        if query:
            url = url.with_query(query)
        self.stats.requests += 1
        try:
            text = await self._read(str(url))
        except (IndexError, KeyError, ConnectionError) as exc:
            raise BackpackRequestError(f'{method} {url} is not in the recording ({type(exc).__name__})',
                                       path=path) from None
        return parse_success(200, text, expect, path)
