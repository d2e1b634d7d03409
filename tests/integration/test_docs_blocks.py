"""The blocks of docs/exchanges/backpack.md not run by the section tests (flag, private channels,
REST API): the simulator examples (faults, account controls, whole venue), the configuration
examples and the credential check.

``<base64 or hex ...>`` in a block stands for the user's key: the tests put the seed of
backpack-api.md section 4 there (32 bytes of 0x01), whose public key is the one the page shows.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from cryptofeed.exchanges.backpack.core.config import BackpackConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / 'docs' / 'exchanges' / 'backpack.md'
SEED_B64 = 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE='
KEY_PLACEHOLDER = re.compile(r'<base64 or hex[^>]*>')

# Every fenced block of the page, in order, and the test that runs it.
RUN_BY = ['yaml: test_migration_docs', 'console: test_migration_docs', 'python: test_docs_listings',
          'python: test_docs_listings', 'python: test_docs_private',
          'bash: test_docs_rest_api', 'python: test_docs_rest_api', 'python: test_docs_rest_api',
          'console: test_docs_rest_api', 'python: test_docs_rest_api', 'python: test_docs_metrics',
          'console: test_docs_metrics', 'yaml: test_docs_metrics', 'python: here', 'python: here', 'python: here',
          'python: here', 'yaml: here', 'console: here', 'sql: test_docs_backends', 'python: test_docs_backends',
          'python: test_docs_backends']


def blocks(heading: str = '') -> list:
    text = DOC.read_text()
    if heading:
        start = text.index(f'\n## {heading}\n')
        end = text.find('\n## ', start + 1)
        text = text[start:end if end != -1 else None]
    return re.findall(r'```(\w+)\n(.*?)```', text, re.S)


def test_every_block_of_the_page_is_run_by_a_test():
    assert [lang for lang, _ in blocks()] == [entry.split(':')[0] for entry in RUN_BY]


def test_the_simulator_example_runs():
    code = [body for lang, body in blocks('The simulator') if lang == 'python'][0]
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.fullmatch(r'book at \d+ trades \d+\n', result.stdout)


def test_the_account_controls_example_runs_and_echoes_the_normalised_faults():
    code = [body for lang, body in blocks('The simulator') if lang == 'python'][1]
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "{'fault': 'hostile_account', 'event': 'orderFill', 'symbol': 'SOL_USDC', 'field': 'l', 'value': 'NaN'}",
        "{'fault': 'malformed_history_row', 'path': '/wapi/v1/history/fills', 'field': 'quantity', 'value': 'abc', "
        "'count': 1}"]


def test_the_whole_venue_example_lists_limits_and_delists():
    _, _, code = [body for lang, body in blocks('The simulator') if lang == 'python']
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[:5] == ['listed PERP', 'markets 310', '429 after the burst True', '4005', 'delisted Closed']
    stats = ast.literal_eval(lines[5])
    # 21 requests under a burst of 5: at least 5 answered, the rest refused unless a token came back.
    assert stats['rest_requests'] == 21 and 1 <= stats['rest_429'] <= 16 and stats['subscribe_refused'] == 1
    assert stats['ws_connections_total'] == 1 and len(lines) == 6


def test_the_configuration_examples_build_the_config_they_describe(tmp_path):
    python, config_yaml = [KEY_PLACEHOLDER.sub(SEED_B64, body) for _, body in blocks('Configuration')[:2]]
    namespace: dict = {}
    exec(compile(python, 'backpack.md', 'exec'), namespace)
    config = namespace['config']
    assert config.enable_private_channels and config.window_ms == 5000
    assert config.auth.api_key == 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
    assert config.rest_proxy == config.ws_proxy == 'socks5h://user:password@proxy.example:1080'
    path = tmp_path / 'config.yaml'
    path.write_text(config_yaml)
    assert yaml.safe_load(config_yaml)['log']['level'] == 'WARNING'
    loaded = BackpackConfig.from_cryptofeed_config(str(path))
    assert loaded.enable_private_channels and loaded.auth.api_key == config.auth.api_key
    assert loaded.ws_proxy == 'socks5://proxy.example:1080'


def test_the_credential_check_prints_what_the_page_shows():
    (console,) = [body for lang, body in blocks('Credential check') if lang == 'console']
    lines = console.splitlines()
    commands = [line[2:].split('  #')[0].strip() for line in lines if line.startswith('$ ')]
    expected = '\n'.join(line for line in lines if not line.startswith('$ '))
    # Run as printed: the key the output comes from is on the page, not hidden in this test.
    assert f'export BACKPACK_PRIVATE_KEY={SEED_B64}' in commands
    script = '\n'.join(commands)
    env = dict(os.environ, PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('BACKPACK_API_KEY', None)
    result = subprocess.run(['bash', '-c', script], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == expected.strip()
