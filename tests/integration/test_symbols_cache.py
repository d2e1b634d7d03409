"""``BackpackFeed.symbols()`` / ``info()`` cache the markets per REST URL, for ``symbol_cache_ttl_s``."""
from __future__ import annotations

import time

import pytest
import yaml
from cryptofeed.symbols import Symbols

from cryptofeed.exchanges.backpack import BackpackFeed
from cryptofeed.exchanges.backpack.core.errors import BackpackError
from cryptofeed.exchanges.backpack.hosts import symbols as host_symbols

from tests.integration.sim_thread import SimulatorThread


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts and ends with nothing cached (the caches are process-wide)."""
    def clear():
        getattr(host_symbols, '_MARKETS', {}).clear()
        Symbols.data.pop(BackpackFeed.id, None)
    clear()
    yield
    clear()


def _config(sim, **extra) -> dict:
    return {'rest_url': sim.rest_url, 'ws_url': sim.ws_url, **extra}


def test_another_endpoint_is_asked_not_answered_from_the_first_ones_cache(tmp_path, monkeypatch):
    with SimulatorThread(markets=['SOL_USDC', 'SOL_USDC_PERP'], rate=0) as (first, _), \
            SimulatorThread(markets=['ETH_USDC', 'BTC_USDC'], rate=0) as (second, _):
        assert sorted(BackpackFeed.symbols(config=_config(first))) == ['SOL-USDC', 'SOL-USDC-PERP']
        assert sorted(BackpackFeed.symbols(config=_config(second))) == ['BTC-USDC', 'ETH-USDC']
        assert sorted(BackpackFeed.info(config=_config(first))['symbols']) == ['SOL-USDC', 'SOL-USDC-PERP']
        # symbols() without a config asks the default endpoint (here, the one CRYPTOFEED_CONFIG names).
        path = tmp_path / 'config.yaml'
        path.write_text(yaml.safe_dump({'backpack': _config(second)}))
        monkeypatch.setenv('CRYPTOFEED_CONFIG', str(path))
        assert sorted(BackpackFeed.symbols()) == ['BTC-USDC', 'ETH-USDC']
        assert sorted(BackpackFeed.info()['symbols']) == ['BTC-USDC', 'ETH-USDC']


def test_the_cache_lives_symbol_cache_ttl_s():
    with SimulatorThread(markets=['SOL_USDC'], rate=0) as (sim, run):
        assert BackpackFeed.symbols(config=_config(sim, max_retries=0)) == ['SOL-USDC']
        # From now on the exchange fails the next request for the markets.
        run(lambda: sim.inject({'fault': 'http_status', 'status': 500, 'count': 1, 'path': '/api/v1/markets'}))
        # Within the cache lifetime (900 s by default): answered from the cache, nothing asked.
        assert BackpackFeed.symbols(config=_config(sim, max_retries=0)) == ['SOL-USDC']
        # A config whose lifetime is over (the entry is older than 1 ms) asks again and meets the failure.
        time.sleep(0.01)
        with pytest.raises(BackpackError):
            BackpackFeed.symbols(config=_config(sim, max_retries=0, symbol_cache_ttl_s=0.001))
        # refresh=True asks whatever the lifetime (the fault is spent: it answers).
        assert BackpackFeed.symbols(refresh=True, config=_config(sim)) == ['SOL-USDC']
