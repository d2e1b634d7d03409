"""cryptofeed 3.x capture: a Backpack session recorded with ``FeedHandler(record=...)`` plays back
through ``cryptofeed.capture.playback_async`` to the same callbacks, with nothing to reach.

(The 2.x line's raw-data recording and playback are ``test_capture_cf2.py``; each file runs on
its line of the test matrix.)
"""
from __future__ import annotations

from cryptofeed import FeedHandler
from cryptofeed.capture import playback_async
from cryptofeed.defines import L2_BOOK, TRADES

from cryptofeed.exchanges.backpack import BackpackFeed
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator
from tests.integration.feed_harness import (
    FH_CONFIG, Collector, delivered_trade_ids, sim_config, start_handler, stop_handler, wait_until,
)


async def test_a_capture_plays_back_to_the_same_callbacks(tmp_path):
    capture = tmp_path / 'session.pcap'
    async with BackpackSimulator(markets=['SOL_USDC'], seed=36, rate=300, tls=True) as sim:
        ca_file = tmp_path / 'ca.pem'                         # the simulator's CA outlives it
        ca_file.write_bytes(open(sim.ca_file, 'rb').read())
        config = sim_config(sim, ca_file=str(ca_file))
        live = Collector()
        handler = FeedHandler(config=FH_CONFIG, record=str(capture))
        feed = BackpackFeed(config=config, symbols=['SOL-USDC'], channels=[TRADES, L2_BOOK],
                            callbacks=live.callbacks([TRADES, L2_BOOK]))
        handler.add_feed(feed)
        await start_handler(handler)
        try:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced
                             and len(delivered_trade_ids(live, 'SOL-USDC')) > 20, timeout=15)
            sim.pause()                  # nothing in flight at stop: the capture holds what was delivered
            last = sim.book('SOL_USDC')['sequence']
            await wait_until(lambda: live.sequences['SOL-USDC'][-1:] == [last], timeout=10)
        finally:
            await stop_handler(handler)
    files = sorted(str(p) for p in tmp_path.iterdir() if '.pcap' in p.name and not p.name.endswith('.json'))
    assert files
    replayed = Collector()                                       # the simulator is gone: nothing to reach
    again = BackpackFeed(config=config, symbols=['SOL-USDC'], channels=[TRADES, L2_BOOK],
                         callbacks=replayed.callbacks([TRADES, L2_BOOK]))
    result = await playback_async(files, feed=again)
    assert result.http_requests_served >= 2                      # /api/v1/markets and the depth snapshot
    assert delivered_trade_ids(replayed, 'SOL-USDC') == delivered_trade_ids(live, 'SOL-USDC')
    live_seqs, replayed_seqs = live.sequences['SOL-USDC'], replayed.sequences['SOL-USDC']
    assert replayed_seqs and replayed_seqs[-1] == live_seqs[-1] and set(replayed_seqs) <= set(live_seqs)
    assert replayed.replica_levels('SOL-USDC') == live.replica_levels('SOL-USDC')


async def test_a_capture_made_against_the_simulator_plays_back_without_its_urls_configured(tmp_path, caplog):
    """Playback is self-contained: a feed built without the simulator's URLs replays the capture
    (it used to fail to match the live ws_url to the captured stream)."""
    import logging

    capture = tmp_path / 'session.pcap'
    async with BackpackSimulator(markets=['SOL_USDC'], seed=37, rate=300, tls=True) as sim:
        ca_file = tmp_path / 'ca.pem'
        ca_file.write_bytes(open(sim.ca_file, 'rb').read())
        live = Collector()
        handler = FeedHandler(config=FH_CONFIG, record=str(capture))
        feed = BackpackFeed(config=sim_config(sim, ca_file=str(ca_file)), symbols=['SOL-USDC'],
                            channels=[TRADES, L2_BOOK], callbacks=live.callbacks([TRADES, L2_BOOK]))
        handler.add_feed(feed)
        await start_handler(handler)
        try:
            await wait_until(lambda: feed._book.books['SOL-USDC'].synced
                             and len(delivered_trade_ids(live, 'SOL-USDC')) > 20, timeout=15)
            sim.pause()
            last = sim.book('SOL_USDC')['sequence']
            await wait_until(lambda: live.sequences['SOL-USDC'][-1:] == [last], timeout=10)
        finally:
            await stop_handler(handler)
        ws_url, rest_url = sim.ws_url, sim.rest_url
    files = sorted(str(p) for p in tmp_path.iterdir() if '.pcap' in p.name and not p.name.endswith('.json'))
    replayed = Collector()
    again = BackpackFeed(symbols=['SOL-USDC'], channels=[TRADES, L2_BOOK], callbacks=replayed.callbacks([TRADES, L2_BOOK]))
    with caplog.at_level(logging.INFO):
        result = await playback_async(files, feed=again)
    assert result.http_requests_served >= 2
    assert delivered_trade_ids(replayed, 'SOL-USDC') == delivered_trade_ids(live, 'SOL-USDC')
    assert replayed.replica_levels('SOL-USDC') == live.replica_levels('SOL-USDC')
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f'BACKPACK: playback: the recording was made against {ws_url};') for m in messages)
    assert any(m.startswith(f'BACKPACK: playback: the recording was made against {rest_url};') for m in messages)
