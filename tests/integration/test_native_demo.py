"""``examples/backpack_native_demo.py`` runs: offline against the simulator, for a few seconds.

The demo is run as a user runs it (a child process, the simulator in another), with the flag
left unset (the demo's own ``native_enabled: true`` chooses the native feed), overridden by the
environment, and invalid.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'examples' / 'backpack_native_demo.py'


def run_demo(*args: str, flag: str = None, timeout: float = 90):
    env = {k: v for k, v in os.environ.items() if k not in ('CRYPTOFEED_BACKPACK_NATIVE', 'CRYPTOFEED_CONFIG')}
    if flag is not None:
        env['CRYPTOFEED_BACKPACK_NATIVE'] = flag
    return subprocess.run([sys.executable, str(DEMO), '--seconds', '7', *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)


def callback_counts(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith('callbacks:'))
    return {k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", line)}


def test_the_demo_streams_the_native_feed_offline():
    result = run_demo()
    assert result.returncode == 0, result.stderr[-3000:]
    out, err = result.stdout, result.stderr
    assert 'using BackpackFeed (backpack.native_enabled=True)' in err
    assert 'feed: BackpackFeed  channels: trades, l2_book, ticker, order_info, fills, positions, balances' in out
    counts = callback_counts(out)
    assert counts['trades'] > 0 and counts['l2_book'] > 0 and counts['ticker'] > 0
    # the generated key's account: its balances, and the orders the demo placed with it
    assert re.search(r'^BALANCE USDC +100000', out, re.M)
    assert re.search(r'^ORDER +SOL-USDC +buy', out, re.M) and re.search(r'^FILL +SOL-USDC', out, re.M)
    assert re.search(r'^TRADE +SOL-USDC', out, re.M) and re.search(r'^BOOK +SOL-USDC-PERP', out, re.M)
    assert re.search(r'^health:     healthy \(checked \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00\)$', out, re.M), out
    assert 'Traceback' not in err


def test_the_environment_wins_and_runs_the_ccxt_fallback_with_the_generated_key():
    result = run_demo('--log-level', 'warning', flag='false')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'feed: CcxtBackpackFeed  channels: trades, l2_book, ticker, order_info, positions, balances' in result.stdout
    assert re.search(r'^BALANCE USDC +100000', result.stdout, re.M)  # the simulator account of the generated key
    assert callback_counts(result.stdout)['trades'] > 0


def test_an_invalid_flag_exits_2_with_the_accepted_values():
    result = run_demo(flag='perhaps')
    assert result.returncode == 2
    assert "CRYPTOFEED_BACKPACK_NATIVE has an invalid value 'perhaps'" in result.stderr
    assert 'true/1/yes' in result.stderr and 'simulator:' not in result.stdout
