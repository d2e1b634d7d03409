"""``core/ops/prometheus.py`` without a network: the snapshot -> metric families mapping, the
``/healthz`` body, and the ``metrics_port`` / ``metrics_host`` options."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cryptofeed.exchanges.backpack import BackpackConfig, BackpackConfigError
from cryptofeed.exchanges.backpack.core.ops.health import BackpackHealthReport
from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics
from cryptofeed.exchanges.backpack.core.ops.prometheus import BackpackCollector, health_body


class FakeFeed:
    """What the collector reads of a feed: an id, ``metrics_snapshot()`` and ``health()``."""

    id = 'BACKPACK'

    def __init__(self, snapshot: dict, status: str = 'healthy', reasons=()):
        self.snapshot = snapshot
        self.report = BackpackHealthReport(status, tuple(reasons), 1_800_000_000.5)

    def metrics_snapshot(self) -> dict:
        return self.snapshot

    def health(self) -> BackpackHealthReport:
        return self.report


def snapshot(**extra) -> dict:
    metrics = FeedMetrics(clock=lambda: 1_800_000_000.0)
    metrics.expect_books(['SOL-USDC', 'ETH-USDC'])
    metrics.on_snapshot('SOL-USDC')
    for _ in range(3):
        metrics.on_message('l2_book')
    metrics.on_message('trades')
    metrics.on_reconnect()
    metrics.on_connect_failure()
    metrics.on_snapshot_failure('ETH-USDC', 'HTTP 503')
    metrics.exchange_time, metrics.delivered_at = 1_799_999_999.5, 1_799_999_999.75
    snap = metrics.snapshot()
    snap['books'] = {'SOL-USDC': {'state': 'synced', 'last_update_id': 42, 'applied': 7, 'gaps': 0},
                     'ETH-USDC': {'state': 'buffering', 'last_update_id': None, 'applied': 0, 'gaps': 1}}
    snap['trades'] = {'SOL-USDC': {'last_id': 99, 'duplicates': 2, 'gaps': 0}}
    snap['drops'] = {'malformed': 1, 'unknown_stream': 0}
    snap['rest'] = {'requests': 5, 'retries': 1, 'failures': 1, 'failures_by_status': {503: 1},
                    'breaker_opens': 0, 'fail_fast': 0, 'last_status': 503, 'last_latency_s': 0.01}
    snap['account'] = {'subscribes': 2, 'duplicate_fills': 1, 'open_orders': 3, 'positions': 1, 'fills_seen': 4,
                       'clock_offset_ms': -1500}
    snap.update(extra)
    return snap


def scrape(collector: BackpackCollector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_every_counter_gauge_and_per_symbol_state_of_the_snapshot():
    samples = scrape(BackpackCollector([FakeFeed(snapshot())]))
    assert value(samples, 'backpack_messages_total', feed='BACKPACK', channel='l2_book') == 3
    assert value(samples, 'backpack_messages_total', feed='BACKPACK', channel='trades') == 1
    assert value(samples, 'backpack_reconnects_total', feed='BACKPACK') == 1
    assert value(samples, 'backpack_connect_failures_total', feed='BACKPACK') == 1
    assert value(samples, 'backpack_rest_failures_total', feed='BACKPACK') == 1
    for name in ('backpack_parse_errors_total', 'backpack_sequence_gaps_total', 'backpack_book_resyncs_total',
                 'backpack_callback_errors_total', 'backpack_dropped_frames_total', 'backpack_auth_failures_total'):
        assert value(samples, name, feed='BACKPACK') == 0, name
    assert value(samples, 'backpack_consumer_lag_seconds', feed='BACKPACK') == 0.25
    assert value(samples, 'backpack_book_synced', feed='BACKPACK', symbol='SOL-USDC') == 1
    assert value(samples, 'backpack_book_synced', feed='BACKPACK', symbol='ETH-USDC') == 0
    assert value(samples, 'backpack_book_last_update_id', feed='BACKPACK', symbol='SOL-USDC') == 42
    assert ('backpack_book_last_update_id', (('feed', 'BACKPACK'), ('symbol', 'ETH-USDC'))) not in samples
    assert value(samples, 'backpack_book_out_of_sync_seconds', feed='BACKPACK', symbol='SOL-USDC') == 0
    assert value(samples, 'backpack_book_applied_total', feed='BACKPACK', symbol='SOL-USDC') == 7
    assert value(samples, 'backpack_book_gaps_total', feed='BACKPACK', symbol='ETH-USDC') == 1
    assert value(samples, 'backpack_book_snapshot_age_seconds', feed='BACKPACK', symbol='SOL-USDC') == 0
    assert value(samples, 'backpack_trade_last_id', feed='BACKPACK', symbol='SOL-USDC') == 99
    assert value(samples, 'backpack_trade_duplicates_total', feed='BACKPACK', symbol='SOL-USDC') == 2
    assert value(samples, 'backpack_router_drops_total', feed='BACKPACK', connection='public',
                 reason='malformed') == 1
    assert value(samples, 'backpack_rest_requests_total', feed='BACKPACK') == 5
    assert value(samples, 'backpack_rest_failures_by_status_total', feed='BACKPACK', status='503') == 1
    assert value(samples, 'backpack_account_catchups_total', feed='BACKPACK') == 2
    assert value(samples, 'backpack_account_clock_offset_seconds', feed='BACKPACK') == -1.5
    assert value(samples, 'backpack_recent_events', feed='BACKPACK', kind='rest_failure') == 1
    assert value(samples, 'backpack_health_status', feed='BACKPACK') == 0


def test_a_counter_the_snapshot_gains_later_is_exported_under_its_own_name():
    samples = scrape(BackpackCollector([FakeFeed(snapshot(listings_added=3, auth_error='expired: ...'))]))
    assert value(samples, 'backpack_listings_added_total', feed='BACKPACK') == 3
    assert value(samples, 'backpack_auth_error', feed='BACKPACK') == 1
    assert not [key for key in samples if key[0].startswith(('backpack_taken_at', 'backpack_window_s',
                                                             'backpack_messages_total_total'))]


def test_feeds_get_distinct_labels_and_health_values():
    collector = BackpackCollector()
    first, second = FakeFeed(snapshot()), FakeFeed(snapshot(), 'unhealthy', ['no message for 99 s'])
    assert collector.add(first) == 'BACKPACK'
    assert collector.add(second) == 'BACKPACK-2'
    assert collector.add(first) == 'BACKPACK'            # already collected: same label
    assert collector.add(FakeFeed(snapshot()), name='spot') == 'spot'
    samples = scrape(collector)
    assert value(samples, 'backpack_health_status', feed='BACKPACK-2') == 2
    assert value(samples, 'backpack_health_reasons', feed='BACKPACK-2') == 1
    collector.remove(second)
    assert set(collector.feeds) == {'BACKPACK', 'spot'}


def test_healthz_body_is_the_worst_status_with_prefixed_reasons_and_iso_times():
    ok = BackpackHealthReport('healthy', (), 1_800_000_000.25)
    slow = BackpackHealthReport('degraded', ('6 reconnects in the last 300 s (limit 3)',), 1_800_000_001.0)
    down = BackpackHealthReport('unhealthy', ('no message for 90 s (limit 60 s)',), 1_800_000_002.0)
    status, body = health_body({'BACKPACK': ok, 'BACKPACK-2': slow})
    assert status == 200 and body['status'] == 'degraded'
    assert body['reasons'] == ['BACKPACK-2: 6 reconnects in the last 300 s (limit 3)']
    assert body['feeds']['BACKPACK'] == {'status': 'healthy', 'reasons': [],
                                         'checked_at': '2027-01-15T08:00:00.250+00:00'}
    assert body['checked_at'] == '2027-01-15T08:00:01.000+00:00'
    status, body = health_body({'BACKPACK': ok, 'BACKPACK-2': down})
    assert status == 503 and body['status'] == 'unhealthy'


@pytest.mark.parametrize('options', [dict(metrics_port=0), dict(metrics_port=9108),
                                     dict(metrics_port=65535, metrics_host='0.0.0.0'),
                                     dict(metrics_port=1, metrics_host='::1'), dict(metrics_host='localhost')])
def test_metrics_options_accepted(options):
    config = BackpackConfig(**options)
    assert config.metrics_port == options.get('metrics_port')
    assert config.metrics_host == options.get('metrics_host', '127.0.0.1')


@pytest.mark.parametrize('options, says', [
    (dict(metrics_port=65536), 'metrics_port'), (dict(metrics_port=-1), 'metrics_port'),
    (dict(metrics_port=True), 'metrics_port must be a port number'), (dict(metrics_port='http'), 'metrics_port'),
    (dict(metrics_host='http://0.0.0.0'), 'no scheme, no port'), (dict(metrics_host='127.0.0.1:9108'), 'no port'),
    (dict(metrics_host=' '), 'metrics_host must be'),
])
def test_metrics_options_refused_with_what_to_fix(options, says):
    with pytest.raises(BackpackConfigError, match=says):
        BackpackConfig(**options)
