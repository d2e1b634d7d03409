"""cryptofeed 3.x capture of the REST side of the feed.

``record_rest_response`` is the REST client's ``tap`` on this line: with
``FeedHandler(record=...)`` cryptofeed's recorder is ``Connection.raw_data_callback``, and every
response body goes to its ``on_http`` as a GET of the URL the client requested, on one HTTP
stream per client (named by the client's ``conn_id``, so it is filed under the feed). Playback
(``cryptofeed.capture.playback``) then serves those answers through ``feed.http_conn``, which
``hosts/recorded_rest.py`` reads.
"""
from __future__ import annotations

from cryptofeed.connection import Connection

from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient

__all__ = ['record_rest_response']


class _Stream:
    """What the recorder needs of a connection: an ``id`` (and no ``address``: not a poller)."""

    def __init__(self, conn_id: str):
        self.id = conn_id


async def record_rest_response(client: BackpackRestClient, url: str, text: str, receipt_ts: float) -> None:
    recorder = Connection.raw_data_callback
    if recorder is None or not hasattr(recorder, 'on_http'):
        return
    stream = client.__dict__.get('_capture_stream')
    if stream is None:
        stream = client.__dict__['_capture_stream'] = _Stream(client.conn_id)
    await recorder.on_http(stream, url, None, None, text, receipt_ts)
