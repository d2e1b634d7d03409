"""``make demo`` (examples/backpack_demo.py) runs offline and shows both sides: market data and the
account (orders placed and cancelled with a generated key, their fills, positions, balances)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[2] / 'examples' / 'backpack_demo.py'


def test_the_demo_prints_market_data_and_the_account_side():
    result = subprocess.run([sys.executable, str(DEMO), '--seconds', '10'], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    starts = {line.split()[0] for line in lines if line.strip()}
    assert {'TRADE', 'BOOK', 'ORDER', 'FILL', 'POSITION', 'BALANCE'} <= starts
    orders = [line for line in lines if line.startswith('ORDER ')]
    assert any(' filled ' in line for line in orders) and any(' cancelled ' in line for line in orders)
    assert any(line.startswith('FILL ') and ' USDC taker ' in line for line in lines)
    assert 'auth failures: 0' in result.stdout and "status='healthy'" in result.stdout
