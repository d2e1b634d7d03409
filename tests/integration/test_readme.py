"""The README's usage block, run as a user runs it: a plain script in its own process.

The block is taken from README.md unchanged and pointed at the simulator the way any cryptofeed
program is pointed at a configuration, through ``CRYPTOFEED_CONFIG`` (a YAML file holding
cryptofeed's default settings, uvloop included, plus a ``backpack:`` section with the
simulator's URLs). The test passes when the script prints trades, books and funding from the simulator, and logs
no warning.
"""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import yaml

from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

README = Path(__file__).resolve().parents[2] / 'README.md'
BOOK_LINE = re.compile(r'^(SOL-USDC|BTC-USDC-PERP) \d+ ')


def usage_block() -> str:
    """The first ``python`` code block of the README's ``## Usage`` section."""
    section = README.read_text().split('\n## Usage\n', 1)[1].split('\n## ', 1)[0]
    match = re.search(r'```python\n(.*?)```', section, re.S)
    assert match, 'README.md has no python block under "## Usage"'
    return match.group(1)


async def _read_until(stream: asyncio.StreamReader, done, timeout: float) -> list:
    lines: list = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done(lines):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            line = await asyncio.wait_for(stream.readline(), remaining)
        except asyncio.TimeoutError:
            break
        if not line:
            break
        lines.append(line.decode(errors='replace').rstrip('\n'))
    return lines


async def test_the_readme_usage_block_runs_as_a_plain_script_and_prints_data(tmp_path):
    code = usage_block()
    assert 'fh.run()' in code  # the snippet starts the loop itself, as a user's script does
    (tmp_path / 'usage.py').write_text(code)
    async with BackpackSimulator(markets=['SOL_USDC', 'BTC_USDC_PERP'], seed=8, rate=300) as sim:
        config = {'uvloop': True, 'log': {'filename': 'feedhandler.log', 'level': 'WARNING'},
                  'backpack': {'rest_url': sim.rest_url, 'ws_url': sim.ws_url}}
        (tmp_path / 'config.yaml').write_text(yaml.safe_dump(config))
        env = {**os.environ, 'CRYPTOFEED_CONFIG': str(tmp_path / 'config.yaml'), 'PYTHONUNBUFFERED': '1'}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, 'usage.py', cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            def seen_both(lines):
                return (any('BACKPACK' in line and 'SOL-USDC' in line for line in lines)
                        and any(BOOK_LINE.match(line) and line.endswith('full book') for line in lines)
                        and any(BOOK_LINE.match(line) and not line.endswith('full book') for line in lines)
                        and any('BTC-USDC-PERP' in line and 'mark_price' in line for line in lines))

            lines = await _read_until(proc.stdout, seen_both, timeout=40)
        finally:
            if proc.returncode is None:
                proc.terminate()
            try:
                _, err = await asyncio.wait_for(proc.communicate(), 15)
            except asyncio.TimeoutError:
                proc.kill()
                _, err = await proc.communicate()
    stderr = err.decode(errors='replace')
    assert seen_both(lines), f'no trades and books printed; stdout: {lines[-5:]}; stderr: {stderr[-2000:]}'
    assert 'Traceback' not in stderr, stderr[-2000:]
    # The example asks for nothing the exchange does not publish: no warning on start.
    log = (tmp_path / 'feedhandler.log').read_text() if (tmp_path / 'feedhandler.log').exists() else ''
    assert 'WARNING' not in log and 'perpetuals only' not in log + stderr, log[-2000:]
