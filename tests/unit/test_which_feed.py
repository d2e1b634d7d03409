"""``python -m cryptofeed.exchanges.backpack.which_feed``: its answers and exit statuses."""
from __future__ import annotations

import sys

import pytest

from cryptofeed.exchanges.backpack.hosts.registry import ENV_VAR
from cryptofeed.exchanges.backpack.which_feed import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv('CRYPTOFEED_CONFIG', raising=False)


def test_config_file_and_environment(tmp_path, monkeypatch, capsys):
    path = tmp_path / 'config.yaml'
    path.write_text('backpack:\n  native_enabled: yes\n')
    assert main(['--config', str(path)]) == 0
    assert capsys.readouterr().out == 'BACKPACK -> BackpackFeed (backpack.native_enabled=True)\n'
    monkeypatch.setenv('CRYPTOFEED_CONFIG', str(path))
    monkeypatch.setenv(ENV_VAR, 'No')
    assert main([]) == 0
    assert capsys.readouterr().out == 'BACKPACK -> CcxtBackpackFeed (CRYPTOFEED_BACKPACK_NATIVE=No)\n'


def test_the_cryptofeed_config_variable_is_the_default_config(tmp_path, monkeypatch, capsys):
    path = tmp_path / 'config.yaml'
    path.write_text('backpack:\n  native_enabled: true\n')
    monkeypatch.setenv('CRYPTOFEED_CONFIG', str(path))
    assert main([]) == 0 and 'BackpackFeed (backpack.native_enabled=True)' in capsys.readouterr().out


def test_errors_exit_2_with_the_message(tmp_path, monkeypatch, capsys):
    assert main(['--config', str(tmp_path / 'missing.yaml')]) == 2
    assert 'missing.yaml: no such file' in capsys.readouterr().err
    monkeypatch.setenv(ENV_VAR, 'enabled')
    assert main([]) == 2
    assert "CRYPTOFEED_BACKPACK_NATIVE has an invalid value 'enabled'" in capsys.readouterr().err
    monkeypatch.delenv(ENV_VAR)
    for name in [n for n in sys.modules if n == 'ccxt' or n.startswith('ccxt.')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'ccxt', None)
    monkeypatch.setitem(sys.modules, 'ccxt.pro', None)
    assert main([]) == 2
    assert 'cryptofeed-backpack[ccxt]' in capsys.readouterr().err
