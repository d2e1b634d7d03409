"""The commands the README's "Commands" section gives, run as a user would type them."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_readme_names_exactly_these_commands():
    text = (ROOT / 'README.md').read_text()
    for command in ('make demo', 'make test', 'python -m tools.backpack_auth_check --help',
                    'python -m cryptofeed.exchanges.backpack.simulator --help'):
        assert command in text


def test_make_demo_streams_from_the_simulator_and_ends_healthy():
    # PYTHON= the interpreter under test: its line's virtual environment (the one running this
    # test, which `make test` built), not python3's.
    result = _run(['make', 'demo', f'PYTHON={sys.executable}', 'DEMO_ARGS=--seconds 4'])
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert re.search(r'^TRADE\s+SOL-USDC\s', out, re.M) and re.search(r'^BOOK\s+BTC-USDC\s', out, re.M)
    assert 'parse errors 0' in out and "status='healthy'" in out


def test_the_tools_the_readme_names_answer_help():
    for module in ('tools.backpack_auth_check', 'cryptofeed.exchanges.backpack.simulator'):
        result = _run([sys.executable, '-m', module, '--help'], timeout=60)
        assert result.returncode == 0 and 'usage:' in result.stdout, (module, result.stderr[-1000:])
