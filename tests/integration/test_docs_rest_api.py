"""The REST API section of docs/exchanges/backpack.md, run as a user would run it.

The ``bash`` block (the simulator command) is started as a process and every ``python`` block
runs as a script of its own against it, as written except for the port: the documented 8765 is
replaced by a free one (another if that one is taken before the simulator binds it), so the test
cannot collide with anything listening there.
"""
from __future__ import annotations

import csv
import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'exchanges' / 'backpack.md'
SECTION = '## REST API: history downloads and orders'
DOC_PORT = '8765'


def section_blocks() -> list:
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.find('\n## ', start + len(SECTION))
    body = text[start:end if end != -1 else None]
    return re.findall(r'```(\w+)\n(.*?)```', body, flags=re.S)


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


@pytest.fixture(scope='module')
def simulator(tmp_path_factory):
    commands = [code for lang, code in section_blocks() if lang == 'bash']
    assert len(commands) == 1
    assert shlex.split(commands[0])[0] == 'python' and DOC_PORT in commands[0]
    stderr_path = tmp_path_factory.mktemp('docs_sim') / 'stderr.txt'
    # A free port can be taken by another process (an xdist worker) between the probe and the
    # simulator's bind: then the simulator exits with EADDRINUSE and another port is tried.
    for _ in range(5):
        port = free_port()
        argv = shlex.split(commands[0].replace(DOC_PORT, port))
        with open(stderr_path, 'w') as stderr:
            proc = subprocess.Popen([sys.executable, *argv[1:]], stdout=subprocess.PIPE, stderr=stderr, text=True)
        line = proc.stdout.readline()
        if line:
            break
        proc.wait(timeout=30)
        error = stderr_path.read_text()
        assert '[Errno 98]' in error, error[-2000:]   # EADDRINUSE; anything else is a failure
    else:
        raise AssertionError('no free port could be bound in 5 tries')
    try:
        ready = json.loads(line)
        assert ready['rest_url'] == f'http://127.0.0.1:{port}'
        yield port
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def run_block(code: str, port: str, cwd: Path) -> str:
    assert DOC_PORT in code
    result = subprocess.run([sys.executable, '-'], input=code.replace(DOC_PORT, port), cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_section_has_the_documented_examples():
    langs = [lang for lang, _ in section_blocks()]
    assert langs == ['bash', 'python', 'python', 'console', 'python']


def test_history_download_to_csv_and_a_list(simulator, tmp_path):
    code = section_blocks()[1][1]
    out = run_block(code, simulator, tmp_path)
    with open(tmp_path / 'trades.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 1000
    ids = [int(r['id']) for r in rows]
    assert ids == sorted(set(ids)) and ids == list(range(ids[0], ids[0] + len(ids)))   # none missing
    assert {r['side'] for r in rows} <= {'buy', 'sell'} and rows[0]['feed'] == 'BACKPACK'
    assert re.fullmatch(r'(\d+) candles, first at [\d.]+\n', out) and int(out.split()[0]) >= 29


def test_history_download_with_coroutines(simulator, tmp_path):
    out = run_block(section_blocks()[2][1], simulator, tmp_path)
    match = re.fullmatch(r'(\d+) trades; best bid [\d.]+\n', out)
    assert match and int(match.group(1)) > 0


def test_order_round_trip(simulator, tmp_path):
    out = run_block(section_blocks()[4][1], simulator, tmp_path).splitlines()
    assert out[0].startswith('[') and 'SOL-USDC-PERP' in out[0] and 'position: 2' in out[0]
    assert 'SOL-USDC-PERP' in out[1] and 'side: buy' in out[1]
    assert out[2].startswith("{'") and 'USDC' in out[2]
    assert out[3] == 'rejected: INVALID_PRICE'


def _shape(text: str) -> str:
    """A pattern of ``text`` in which every number may be any number (times, counts, file names)."""
    return re.sub(r'\d+', r'\\d+', re.escape(text))


def test_history_to_files_from_the_command_line(simulator, tmp_path):
    (console,) = [body for lang, body in section_blocks() if lang == 'console']
    lines = console.splitlines()
    commands = [line[2:] for line in lines if line.startswith('$ ')]
    assert len(commands) == 2 and all(c.startswith('python -m cryptofeed.exchanges.backpack.history ') for c in commands)
    outputs, expected = [], []
    for line in lines:
        if line.startswith('$ '):
            expected.append([])
        else:
            expected[-1].append(line)
    for command, want in zip(commands, expected):
        argv = shlex.split(command.replace(DOC_PORT, simulator))
        result = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stderr == ''                                     # --quiet
        got = result.stdout.splitlines()
        assert len(got) == len(want), (got, want)
        for line, pattern in zip(got, want):
            assert re.fullmatch(_shape(pattern), line), (line, pattern)
        outputs.append(got)
    trades = sorted(tmp_path.glob('SOL-USDC_trades_*.csv'))
    assert len(trades) == 1 and len(list(tmp_path.glob('SOL-USDC-PERP_trades_*.csv'))) == 1
    with open(trades[0], newline='') as f:
        rows = list(csv.DictReader(f))
    assert f'SOL-USDC trades: {len(rows)} rows' in outputs[0][0] and len(rows) > 1000
    ids = [int(r['id']) for r in rows]
    assert ids == list(range(ids[0], ids[0] + len(ids)))                # every trade of the window once
    import pyarrow.parquet as pq
    (candles,) = tmp_path.glob('SOL-USDC_candles_1m_*.parquet')
    table = pq.read_table(candles)
    assert f'SOL-USDC candles 1m: {table.num_rows} rows' in outputs[1][0] and table.num_rows >= 45
    assert table.column_names == ['start', 'stop', 'symbol', 'interval', 'open', 'high', 'low', 'close', 'volume',
                                  'trades']
