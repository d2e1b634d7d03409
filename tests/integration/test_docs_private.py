"""The private-channels example of docs/exchanges/backpack.md runs as written, against the simulator.

The code block is taken from the page and run in a child Python process whose environment
points the feed at a TLS simulator (``BACKPACK_REST_URL``, ``BACKPACK_WS_URL``,
``BACKPACK_CA_FILE``) with a freshly generated key (``BACKPACK_PRIVATE_KEY``).
"""
from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
from pathlib import Path

from cryptofeed.exchanges.backpack import BackpackConfig
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

DOC = Path(__file__).parents[2] / 'docs' / 'exchanges' / 'backpack.md'


def private_example() -> str:
    text = DOC.read_text()
    section = text[text.index('## Private channels'):text.index('### What each object holds')]
    blocks = re.findall(r'```python\n(.*?)```', section, re.S)
    assert len(blocks) == 1
    return blocks[0]


async def read_until(stream, needles, seen, errors, timeout=20.0):
    async def scan():
        while not all(any(line.startswith(n) for line in seen) for n in needles):
            line = await stream.readline()
            if not line:
                raise AssertionError(f'the example exited; output so far: {seen}; errors: {await errors()}')
            seen.append(line.decode())
    await asyncio.wait_for(scan(), timeout)


async def test_the_private_channels_example_runs_and_prints_account_events(tmp_path):
    secret = base64.b64encode(os.urandom(32)).decode()
    script = tmp_path / 'example.py'
    script.write_text(private_example())
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=1, rate=20, tls=True) as sim:
        env = dict(os.environ, BACKPACK_PRIVATE_KEY=secret, BACKPACK_REST_URL=sim.rest_url,
                   BACKPACK_WS_URL=sim.ws_url, BACKPACK_CA_FILE=str(sim.ca_file))
        proc = await asyncio.create_subprocess_exec(sys.executable, str(script), env=env, cwd=str(tmp_path),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        seen: list = []
        try:
            await read_until(proc.stdout, ['Balance '], seen, proc.stderr.read)
            config = BackpackConfig(rest_url=sim.rest_url, ca_file=sim.ca_file, auth={'private_key': secret})
            async with BackpackRestClient.from_config(config) as trader:
                await trader.signed_post('orderExecute', '/api/v1/order', {
                    'symbol': 'SOL_USDC_PERP', 'side': 'Bid', 'orderType': 'Market', 'quantity': '1'})
            await read_until(proc.stdout, ['OrderInfo ', 'Fill ', 'Position ', 'Trade '], seen, proc.stderr.read)
        finally:
            proc.terminate()
            await proc.wait()
    fills = [line for line in seen if line.startswith('Fill ')]
    assert 'symbol: SOL-USDC-PERP' in fills[0] and 'side: buy' in fills[0]
    assert any(line.startswith('Position ') and 'position: 1 ' in line for line in seen)
