"""Every block of the migration docs runs as written: the runbook, the ccxt deprecation page and
the flag sections of ``docs/exchanges/backpack.md`` and the README (between the
``flag-docs`` markers).

``yaml`` blocks are loaded the way cryptofeed and the registry load them; ``console`` blocks are
run command by command in a shell, from a directory holding the page's YAML as ``config.yaml``,
and their output compared with the page; ``python`` blocks are run as scripts against the
simulator (endpoints given through ``CRYPTOFEED_CONFIG``, as a collector host would).
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import yaml

from cryptofeed.exchanges.backpack.core.config import BackpackConfig
from cryptofeed.exchanges.backpack.hosts.registry import choose
from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = 'docs/runbooks/backpack_migration.md'
CHECKLIST = 'docs/migrations/backpack_ccxt.md'
EXCHANGE_DOC = 'docs/exchanges/backpack.md'
README = 'README.md'
# page -> the languages of its blocks, in order (so a block cannot silently stop being tested)
EXPECTED = {RUNBOOK: ['yaml', 'console', 'console', 'python'], CHECKLIST: ['console'], EXCHANGE_DOC: ['yaml', 'console'],
            README: ['console']}
MARK = '@@ next command @@'
_BLOCK = re.compile(r'^( *)```(\w+)\n(.*?)^\1```', re.M | re.S)


def blocks(page: str) -> List[Tuple[str, str]]:
    text = (REPO / page).read_text()
    if page in (EXCHANGE_DOC, README):
        text = text[text.index('<!-- flag-docs:start -->'):text.index('<!-- flag-docs:end -->')]
    return [(lang, textwrap.dedent(body)) for _, lang, body in _BLOCK.findall(text)]


def page_yaml(page: str) -> Optional[dict]:
    found = [yaml.safe_load(body) for lang, body in blocks(page) if lang == 'yaml']
    return found[0] if found else None


def shell_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ('CRYPTOFEED_BACKPACK_NATIVE', 'CRYPTOFEED_CONFIG')}
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'  # `python` = this venv
    env.update(extra or {})
    return env


def console_steps(body: str) -> List[Tuple[str, List[str]]]:
    steps: List[Tuple[str, List[str]]] = []
    for line in body.splitlines():
        if line.startswith('$ '):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


@pytest.mark.parametrize('page', sorted(EXPECTED))
def test_the_pages_hold_the_blocks_this_test_runs(page):
    assert [lang for lang, _ in blocks(page)] == EXPECTED[page]


@pytest.mark.parametrize('page', [RUNBOOK, EXCHANGE_DOC])
def test_yaml_blocks_load_and_choose_as_they_say(page):
    config = page_yaml(page)
    BackpackConfig.from_cryptofeed_config(config)
    assert choose(config, {}).native is (config['backpack']['native_enabled'] is True)


@pytest.mark.parametrize('page', sorted(EXPECTED))
def test_console_blocks_print_what_the_page_shows(page, tmp_path):
    """Each block runs in one shell (an ``export`` holds for the commands after it)."""
    config = page_yaml(page)
    if config is not None:
        (tmp_path / 'config.yaml').write_text(yaml.safe_dump(config))
    for body in [body for lang, body in blocks(page) if lang == 'console']:
        steps = console_steps(body)
        script = 'set -e\n' + ''.join(f'echo "{MARK}"\n{command}\n' for command, _ in steps)
        result = subprocess.run(['bash', '-c', script], capture_output=True, text=True, cwd=tmp_path,
                                env=shell_env(), timeout=60)
        assert result.returncode == 0, (body, result.stderr)
        outputs = [part.strip('\n').splitlines() for part in result.stdout.split(MARK + '\n')[1:]]
        assert outputs == [expected for _, expected in steps], body


async def test_the_runbook_shadow_script_compares_both_feeds_on_the_simulator(tmp_path):
    (script,) = [body for lang, body in blocks(RUNBOOK) if lang == 'python']
    (tmp_path / 'shadow.py').write_text(script)
    async with BackpackSimulator(markets=['SOL_USDC', 'SOL_USDC_PERP'], seed=61, rate=60, tls=True) as sim:
        config = page_yaml(RUNBOOK)
        config['backpack'].update(rest_url=sim.rest_url, ws_url=sim.ws_url, ca_file=sim.ca_file)
        (tmp_path / 'config.yaml').write_text(yaml.safe_dump(config))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, 'shadow.py', '8', cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=shell_env({'CRYPTOFEED_CONFIG': str(tmp_path / 'config.yaml')}))
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
    out = stdout.decode()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert re.search(r"^native health=healthy out_of_sync=\[\] gaps=0 resyncs=0 lost_trades=0 parse_errors=0 ", out,
                     re.M), out
    assert re.search(r"^ccxt   health=healthy out_of_sync=\[\] gaps=0 resyncs=0 lost_trades=0 parse_errors=0 ", out,
                     re.M), out
    for symbol in ('SOL-USDC', 'SOL-USDC-PERP'):
        native, ccxt = map(int, re.search(rf'^{symbol}: last trade id native=(\d+) ccxt=(\d+)', out, re.M).groups())
        assert abs(native - ccxt) <= 10
    assert 'Traceback' not in stderr.decode()
