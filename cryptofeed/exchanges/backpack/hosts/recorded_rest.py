"""``RecordedRestClient``: REST answers read from a recording, for playback on every line.

Playback serves the responses a recorder captured, keyed by URL; this client asks ``read`` (the
line's playback reader: 2.x's patched ``HTTPAsyncConn.read``, 3.x's ``feed.http_conn.read``) for
the URL the live client requested, so nothing reaches the network.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, List, Optional, Tuple

from yarl import URL

from cryptofeed.exchanges.backpack.core.errors import BackpackRequestError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient, parse_success

__all__ = ['RecordedRestClient']


class RecordedRestClient(BackpackRestClient):
    def __init__(self, base_url: str, read: Callable[[str], Awaitable[str]], **kwargs: Any):
        super().__init__(base_url, **kwargs)
        self._read = read

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
