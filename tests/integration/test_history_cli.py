"""``python -m cryptofeed.exchanges.backpack.history`` against the simulator, as a user runs it.

The kill and resume tests run the downloads as processes of their own: they kill one with SIGKILL
in the middle of a download (paced slowly enough to be caught there), run the same command again and
compare the file with the simulator's truth: every trade of the window once, in id order. The tests
of argument errors, --help and the progress bar call ``main`` in this process (``tests/inprocess.py``).
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cryptofeed.exchanges.backpack.history import main as history_main
from tests.inprocess import run_main
from tests.integration.sim_thread import SimulatorThread

HISTORY = [sys.executable, '-m', 'cryptofeed.exchanges.backpack.history']


@pytest.fixture(scope='module')
def sim():
    # An hour of history (about 8000 trades) on a live market: new trades arrive during downloads.
    with SimulatorThread(markets=['SOL_USDC'], rate=50, seed=19, history_s=3600, history_updates=40000) as (sim, run):
        yield sim, run


def _run(args, cwd, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(HISTORY + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _run_here(args, cwd=None) -> subprocess.CompletedProcess:
    """``_run`` without the process: ``main`` in this one, in ``cwd``, stdout and stderr captured."""
    return run_main(history_main, args, cwd=cwd, streams=True)


def _start(args, cwd) -> subprocess.Popen:
    # Ctrl-C reaches the download even when the test runner was started with SIGINT ignored (a
    # background job of a shell): an ignored signal is inherited, so the child restores the default.
    return subprocess.Popen(HISTORY + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.02)


def _csv_rows(path: Path) -> list:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_a_trade_download_killed_midway_resumes_with_no_duplicate_and_no_gap(sim, tmp_path):
    simulator, run = sim
    end = int(time.time()) - 5
    start = end - 3000
    args = ['SOL-USDC', '--channel', 'trades', '--start', str(start), '--end', str(end),
            '--rest-url', simulator.rest_url]

    def partial_rows() -> int:
        found = next(tmp_path.glob('*.partial'), None)
        return sum(1 for _ in open(found)) - 1 if found is not None else 0

    proc = _start(args + ['--rate-limit', '2/1'], tmp_path)              # 2 requests a second: slow enough to catch
    try:
        _wait_for(lambda: partial_rows() >= 1000, 60, 'the first page of trades')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (partial,) = tmp_path.glob('*.partial')
    written = partial_rows()
    state = tmp_path / '.SOL-USDC_trades.csv.download.json'
    assert state.exists() and not list(tmp_path.glob('*.csv'))          # unfinished, and known to be

    again = _run(args, tmp_path)                                           # the same command
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'SOL-USDC trades: resuming the unfinished download' in again.stderr
    (path,) = tmp_path.glob('*.csv')
    assert path.name == f'SOL-USDC_trades_{time.strftime("%Y%m%dT%H%M%S", time.gmtime(start))}_' \
                       f'{time.strftime("%Y%m%dT%H%M%S", time.gmtime(end))}.csv'
    assert not state.exists() and not list(tmp_path.glob('*.partial'))
    rows = _csv_rows(path)
    ids = [int(r['id']) for r in rows]
    truth = [t for t in run(lambda: simulator.trades('SOL_USDC')) if start * 1000 <= t['timestamp_us'] // 1000 <= end * 1000]
    assert written < len(truth)                                            # it was killed midway
    assert ids == [t['id'] for t in truth]                                 # every trade once, in order
    first = truth[0]
    assert rows[0]['timestamp'] == repr(first['timestamp_us'] // 1000 / 1000) and rows[0]['symbol'] == 'SOL-USDC'
    assert rows[0]['side'] == first['side'].lower()
    assert Decimal(rows[0]['amount']) == Decimal(first['quantity']) and Decimal(rows[0]['price']) == Decimal(first['price'])
    assert f'SOL-USDC trades: {len(truth)} rows' in again.stdout


def test_a_parquet_candle_download_killed_midway_resumes_to_the_same_file_as_an_uninterrupted_one(sim, tmp_path):
    simulator, run = sim
    end = int(time.time()) - 5
    start = end - 3500                                                     # 1 s candles: four requests
    args = ['SOL-USDC', '--channel', 'candles', '--interval', '1s', '--start', str(start), '--end', str(end),
            '--format', 'parquet', '--rest-url', simulator.rest_url]
    interrupted, whole = tmp_path / 'interrupted', tmp_path / 'whole'
    interrupted.mkdir()
    whole.mkdir()
    proc = _start(args + ['--rate-limit', '1/1.5'], interrupted)
    try:
        _wait_for(lambda: list(interrupted.glob('*.parts/part-*.parquet')), 60, 'the first part file')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not list(interrupted.glob('*.parquet'))                       # only parts so far
    again = _run(args, interrupted)
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'resuming' in again.stderr
    once = _run(args, whole)
    assert once.returncode == 0, once.stderr[-2000:]
    (resumed_file,) = interrupted.glob('*.parquet')
    (whole_file,) = whole.glob('*.parquet')
    assert resumed_file.name == whole_file.name and not list(interrupted.glob('*.parts'))
    resumed, reference = pq.read_table(resumed_file), pq.read_table(whole_file)
    assert resumed.equals(reference) and resumed.num_rows > 1000
    starts = resumed.column('start').to_pylist()
    assert starts == sorted(set(starts)) and starts[0] >= start and resumed.column('stop').to_pylist()[-1] <= end
    # Against the truth: the candles hold exactly the trades printed between the first start and the last stop.
    first, last = starts[0], resumed.column('stop').to_pylist()[-1]
    truth = [t for t in run(lambda: simulator.trades('SOL_USDC')) if first <= t['timestamp_us'] / 1e6 < last]
    assert sum(resumed.column('trades').to_pylist()) == len(truth)
    assert str(resumed.schema.field('close').type) == 'decimal128(38, 18)'


def test_a_finished_download_is_not_repeated_and_restart_discards_an_unfinished_one(sim, tmp_path):
    simulator, _ = sim
    end = int(time.time()) - 5
    args = ['SOL-USDC', '--channel', 'trades', '--start', str(end - 60), '--end', str(end), '--rest-url',
            simulator.rest_url, '--quiet']
    assert _run(args, tmp_path).returncode == 0
    second = _run(args, tmp_path)
    assert second.returncode == 0 and 'exists already: nothing to do' in second.stdout
    assert second.stderr == ''                                             # --quiet: no progress
    # An unfinished download of another window is not mixed up with this one.
    state = tmp_path / '.SOL-USDC_trades.csv.download.json'
    # Deep in the past: finding it takes several requests, and the second waits a minute.
    other = ['SOL-USDC', '--channel', 'trades', '--start', str(end - 3000), '--end', str(end - 2940), '--rest-url',
             simulator.rest_url, '--rate-limit', '1/60']
    proc = _start(other, tmp_path)
    try:
        _wait_for(state.exists, 60, 'the state file')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    refused = _run(args + ['--end', str(end - 1)], tmp_path)
    assert refused.returncode == 2
    assert 'an unfinished download of SOL-USDC trades for another window' in refused.stderr
    assert '--restart' in refused.stderr
    restarted = _run(args + ['--end', str(end - 1), '--restart'], tmp_path)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert not state.exists() and not list(tmp_path.glob('*.partial'))


def test_bad_arguments_say_what_to_give(tmp_path):
    cases = [
        (['SOL-USDC', '--channel', 'trades', '--interval', '1m', '--start', 'now-1h'], '--interval is for --channel candles only'),
        (['SOL-USDC', '--channel', 'candles', '--interval', '2m', '--start', 'now-1h'], "--interval '2m' is not one of"),
        (['SOL-USDC', '--channel', 'trades', '--start', 'yesterday'], "--start 'yesterday' is not a time"),
        (['SOL-USDC', '--channel', 'trades', '--start', 'now-1h', '--end', 'now-2h'], 'must be before --end'),
        (['SOL-USDC', '--channel', 'trades', '--start', '2100-01-01', '--end', '2100-01-02'], 'is in the future'),
        (['SOL-USDC', '--channel', 'trades', '--start', 'now-1h', '--rate-limit', 'fast'], 'give N/SECONDS'),
        (['SOL/USDC', '--channel', 'trades', '--start', 'now-1h'], "'SOL/USDC' is not a Backpack symbol"),
        (['SOL-USDC', '--channel', 'trades', '--start', 'now-1h', '--out-dir', 'missing'], 'no such folder'),
        (['SOL-USDC', '--channel', 'trades', '--start', 'now-1h', '--rest-url', 'http://example.com'], 'rest_url'),
    ]
    for args, message in cases:
        result = _run_here(args + ['--quiet'], tmp_path)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert 'Traceback' not in result.stderr


def test_help_names_every_option_and_examples():
    result = _run_here(['--help'])
    assert result.returncode == 0
    for text in ('--channel {trades,candles}', '--interval', '--start', '--end', '--format {csv,parquet}',
                 '--out-dir', '--restart', '--rate-limit N/SECONDS', '--config', '--rest-url', '--ca-file',
                 '--quiet', 'rerun the same command to resume', 'examples:', "cryptofeed-backpack[parquet]"):
        assert text in result.stdout, text


def test_the_progress_bar_reports_rows_and_the_rate_limit_wait(sim, tmp_path):
    simulator, _ = sim
    end = int(time.time()) - 5
    result = _run_here(['SOL-USDC', '--channel', 'trades', '--start', str(end - 1800), '--end', str(end),
                        '--rest-url', simulator.rest_url, '--rate-limit', '3/1'], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert lines[0].startswith('SOL-USDC trades [') and ' 0% 0 rows' in lines[0]
    assert lines[-1].startswith('SOL-USDC trades [' + '#' * 30 + '] 100% ')
    waited = float(lines[-1].split(' elapsed, ')[1].split(' s waiting')[0])
    assert waited > 0                                                      # paced: more than 3 requests were needed


def test_a_kill_that_cuts_a_csv_line_loses_nothing(sim, tmp_path):
    simulator, run = sim
    end = int(time.time()) - 5
    start = end - 600
    args = ['SOL-USDC', '--channel', 'trades', '--start', str(start), '--end', str(end), '--rest-url',
            simulator.rest_url, '--quiet']
    # Make an unfinished download by hand: a state file and a partial whose last line a kill cut.
    done = _run(args, tmp_path)
    assert done.returncode == 0
    (path,) = tmp_path.glob('*.csv')
    lines = path.read_text().splitlines(keepends=True)
    state = tmp_path / '.SOL-USDC_trades.csv.download.json'
    state.write_text(json.dumps({'version': 1, 'symbol': 'SOL-USDC', 'channel': 'trades', 'interval': None,
                                 'format': 'csv', 'start_spec': str(start), 'end_spec': str(end), 'start': float(start),
                                 'end': float(end), 'file': path.name}))
    keep = len(lines) // 2
    partial = path.with_name(path.name + '.partial')
    partial.write_text(''.join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2])   # half a line at the end
    path.unlink()
    again = _run(args, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert path.read_text().splitlines(keepends=True) == lines
    assert os.path.exists(path) and not partial.exists()


def test_ctrl_c_keeps_what_was_written_and_says_how_to_resume(sim, tmp_path):
    simulator, run = sim
    end = int(time.time()) - 5
    start = end - 3000
    args = ['SOL-USDC', '--channel', 'trades', '--start', str(start), '--end', str(end), '--rest-url',
            simulator.rest_url]
    proc = _start(args + ['--rate-limit', '2/1'], tmp_path)
    try:
        _wait_for(lambda: any(p.stat().st_size > 1000 for p in tmp_path.glob('*.partial')), 60, 'the first rows')
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert 'interrupted: the rows written so far are kept; rerun the same command to resume' in stderr
    assert 'Traceback' not in stderr
    again = _run(args, tmp_path)
    assert again.returncode == 0 and 'resuming' in again.stderr
    (path,) = tmp_path.glob('*.csv')
    ids = [int(r['id']) for r in _csv_rows(path)]
    truth = [t['id'] for t in run(lambda: simulator.trades('SOL_USDC')) if start * 1000 <= t['timestamp_us'] // 1000 <= end * 1000]
    assert ids == truth
