"""What ``'BACKPACK'`` builds: the flag matrix through ``FeedHandler.add_feed('BACKPACK')``.

Building a feed does no network I/O, so these tests construct real feeds through the real
``FeedHandler`` without an event loop. ccxt is installed in the test environment; its absence
is simulated by hiding the module (``sys.modules[name] = None`` makes ``import`` fail).
"""
from __future__ import annotations

import logging
import sys

import pytest
import yaml
from cryptofeed import FeedHandler
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import TRADES
from cryptofeed.exchanges import EXCHANGE_MAP

from cryptofeed.exchanges.backpack import BackpackConfigError, BackpackFeed
from cryptofeed.exchanges.backpack.hosts.registry import (
    CONFIG_OPTION, ENV_VAR, FEED_FACTORY, BackpackFeedFactory, choose, feed_class, parse_flag,
)
from cryptofeed.exchanges.backpack_ccxt import CcxtBackpackFeed

FH_CONFIG = {'log': {'disabled': True}, 'uvloop': False}


@pytest.fixture(autouse=True)
def no_flag(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv('CRYPTOFEED_CONFIG', raising=False)


def add(native_enabled=None, **fh_config):
    section = {} if native_enabled is None else {'native_enabled': native_enabled}
    handler = FeedHandler(config={**FH_CONFIG, 'backpack': section, **fh_config})
    handler.add_feed('BACKPACK', symbols=['SOL-USDC'], channels=[TRADES])
    return handler.feeds[-1]


@pytest.fixture
def hide_ccxt(monkeypatch):
    for name in [n for n in sys.modules if n == 'ccxt' or n.startswith('ccxt.')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'ccxt', None)
    monkeypatch.setitem(sys.modules, 'ccxt.pro', None)


def test_the_factory_is_what_backpack_names_in_cryptofeed():
    assert EXCHANGE_MAP['BACKPACK'] is FEED_FACTORY


def test_unset_means_the_ccxt_feed():
    feed = add()
    assert type(feed) is CcxtBackpackFeed and feed.id == 'BACKPACK'


@pytest.mark.parametrize('value', ['true', 'TRUE', ' True ', '1', 'yes', 'YES'])
def test_env_true_means_native(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    assert type(add()) is BackpackFeed


@pytest.mark.parametrize('value', ['false', 'False', '0', 'no', 'NO'])
def test_env_false_means_ccxt(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    assert type(add()) is CcxtBackpackFeed


@pytest.mark.parametrize('value, expected', [(True, BackpackFeed), (False, CcxtBackpackFeed), ('yes', BackpackFeed),
                                             ('No', CcxtBackpackFeed), (1, BackpackFeed), (0, CcxtBackpackFeed)])
def test_config_option_chooses(value, expected):
    assert type(add(native_enabled=value)) is expected


def test_the_environment_wins_over_the_config(monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'false')
    assert type(add(native_enabled=True)) is CcxtBackpackFeed
    monkeypatch.setenv(ENV_VAR, 'true')
    assert type(add(native_enabled=False)) is BackpackFeed


def test_an_empty_environment_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv(ENV_VAR, '  ')
    assert type(add(native_enabled=True)) is BackpackFeed
    assert type(add()) is CcxtBackpackFeed


def test_each_handler_chooses_by_its_own_config():
    native = add(native_enabled=True)
    ccxt_feed = add(native_enabled=False)
    assert (type(native), type(ccxt_feed)) == (BackpackFeed, CcxtBackpackFeed)


def test_a_yaml_config_file_chooses(tmp_path):
    path = tmp_path / 'config.yaml'
    path.write_text(yaml.safe_dump({'log': {'disabled': True}, 'backpack': {'native_enabled': True}}))
    handler = FeedHandler(config=str(path))
    handler.add_feed('BACKPACK', symbols=['SOL-USDC'], channels=[TRADES])
    assert type(handler.feeds[0]) is BackpackFeed


def test_the_cryptofeed_config_env_file_is_read_when_the_factory_gets_no_config(monkeypatch, tmp_path):
    path = tmp_path / 'config.yaml'
    path.write_text(yaml.safe_dump({'backpack': {'native_enabled': 'yes'}}))
    monkeypatch.setenv('CRYPTOFEED_CONFIG', str(path))
    assert choose(None, {}).native is True


def test_invalid_env_value_names_the_variable_and_the_accepted_values(monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'maybe')
    with pytest.raises(BackpackConfigError) as err:
        add()
    message = str(err.value)
    assert ENV_VAR in message and "'maybe'" in message
    for word in ('true', '1', 'yes', 'false', '0', 'no'):
        assert word in message


def test_invalid_config_value_names_the_option(monkeypatch):
    with pytest.raises(BackpackConfigError, match=r'backpack\.native_enabled has an invalid value 2'):
        add(native_enabled=2)
    with pytest.raises(BackpackConfigError, match=CONFIG_OPTION):
        add(native_enabled='on')


def test_an_invalid_config_value_is_not_read_when_the_environment_decides(monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'true')
    assert type(add(native_enabled='garbage')) is BackpackFeed


def test_ccxt_missing_says_what_to_install_or_which_flag_to_set(hide_ccxt):
    with pytest.raises(BackpackConfigError) as err:
        add()
    message = str(err.value)
    assert "cryptofeed-backpack[ccxt]" in message and ENV_VAR in message
    with pytest.raises(BackpackConfigError, match=r'cryptofeed-backpack\[ccxt\]'):
        CcxtBackpackFeed(symbols=['SOL-USDC'], channels=[TRADES])


def test_ccxt_missing_does_not_matter_to_the_native_choice(hide_ccxt, monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'yes')
    assert type(add()) is BackpackFeed


def test_the_choice_is_logged_once_at_info(caplog):
    factory = BackpackFeedFactory(environ={})
    with caplog.at_level(logging.INFO, logger=package_log.root()):
        for _ in range(3):
            factory(config={'backpack': {'native_enabled': True}}, symbols=['SOL-USDC'], channels=[TRADES])
        factory(config={'backpack': {}}, symbols=['SOL-USDC'], channels=[TRADES])
    lines = [r for r in caplog.records if 'using' in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    assert 'using BackpackFeed (backpack.native_enabled=True)' in lines[0].getMessage()
    assert 'using CcxtBackpackFeed' in lines[1].getMessage() and 'unset' in lines[1].getMessage()


def test_parse_flag_is_pure_and_strict():
    assert parse_flag(' Yes', 'X') is True and parse_flag('0', 'X') is False and parse_flag(False, 'X') is False
    for bad in ('', 'y', 'on', 2, None, 1.0):
        with pytest.raises(BackpackConfigError, match='^X has an invalid value'):
            parse_flag(bad, 'X')


def test_choose_reads_every_form_of_config():
    assert choose({'backpack': {'native_enabled': 'true'}}, {}).native
    assert choose({'native_enabled': 'true', 'rest_url': 'http://127.0.0.1:1'}, {}).native  # an options dict
    assert not choose({'backpack': None}, {}).native
    assert choose(None, {ENV_VAR: 'true'}).source == f'{ENV_VAR}=true'


def test_feed_class_and_the_symbol_helpers_follow_the_choice():
    assert feed_class(True) is BackpackFeed and feed_class(False) is CcxtBackpackFeed
    assert BackpackFeedFactory(environ={ENV_VAR: '1'}).resolve() is BackpackFeed
    assert BackpackFeedFactory(environ={}).resolve() is CcxtBackpackFeed
    # cryptofeed's Symbols.load_all() calls .symbols() on every EXCHANGE_MAP entry: both classes have it.
    assert callable(FEED_FACTORY.symbols) and CcxtBackpackFeed.symbols.__func__ is BackpackFeed.symbols.__func__
