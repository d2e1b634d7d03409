"""rest.py, the parts that need no server: the circuit breaker, construction."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient, CircuitBreaker

API = 'https://api.backpack.exchange'


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY'):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# -- circuit breaker -------------------------------------------------------------------------

def test_breaker_opens_after_consecutive_failures_and_half_opens_after_the_timeout():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=30, clock=clock)
    assert breaker.state == 'closed'
    assert breaker.record_failure() is False
    assert breaker.record_failure() is False
    assert breaker.allow()
    assert breaker.record_failure() is True
    assert breaker.state == 'open' and breaker.opens == 1
    assert not breaker.allow()
    clock.now += 29.9
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state == 'half-open'
    assert breaker.allow()            # the one trial
    assert not breaker.allow()        # nobody else while it is in flight
    breaker.record_success()
    assert breaker.state == 'closed' and breaker.failures == 0
    assert breaker.allow() and breaker.allow()


def test_failed_trial_reopens_for_a_full_timeout():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    assert breaker.record_failure() is True
    assert breaker.state == 'open' and breaker.opens == 2
    clock.now += 9
    assert not breaker.allow()


def test_a_success_resets_the_consecutive_count():
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == 'closed'


def test_released_trial_slot_can_be_taken_again():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_breaker_rejects_nonsense():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_timeout_s=-1)


# -- construction ----------------------------------------------------------------------------

def test_constructor_does_no_io_and_needs_no_event_loop():
    client = BackpackRestClient(API)
    assert client.session is None
    assert client.proxy is None


@pytest.mark.parametrize('proxy', ['ftp://p:21', 'socks5://', 'gopher://x:1', 'socks4://p:1080'])
def test_unsupported_proxy_is_a_config_error(proxy):
    with pytest.raises(BackpackConfigError, match='unsupported proxy'):
        BackpackRestClient(API, proxy=proxy)


def test_malformed_proxy_port_is_a_config_error_that_hides_the_password():
    with pytest.raises(BackpackConfigError, match='not a valid proxy URL') as info:
        BackpackRestClient(API, proxy='http://user:pa/ss@proxy:notaport')
    assert 'pa/ss' not in str(info.value)


def test_bare_host_port_proxy_is_taken_as_http():
    assert BackpackRestClient(API, proxy='proxy.internal:3128').proxy == 'http://proxy.internal:3128'


def test_socks_proxy_and_injected_session_do_not_mix():
    session = object()   # the constructor only stores it
    with pytest.raises(BackpackConfigError, match='injected session'):
        BackpackRestClient(API, session=session, proxy='socks5://127.0.0.1:1080')
    assert BackpackRestClient(API, session=session, proxy='http://127.0.0.1:3128').proxy == 'http://127.0.0.1:3128'


def test_socks_proxy_from_the_environment_defers_to_an_injected_session(monkeypatch):
    monkeypatch.setenv('ALL_PROXY', 'socks5://127.0.0.1:1080')
    assert BackpackRestClient(API, session=object()).proxy is None
    assert BackpackRestClient(API).proxy == 'socks5://127.0.0.1:1080'


def test_repr_hides_proxy_credentials():
    client = BackpackRestClient(API, proxy='socks5://user:hunter2@proxy.internal:1080')
    text = repr(client)
    assert 'hunter2' not in text and 'user' not in text
    assert 'proxy.internal:1080' in text


@pytest.mark.parametrize('kwargs', [
    dict(timeout_s=0), dict(max_retries=-1), dict(backoff_base_s=0), dict(backoff_base_s=5, backoff_max_s=1),
])
def test_invalid_settings_are_config_errors(kwargs):
    with pytest.raises(BackpackConfigError):
        BackpackRestClient(API, **kwargs)


def test_base_url_must_be_http():
    with pytest.raises(BackpackConfigError):
        BackpackRestClient('wss://ws.backpack.exchange')


def test_from_config_reads_the_documented_attribute_names():
    signer = BackpackSigner(bytes(range(32)))
    cfg = SimpleNamespace(
        rest_url='http://127.0.0.1:9/', request_timeout_s=3.5, max_retries=2, retry_backoff_base_s=0.1,
        retry_backoff_max_s=2.0, rest_proxy='socks5h://127.0.0.1:1080', ssl_context=lambda: None,
        signer=lambda: signer)
    client = BackpackRestClient.from_config(cfg)
    assert client.base_url == 'http://127.0.0.1:9'
    assert (client.timeout_s, client.max_retries, client.backoff_base_s, client.backoff_max_s) == (3.5, 2, 0.1, 2.0)
    assert client.proxy == 'socks5h://127.0.0.1:1080'
    assert client.signer is signer
    assert client.session is None


def test_from_config_does_not_second_guess_the_configs_proxy_decision(monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:3128')
    cfg = SimpleNamespace(
        rest_url=API, request_timeout_s=10, max_retries=5, retry_backoff_base_s=0.25, retry_backoff_max_s=10,
        rest_proxy=None, ssl_context=lambda: None, signer=lambda: None)   # e.g. NO_PROXY matched in the config
    assert BackpackRestClient.from_config(cfg).proxy is None
    assert BackpackRestClient(API).proxy == 'http://127.0.0.1:3128'


def test_from_config_with_a_real_backpack_config(monkeypatch):
    from cryptofeed.exchanges.backpack.core.config import BackpackConfig
    cfg = BackpackConfig(rest_url='http://127.0.0.1:9000', ws_url='ws://127.0.0.1:9000', max_retries=2,
                         proxies={'rest': 'socks5h://127.0.0.1:1080'})
    client = BackpackRestClient.from_config(cfg)
    assert client.base_url == 'http://127.0.0.1:9000'
    assert client.max_retries == 2 and client.proxy == 'socks5h://127.0.0.1:1080'
    assert client.signer is None and client.session is None
