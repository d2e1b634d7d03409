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
                    'python -m cryptofeed.exchanges.backpack.simulator --help',
                    'python -m cryptofeed.exchanges.backpack.history --help'):
        assert command in text


def test_make_demo_streams_from_the_simulator_and_ends_healthy():
    # PYTHON= the interpreter under test: its line's virtual environment (the one running this
    # test, which `make test` built), not python3's.
    result = _run(['make', 'demo', f'PYTHON={sys.executable}', 'DEMO_ARGS=--seconds 4'])
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert re.search(r'^TRADE\s+SOL-USDC\s', out, re.M) and re.search(r'^BOOK\s+BTC-USDC\s', out, re.M)
    assert 'parse errors 0' in out and re.search(r'^health:  healthy ', out, re.M)


def test_the_tools_the_readme_names_answer_help():
    for module in ('tools.backpack_auth_check', 'cryptofeed.exchanges.backpack.simulator',
                   'cryptofeed.exchanges.backpack.history'):
        result = _run([sys.executable, '-m', module, '--help'], timeout=60)
        assert result.returncode == 0 and 'usage:' in result.stdout, (module, result.stderr[-1000:])


def _readme_block(after: str, lang: str) -> str:
    text = (ROOT / 'README.md').read_text()
    section = text.split(after, 1)[1]
    return re.search(rf'```{lang}\n(.*?)```', section, re.S).group(1)


def test_the_environment_block_runs_with_the_environment_make_built():
    block = _readme_block('**Using the environment `make` built.**', 'sh')
    assert '. .venv-3.11/bin/activate' in block and '.venv-3.11/bin/python -m' in block
    # The block names the 3.11 line's environment; run it with the environment running this test.
    script = block.replace('.venv-3.11/', f'{sys.prefix}/')
    result = subprocess.run(['bash', '-e', '-c', script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count('usage: python -m cryptofeed.exchanges.backpack.simulator') == 2


def test_a_python_without_cryptofeed_says_to_use_the_environment_instead_of_a_cryptic_import_error():
    # -S: no site-packages, so neither cryptofeed nor this package is installed; from the
    # repository root the checkout's cryptofeed/ folder is all `import cryptofeed` finds.
    result = _run([sys.executable, '-S', '-m', 'cryptofeed.exchanges.backpack.simulator', '--help'], timeout=60)
    assert result.returncode != 0
    assert 'cryptofeed is not installed for this Python' in result.stderr
    assert '.venv-X.Y/bin/python' in result.stderr and 'EXCHANGE_MAP' not in result.stderr
