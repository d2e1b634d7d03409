"""The overlay installs into the released cryptofeed, both as a wheel and editable.

Each test builds a fresh virtual environment of its own (under its ``tmp_path``) and installs
offline from the wheelhouse that ``make test`` prepares beside the interpreter running the tests
(``<venv>/wheelhouse``, with the wheel of the cryptofeed installed there; ``BACKPACK_WHEELHOUSE``
names another), so no test touches the network. The wheel is built from a copy of the source
tree, so no build writes into the working tree while other tests (xdist workers) read it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get('BACKPACK_WHEELHOUSE') or Path(sys.prefix) / 'wheelhouse')
CRYPTOFEED = version('cryptofeed')   # the line under test: the install must resolve the same one

PROBE = (
    'import importlib.metadata, json, cryptofeed, cryptofeed.exchanges.backpack as bp, cryptofeed.exchanges.binance as bn;'
    'print(json.dumps({"cryptofeed": cryptofeed.__file__, "backpack": bp.__file__, "binance": bn.__file__,'
    '"signer": bp.BackpackSigner.__module__, "version": importlib.metadata.version("cryptofeed")}))'
)


FEEDHANDLER_PROBE = (
    'import asyncio, uvloop; from cryptofeed import FeedHandler; from cryptofeed.exchanges.backpack import BackpackFeed;'
    'fh = FeedHandler(config={"uvloop": True, "log": {"disabled": True}});'
    'BackpackFeed(symbols=["SOL-USDC"], channels=["trades"], config={"rest_url": "http://127.0.0.1:1",'
    ' "ws_url": "ws://127.0.0.1:1"});'
    'print(uvloop.__version__, type(asyncio.get_event_loop()).__name__)'  # what FeedHandler.run() calls first
)


@pytest.fixture
def venv(tmp_path):
    if not any(WHEELHOUSE.glob(f'cryptofeed-{CRYPTOFEED}-*.whl')):
        pytest.fail(f'{WHEELHOUSE} has no cryptofeed {CRYPTOFEED} wheel: run `make test`, which prepares it')
    path = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(path)], check=True)
    return path


def _source_copy(dest: Path) -> Path:
    """The working tree without build output, virtual environments or caches."""
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        '.git', '.venv*', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache', '.hypothesis'))
    return dest


def _pip(venv: Path, *args: str):
    cmd = [sys.executable, '-m', 'pip', '--python', str(venv / 'bin' / 'python'), 'install', '--quiet',
           '--no-index', '--find-links', str(WHEELHOUSE), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=venv.parent)
    assert result.returncode == 0, result.stderr[-3000:]


def _probe(venv: Path, tmp_path: Path) -> dict:
    out = subprocess.run([str(venv / 'bin' / 'python'), '-c', PROBE], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    return json.loads(out.stdout)


# In these environments ccxt is really absent (the wheelhouse has no ccxt): the ccxt module
# still imports, and 'BACKPACK' without the flag says what to install.
NO_CCXT_PROBE = (
    'import json, os, cryptofeed.exchanges.backpack_ccxt as m\n'
    'from cryptofeed import FeedHandler\n'
    'from cryptofeed.exchanges.backpack import BackpackConfigError\n'
    'fh = FeedHandler(config={"log": {"disabled": True}})\n'
    'try:\n'
    '    fh.add_feed("BACKPACK", symbols=["SOL-USDC"], channels=["trades"])\n'
    '    error = None\n'
    'except BackpackConfigError as exc:\n'
    '    error = str(exc)\n'
    'os.environ["CRYPTOFEED_BACKPACK_NATIVE"] = "true"\n'
    'fh.add_feed("BACKPACK", symbols=["SOL-USDC"], channels=["trades"])\n'
    'print(json.dumps({"module": m.__file__, "error": error, "native": type(fh.feeds[0]).__name__}))\n'
)


def _probe_without_ccxt(venv: Path, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ('CRYPTOFEED_BACKPACK_NATIVE', 'CRYPTOFEED_CONFIG')}
    out = subprocess.run([str(venv / 'bin' / 'python'), '-c', NO_CCXT_PROBE], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout)
    assert "cryptofeed-backpack[ccxt]" in found['error'] and 'CRYPTOFEED_BACKPACK_NATIVE' in found['error']
    assert found['native'] == 'BackpackFeed'
    return found


def _site_packages(venv: Path) -> Path:
    return next((venv / 'lib').glob('python3*/site-packages'))


def test_wheel_install_places_the_package_inside_the_installed_cryptofeed(venv, tmp_path):
    _pip(venv, str(_source_copy(tmp_path / 'src')))
    found = _probe(venv, tmp_path)
    site = _site_packages(venv)
    assert found['version'] == CRYPTOFEED
    assert Path(found['cryptofeed']) == site / 'cryptofeed' / '__init__.py'
    assert Path(found['backpack']) == site / 'cryptofeed' / 'exchanges' / 'backpack' / '__init__.py'
    assert Path(found['binance']).parent == site / 'cryptofeed' / 'exchanges'
    assert (venv / 'bin' / 'backpack-auth-check').exists()
    # Our distribution owns only its own subpackage, never cryptofeed's modules.
    record = next(site.glob('cryptofeed_backpack-*.dist-info')) / 'RECORD'
    owned = [line.split(',')[0] for line in record.read_text().splitlines()]
    assert 'cryptofeed/__init__.py' not in owned
    assert 'cryptofeed/exchanges/__init__.py' not in owned
    assert any(p.startswith('cryptofeed/exchanges/backpack/') for p in owned)
    assert 'cryptofeed/exchanges/backpack_ccxt.py' in owned
    assert Path(_probe_without_ccxt(venv, tmp_path)['module']) == site / 'cryptofeed' / 'exchanges' / 'backpack_ccxt.py'
    # cryptofeed 2.x: FeedHandler() installs uvloop's policy, run() then calls asyncio.get_event_loop():
    # with the newest uvloop this install resolves (0.22+ have no loop there), a BackpackFeed makes
    # that work. cryptofeed 3.x runs a loop of its own (asyncio.Runner): building both must succeed.
    loop = subprocess.run([str(venv / 'bin' / 'python'), '-c', FEEDHANDLER_PROBE], capture_output=True, text=True,
                          cwd=tmp_path)
    assert loop.returncode == 0, loop.stderr[-2000:]
    if version('cryptofeed').startswith('2.'):
        assert loop.stdout.split()[1] == 'Loop', loop.stderr[-2000:]


def test_editable_install_maps_the_package_to_the_working_tree(venv, tmp_path):
    _pip(venv, '-e', str(REPO))
    found = _probe(venv, tmp_path)
    site = _site_packages(venv)
    assert found['version'] == CRYPTOFEED
    assert Path(found['cryptofeed']) == site / 'cryptofeed' / '__init__.py'
    assert Path(found['backpack']) == REPO / 'cryptofeed' / 'exchanges' / 'backpack' / '__init__.py'
    assert not (site / 'cryptofeed' / 'exchanges' / 'backpack').exists()
    assert found['signer'] == 'cryptofeed.exchanges.backpack.core.auth'
    assert Path(_probe_without_ccxt(venv, tmp_path)['module']) == REPO / 'cryptofeed' / 'exchanges' / 'backpack_ccxt.py'


def test_the_repository_does_not_ship_cryptofeed_own_init_files():
    assert not (REPO / 'cryptofeed' / '__init__.py').exists()
    assert not (REPO / 'cryptofeed' / 'exchanges' / '__init__.py').exists()
