"""The pure parts of ``history.py``: time arguments, the progress bar, the CSV sink's resume point.

The downloads themselves run against the simulator in ``tests/integration/test_history_cli.py``.
"""
from __future__ import annotations

import io

import pytest

from cryptofeed.exchanges.backpack.history import TRADE_COLUMNS, CsvSink, Progress, UsageError, parse_time


def test_parse_time_forms():
    now = 1_800_000_000.0
    assert parse_time('now', now, 's') == now
    assert parse_time('now-30m', now, 's') == now - 1800
    assert parse_time('now-1.5h', now, 's') == now - 5400
    assert parse_time('now-7d', now, 's') == now - 7 * 86400
    assert parse_time('1796539808.5', now, 's') == 1796539808.5
    assert parse_time('2026-09-01', now, 's') == 1788220800.0
    assert parse_time('2026-09-01 16:52:00', now, 's') == 1788281520.0
    assert parse_time('2026-09-01T18:52:00+02:00', now, 's') == 1788281520.0
    for bad in ('tomorrow', 'now+1h', 'nan', 'inf', ''):
        with pytest.raises(UsageError, match='--start'):
            parse_time(bad, now, '--start')


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_redrawn_in_place_on_a_terminal():
    stream = _Terminal()
    progress = Progress('SOL-USDC trades', 1000.0, 2000.0, stream)
    progress.update(1500, 1500.0, 2.0, force=True)
    progress.update(3000, 2000.0, 2.0, force=True)
    progress.done()
    text = stream.getvalue()
    assert text.count('\r') == 2 and text.count('\x1b[K') == 2 and text.endswith('\n')
    first, second = text.split('\r')[1:]
    assert first.startswith('SOL-USDC trades [' + '#' * 15 + ' ' * 15 + ']  50% 1,500 rows, up to 1970-01-01 00:25:00 UTC')
    assert second.startswith('SOL-USDC trades [' + '#' * 30 + '] 100% 3,000 rows')
    assert '2 s waiting for the rate limit' in second


def test_the_progress_goes_line_by_line_and_throttled_elsewhere():
    stream = io.StringIO()
    progress = Progress('SOL-USDC trades', 0.0, 100.0, stream, every_s=3600)
    progress.update(1, 10.0, 0.0, force=True)
    progress.update(2, 20.0, 0.0)                 # within every_s: not written
    progress.update(3, 100.0, 0.0, force=True)
    progress.done()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and ' 10% 1 rows' in lines[0] and '100% 3 rows' in lines[1]
    assert '\r' not in stream.getvalue()
    Progress('quiet', 0.0, 1.0, None).update(1, 1.0, 0.0, force=True)   # no stream: nothing, no error


def test_the_csv_sink_resumes_after_the_last_whole_line(tmp_path):
    sink = CsvSink(tmp_path / 'trades.csv', TRADE_COLUMNS)
    assert sink.last_row() is None and sink.rows_written() == 0
    sink.append([{'timestamp': 1.5, 'symbol': 'SOL-USDC', 'id': 7, 'side': 'buy', 'amount': 1, 'price': 2},
                 {'timestamp': 2.25, 'symbol': 'SOL-USDC', 'id': 8, 'side': 'sell', 'amount': 3, 'price': 4}])
    sink.close()
    with open(sink.partial, 'a') as f:
        f.write('3.0,SOL-USDC,9,bu')                # a kill in the middle of a line
    assert sink.last_row() == {'timestamp': '2.25', 'symbol': 'SOL-USDC', 'id': '8', 'side': 'sell', 'amount': '3',
                               'price': '4'}
    assert sink.rows_written() == 2 and sink.partial.read_text().endswith('4\n')
    sink.finish()
    assert (tmp_path / 'trades.csv').read_text().splitlines()[0] == ','.join(TRADE_COLUMNS)
    assert not sink.partial.exists()


def test_a_partial_file_of_other_columns_is_refused(tmp_path):
    sink = CsvSink(tmp_path / 'trades.csv', TRADE_COLUMNS)
    sink.partial.write_text('start,stop\n1,2\n')
    with pytest.raises(UsageError, match='--restart'):
        sink.last_row()
