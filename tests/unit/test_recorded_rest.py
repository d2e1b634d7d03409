"""``recorded_endpoint``: which endpoint a playback replays, and what it says about it."""
from __future__ import annotations

import logging

from cryptofeed.exchanges.backpack.hosts.recorded_rest import recorded_endpoint

LIVE = 'https://api.backpack.exchange'
SIM = 'https://127.0.0.1:35221'


def test_the_endpoint_a_recording_was_made_against_is_used_when_the_configured_one_is_not_in_it():
    url, level, message = recorded_endpoint('rest_url', LIVE, [f'{SIM}/api/v1/markets', f'{SIM}/api/v1/depth?symbol=X'])
    assert url == SIM and level == logging.INFO
    assert message == (f'playback: the recording was made against {SIM}; its rest_url answers are replayed from it '
                       f'(the configured rest_url {LIVE} is not in the recording)')


def test_a_configured_endpoint_in_the_recording_is_kept():
    url, level, message = recorded_endpoint('ws_url', 'wss://127.0.0.1:9', ['wss://127.0.0.1:9', 'wss://127.0.0.1:8'])
    assert url == 'wss://127.0.0.1:9' and level == logging.INFO and 'is the endpoint the recording was made against' in message


def test_nothing_recorded_or_several_endpoints_keep_the_configured_one_with_a_warning():
    url, level, message = recorded_endpoint('rest_url', LIVE, [])
    assert url == LIVE and level == logging.WARNING and 'holds nothing for rest_url' in message
    url, level, message = recorded_endpoint('rest_url', LIVE, [f'{SIM}/a', 'https://127.0.0.1:1/b'])
    assert url == LIVE and level == logging.WARNING and 'set rest_url to the one to replay' in message
    assert recorded_endpoint('rest_url', LIVE, None)[:2] == (LIVE, logging.INFO)
