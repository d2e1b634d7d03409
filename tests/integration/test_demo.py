"""``make demo`` (examples/backpack_demo.py) runs offline and shows both sides: market data and the
account (orders placed and cancelled with a generated key, their fills, positions, balances),
in terms a new user can read: every channel it subscribes prints, numbers are plain, and the
summary speaks of channels and explains its counters."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[2] / 'examples' / 'backpack_demo.py'


def test_the_demo_prints_market_data_and_the_account_side():
    result = subprocess.run([sys.executable, str(DEMO), '--seconds', '10'], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    starts = {line.split()[0] for line in lines if line.strip()}
    assert {'TRADE', 'BOOK', 'TICKER', 'CANDLE', 'FUNDING', 'ORDER', 'FILL', 'POSITION', 'BALANCE'} <= starts
    orders = [line for line in lines if line.startswith('ORDER ')]
    assert any(' filled ' in line for line in orders) and any(' cancelled ' in line for line in orders)
    assert any(line.startswith('FILL ') and ' USDC taker ' in line for line in lines)
    assert 'auth failures 0' in out

    # Candles: one-minute candles, the forming one shown, marked as such.
    candles = [line for line in lines if line.startswith('CANDLE ')]
    assert all(re.search(r' 1m \d\d:\d\d:00 UTC o=\S+ h=\S+ l=\S+ c=\S+ v=\S+ \((forming|closed)\)$', line)
               for line in candles), candles
    # A market order is "at market" until it fills, then shows its average price; no "@ 0".
    market = [line for line in orders if ' market ' in line]
    assert any(' open ' in line and ' at market ' in line for line in market), market
    assert any(' filled ' in line and re.search(r' avg \d', line) for line in market), market
    assert not any(' @ 0 ' in line for line in orders)
    # Numbers are plain: a filled order has "remaining 0", never "0.0".
    assert not re.search(r'\b0\.0\b(?!\d)', '\n'.join(orders)), orders
    assert all(line.endswith(' remaining 0 id=' + line.rsplit('id=', 1)[1])
               for line in orders if ' filled ' in line)

    summary = out.split('=== summary after 10 s ===', 1)[1]
    assert 'markPrice' not in summary and 'open_interest' not in summary       # channels only, as subscribed
    rows = {line.split()[0]: line.split()[1:3] for line in summary.splitlines()
            if re.match(r'^[a-z0-9_]+ +\d+ +\d+', line)}
    assert {'trades', 'l2_book', 'ticker', 'candles', 'funding', 'order_info', 'fills', 'positions',
            'balances'} <= set(rows)
    assert int(rows['funding'][0]) > 0 and int(rows['candles'][1]) > 0
    assert 'stale dropped: depth frames received before the book\'s REST snapshot' in summary
    # Health in words, with a clock time: no repr, no epoch float.
    assert re.search(r'^health:  healthy \(checked \d\d:\d\d:\d\d UTC\)$', summary, re.M), summary
    assert 'BackpackHealthReport(' not in out and 'checked_at' not in out
