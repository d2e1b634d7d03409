"""Misuses of the REST API and of the credential check that must fail at once, with a clear error.

* ``candles(_sync)`` with a window the history rate limit would take hours to weeks to page
  through (``start=0``) is refused before any request, naming the window and its cost; ``NaN``
  or ``inf`` as ``start``/``end`` is a labelled error.
* ``backpack-auth-check`` reads a key file that is not UTF-8 as an unreadable key file (exit 2,
  no traceback) and takes only a plausible ``--timestamp``.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryptofeed.exchanges.backpack import BackpackError, BackpackFeed
from cryptofeed.exchanges.backpack.auth_check import EXIT_USAGE, main
from cryptofeed.exchanges.backpack.core.errors import BackpackHistoryWindowError
from cryptofeed.exchanges.backpack.core.rest.paging import kline_request_count, kline_windows

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_B64 = 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE='


@pytest.fixture
def feed():
    # Nothing listens on port 9: a request would fail loudly, so every refusal below is made before one.
    return BackpackFeed(config={'rest_url': 'http://127.0.0.1:9', 'ws_url': 'ws://127.0.0.1:9'})


# ------------------------------------------------------------------ candles_sync windows

def test_candles_from_1970_are_refused_at_once_naming_the_window_and_its_cost(feed):
    began = time.monotonic()
    with pytest.raises(BackpackHistoryWindowError) as info:
        feed.candles_sync('SOL-USDC', start=0, interval='1m')
    message = str(info.value)
    assert time.monotonic() - began < 1.0 and feed.rest.stats.requests == 0
    assert isinstance(info.value, BackpackError) and isinstance(info.value, ValueError)
    assert '1970-01-01 00:00:00' in message and 'UTC' in message and 'SOL-USDC 1m' in message
    requests = kline_request_count(0, int(time.time()), 60)
    assert f'{requests:,} requests to /api/v1/klines' in message
    assert 'history rate limit of 30 requests per 60 s' in message and 'max_requests=' in message
    assert ' h' in message or ' days' in message


async def test_the_async_candles_refuse_the_same_window_before_any_request(feed):
    with pytest.raises(BackpackHistoryWindowError, match='requests to /api/v1/klines'):
        [page async for page in feed.candles('SOL-USDC', start=0, interval='1s')]
    assert feed.rest.stats.requests == 0


def test_the_cost_follows_the_feeds_history_rate_limit(feed):
    feed.history_rate_limit = (10, 1.0)
    with pytest.raises(BackpackHistoryWindowError, match='10 requests per 1 s'):
        feed.candles_sync('SOL-USDC', start=0, interval='1m')


@pytest.mark.parametrize('start,end,label', [
    (float('nan'), None, 'start'), (float('inf'), None, 'start'), (0, float('nan'), 'end'),
    (1_700_000_000, float('inf'), 'end'), (float('-inf'), 10, 'start'),
])
def test_non_finite_times_are_labelled_errors(feed, start, end, label):
    with pytest.raises(ValueError, match=f'^{label} must be a finite time'):
        feed.candles_sync('SOL-USDC', start=start, end=end)
    with pytest.raises(ValueError, match=f'^{label} must be a finite time'):
        list(feed.trades_sync('SOL-USDC', start=start, end=end))
    assert feed.rest.stats.requests == 0


@pytest.mark.parametrize('value', [0, -1, 1.5, 'many', True])
def test_max_requests_must_be_a_positive_integer(feed, value):
    with pytest.raises(ValueError, match='max_requests'):
        feed.candles_sync('SOL-USDC', start=0, interval='1M', max_requests=value)


def test_windows_within_the_budget_or_allowed_by_max_requests_are_planned_not_refused(feed):
    now = time.time()
    assert feed._candle_window(now - 3600, None, '1m', None)[2] == 1                      # one request
    assert feed._candle_window(0, None, '1M', None)[2] == 1                              # months: one request
    assert feed._candle_window(now - 365 * 86400, now, '1m', None)[2] == 526              # a year of minutes
    requests = kline_request_count(0, int(now), 60)
    start_s, end_s, count = feed._candle_window(0, None, '1m', requests)
    assert count == requests and start_s == 0


def test_an_end_in_the_far_future_is_clamped_to_what_the_exchange_can_have(feed):
    now = time.time()
    start_s, end_s, count = feed._candle_window(now - 3600, 1e15, '1m', None)
    assert end_s <= time.time() + 3600 + 60 and count <= 3


def test_the_request_count_is_that_of_the_windows_sent():
    for start, end, size in ((0, 10 ** 6, 60), (5, 5 + 60 * 1000, 60), (59, 61, 60), (0, 10, 1), (0, 0, 60),
                             (100, 50, 60), (0, 10 ** 7, None)):
        assert kline_request_count(start, end, size) == len(list(kline_windows(start, end, size)))


# ------------------------------------------------------------------ the credential check

def test_a_key_file_that_is_not_utf8_is_an_unreadable_key_file_exit_2_without_traceback(tmp_path):
    path = tmp_path / 'keys.yaml'
    path.write_bytes(b'private_key: "\xff\xfe\x00abc"\n')
    result = subprocess.run([sys.executable, '-m', 'tools.backpack_auth_check', '--key-file', str(path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_USAGE == 2, result.stderr
    assert 'Traceback' not in result.stderr and 'unreadable key file' in result.stderr
    assert 'UTF-8' in result.stderr and str(path) in result.stderr


def test_a_latin1_key_file_is_unreadable_in_json_mode_too(tmp_path, capsys):
    path = tmp_path / 'keys.json'
    path.write_bytes('{"private_key": "cl\xe9"}'.encode('latin-1'))
    assert main(['--key-file', str(path), '--json']) == EXIT_USAGE
    out = capsys.readouterr()
    assert '"exit_code": 2' in out.out and 'unreadable key file' in out.err


@pytest.mark.parametrize('value,expected', [
    ('1e30', 'an integer such as'),
    ('1000000000000000000000000000000', 'between 2015-01-01'),
    ('1614550000', 'between 2015-01-01'),               # seconds, not ms
    ('1614550000000000', 'between 2015-01-01'),         # microseconds
    ('nan', 'an integer such as'), ('inf', 'an integer such as'), ('-5', 'between 2015-01-01'),
])
def test_the_timestamp_must_be_a_plausible_time_in_ms(capsys, value, expected):
    assert main(['--private-key', SEED_B64, '--timestamp', value]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert 'argument --timestamp' in err and expected in err


def test_a_plausible_timestamp_is_still_signed(capsys):
    assert main(['--private-key', SEED_B64, '--timestamp', '1614550000000']) == 0
    assert 'timestamp=1614550000000&window=5000' in capsys.readouterr().out
