"""cryptofeed 2.x raw-data recording and ``playback()`` for the REST side of the feed.

``record_rest_response`` is the REST client's ``tap`` on this line: with
``FeedHandler(raw_data_collection=...)`` every response body goes to cryptofeed's
``Connection.raw_data_callback`` as ``HTTPAsyncConn`` hands it, so REST answers sit in the same
recording as the frames. ``RecordedRestClient`` answers from such a recording.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

from cryptofeed.connection import Connection, HTTPAsyncConn
from yarl import URL

from cryptofeed.exchanges.backpack.core.errors import BackpackRequestError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient, parse_success

__all__ = ['record_rest_response', 'RecordedRestClient']


async def record_rest_response(client: BackpackRestClient, url: str, text: str, receipt_ts: float) -> None:
    callback = Connection.raw_data_callback
    if callback:
        await callback(text, receipt_ts, client.conn_id, endpoint=url)


class RecordedRestClient(BackpackRestClient):
    """Answers every call from a recording, for cryptofeed's ``playback()``.

    ``playback()`` replaces ``HTTPAsyncConn.read`` by a reader of the responses recorded by
    ``FeedHandler(raw_data_collection=...)``, keyed by URL and served in recorded order; this
    client asks it for the URL the live client requested, so nothing reaches the network.
    """

    async def _attempt(self, method: str, path: str, query: List[Tuple[str, str]], body: Any,
                       instruction: Optional[str], expect: str, state: Any) -> Any:
        url = URL(self.base_url + path)
        if query:
            url = url.with_query(query)
        self.stats.requests += 1
        try:
            text = await HTTPAsyncConn.read(str(url))
        except (IndexError, KeyError):
            raise BackpackRequestError(f'{method} {url} is not in the recording', path=path) from None
        return parse_success(200, text, expect, path)
