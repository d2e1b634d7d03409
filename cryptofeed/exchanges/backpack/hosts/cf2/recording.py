"""cryptofeed 2.x raw-data recording of the REST side of the feed.

``record_rest_response`` is the REST client's ``tap`` on this line: with
``FeedHandler(raw_data_collection=...)`` every response body goes to cryptofeed's
``Connection.raw_data_callback`` as ``HTTPAsyncConn`` hands it, so REST answers sit in the same
recording as the frames (``hosts/recorded_rest.py`` answers from it on playback).
"""
from __future__ import annotations

from cryptofeed.connection import Connection

from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient

__all__ = ['record_rest_response']


async def record_rest_response(client: BackpackRestClient, url: str, text: str, receipt_ts: float) -> None:
    callback = Connection.raw_data_callback
    if callback:
        await callback(text, receipt_ts, client.conn_id, endpoint=url)
