"""The blocks about every market and listings, run as a user runs them: the README's "Every market"
block and the two blocks of docs/exchanges/backpack.md's "Every market and listings", each a plain
script in its own process, pointed at the simulator through ``CRYPTOFEED_CONFIG``."""
from __future__ import annotations

import asyncio
import ast
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import yaml

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

from tests.integration.test_docs_blocks import blocks
from tests.integration.test_readme import _read_until

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / 'README.md'
PERPS = {'SOL-USDC-PERP', 'BTC-USDC-PERP'}


def readme_block() -> str:
    section = README.read_text().split('\n### Every market\n', 1)[1].split('\n### ', 1)[0]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


async def _run_script(tmp_path, code: str, sim, done, timeout: float = 60) -> tuple:
    """Run ``code`` against ``sim`` until ``done(lines)``; returns (stdout lines, stderr)."""
    (tmp_path / 'script.py').write_text(code)
    config = {'log': {'filename': 'feedhandler.log', 'level': 'WARNING'},
              'backpack': {'rest_url': sim.rest_url, 'ws_url': sim.ws_url}}
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(config))
    env = {**os.environ, 'CRYPTOFEED_CONFIG': str(tmp_path / 'config.yaml'), 'PYTHONUNBUFFERED': '1'}
    proc = await asyncio.create_subprocess_exec(sys.executable, 'script.py', cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        lines = await _read_until(proc.stdout, done, timeout=timeout)
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 15)
        except asyncio.TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
    return lines, err.decode(errors='replace')


async def test_the_readme_block_streams_the_books_of_every_perpetual_and_nothing_else(tmp_path):
    code = readme_block()
    assert "symbols='all'" in code and 'fh.run()' in code
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC', 'SOL_USDC_PERP', 'BTC_USDC_PERP'], seed=31,
                                 rate=300) as sim:
        def books(lines, kind):
            return {line.split()[0] for line in lines if line.endswith('full book') == (kind == 'full')}

        def done(lines):
            return books(lines, 'full') >= PERPS and books(lines, 'delta') >= PERPS

        lines, stderr = await _run_script(tmp_path, code, sim, done)
    assert done(lines), f'stdout: {lines[-5:]}; stderr: {stderr[-2000:]}'
    assert books(lines, 'full') | books(lines, 'delta') == PERPS  # market_types=['perp']: no spot market
    assert 'Traceback' not in stderr, stderr[-2000:]


async def test_the_every_market_block_follows_every_market_and_changes_them_while_running(tmp_path):
    code, _ = [body for lang, body in blocks('Every market and listings') if lang == 'python']
    async with BackpackSimulator(seed=32, rate=300) as sim:
        expected = len(sim.model.symbols)

        def done(lines):
            return any(line.startswith('{') for line in lines)

        lines, stderr = await _run_script(tmp_path, code, sim, done)
    assert done(lines), f'stdout: {lines}; stderr: {stderr[-2000:]}'
    assert lines == [
        f'following {expected} markets, every book synced',
        'SOL-USD is not listed by Backpack (/api/v1/markets): did you mean SOL-USDC or SOL-USDC-PERP?',
        f"{{'symbols_added': 1, 'symbols_removed': 1, 'subscribed_symbols': {expected}}}",
    ], stderr[-2000:]
    assert 'Traceback' not in stderr, stderr[-2000:]


def test_the_shard_block_prints_crc32_modulo_count():
    _, code = [body for lang, body in blocks('Every market and listings') if lang == 'python']
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    shards = ast.literal_eval(result.stdout)
    assert shards == {s: zlib.crc32(s.encode()) % 4 for s in ('SOL-USDC', 'SOL-USDC-PERP', 'BTC-USDC')}
