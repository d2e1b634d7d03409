"""cryptofeed 2.x raw-data recording: ``FeedHandler(raw_data_collection=...)`` records the
feed's REST and WebSocket traffic, and ``cryptofeed.raw_data_collection.playback`` plays it back
to the same callbacks.

(The 3.x line's capture is ``test_capture_cf3.py``; each file runs on its line of the matrix.)
"""
from __future__ import annotations

import asyncio

from cryptofeed.connection import Connection
from cryptofeed.defines import L2_BOOK, TRADES
from cryptofeed.raw_data_collection import AsyncFileCallback

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.feed_harness import Collector, delivered_trade_ids, running_feed, wait_until


async def test_raw_data_collection_records_backpack_rest_and_websocket_traffic(tmp_path):
    async with BackpackSimulator(markets=['SOL_USDC'], seed=25, rate=200) as sim:
        recorder = AsyncFileCallback(str(tmp_path))
        collector = Collector()
        try:
            async with running_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], collector,
                                    fh_kwargs={'raw_data_collection': recorder}) as feed:
                await wait_until(lambda: feed._book.books['SOL-USDC'].synced and delivered_trade_ids(collector, 'SOL-USDC'),
                                 timeout=15)
                await asyncio.sleep(0.2)
        finally:
            Connection.raw_data_callback = None
        text = '\n'.join(p.read_text() for p in tmp_path.iterdir())
        assert '/api/v1/depth' in text and 'lastUpdateId' in text          # REST responses
        assert '"stream":"trade.SOL_USDC"' in text.replace(' ', '')       # WS frames received
        assert 'SUBSCRIBE' in text                                        # WS frames sent


async def test_a_recording_plays_back_through_cryptofeeds_playback_to_the_same_callbacks(tmp_path, monkeypatch):
    from cryptofeed.raw_data_collection import playback

    monkeypatch.delenv('CRYPTOFEED_BACKPACK_NATIVE', raising=False)
    recording = tmp_path / 'recording'
    recording.mkdir()
    async with BackpackSimulator(markets=['SOL_USDC'], seed=36, rate=300, tls=True) as sim:
        live = Collector()
        try:
            async with running_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], live,
                                    fh_kwargs={'raw_data_collection': AsyncFileCallback(str(recording))}) as feed:
                await wait_until(lambda: feed._book.books['SOL-USDC'].synced
                                 and len(delivered_trade_ids(live, 'SOL-USDC')) > 20, timeout=15)
                sim.pause()                  # nothing in flight at stop: the capture holds what was delivered
                last = sim.book('SOL_USDC')['sequence']
                await wait_until(lambda: live.sequences['SOL-USDC'][-1:] == [last], timeout=10)
        finally:
            Connection.raw_data_callback = None
        ca_file = tmp_path / 'ca.pem'
        ca_file.write_bytes(open(sim.ca_file, 'rb').read())
        config = tmp_path / 'config.yaml'
        config.write_text(f'backpack:\n  native_enabled: true\n  rest_url: {sim.rest_url}\n  ws_url: {sim.ws_url}\n'
                          f'  ca_file: {ca_file}\n')
    replayed = Collector()                                       # the simulator is gone: nothing to reach
    files = sorted(str(p) for p in recording.iterdir())
    await asyncio.to_thread(playback, 'BACKPACK', files, replayed.callbacks([TRADES, L2_BOOK]), str(config))
    assert delivered_trade_ids(replayed, 'SOL-USDC') == delivered_trade_ids(live, 'SOL-USDC')
    live_seqs, replayed_seqs = live.sequences['SOL-USDC'], replayed.sequences['SOL-USDC']
    assert replayed_seqs and replayed_seqs[-1] == live_seqs[-1] and set(replayed_seqs) <= set(live_seqs)
    assert replayed.replica_levels('SOL-USDC') == live.replica_levels('SOL-USDC')


async def test_a_recording_made_against_the_simulator_plays_back_without_its_urls_configured(
        tmp_path, monkeypatch, caplog):
    """Playback is self-contained: the recording's REST endpoint is used when rest_url is not
    configured (it used to look the answers up under the live exchange's URL, replaying no book)."""
    import logging

    from cryptofeed.raw_data_collection import playback

    monkeypatch.delenv('CRYPTOFEED_BACKPACK_NATIVE', raising=False)
    recording = tmp_path / 'recording'
    recording.mkdir()
    async with BackpackSimulator(markets=['SOL_USDC'], seed=37, rate=300, tls=True) as sim:
        live = Collector()
        try:
            async with running_feed(sim, ['SOL-USDC'], [TRADES, L2_BOOK], live,
                                    fh_kwargs={'raw_data_collection': AsyncFileCallback(str(recording))}) as feed:
                await wait_until(lambda: feed._book.books['SOL-USDC'].synced
                                 and len(delivered_trade_ids(live, 'SOL-USDC')) > 20, timeout=15)
                sim.pause()
                last = sim.book('SOL_USDC')['sequence']
                await wait_until(lambda: live.sequences['SOL-USDC'][-1:] == [last], timeout=10)
        finally:
            Connection.raw_data_callback = None
        recorded_at = sim.rest_url
    config = tmp_path / 'config.yaml'
    config.write_text('backpack:\n  native_enabled: true\n')            # no rest_url, ws_url or ca_file
    replayed = Collector()
    files = sorted(str(p) for p in recording.iterdir())
    with caplog.at_level(logging.INFO):
        await asyncio.to_thread(playback, 'BACKPACK', files, replayed.callbacks([TRADES, L2_BOOK]), str(config))
    assert delivered_trade_ids(replayed, 'SOL-USDC') == delivered_trade_ids(live, 'SOL-USDC')
    assert replayed.sequences['SOL-USDC'] and replayed.sequences['SOL-USDC'][-1] == live.sequences['SOL-USDC'][-1]
    assert replayed.replica_levels('SOL-USDC') == live.replica_levels('SOL-USDC')
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f'BACKPACK: playback: the recording was made against {recorded_at};') for m in messages)
    assert not any('api.backpack.exchange/api' in m and 'not in the recording (' in m for m in messages)
