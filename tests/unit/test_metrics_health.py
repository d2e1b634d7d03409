"""metrics.py and health.py: counters, windowed events and the health verdict, on a fake clock."""
from __future__ import annotations

import dataclasses
import json

import pytest

from cryptofeed.exchanges.backpack.core.ops.health import BackpackHealthReport, evaluate_health
from cryptofeed.exchanges.backpack.core.ops.metrics import EVENT_KINDS, FeedMetrics


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def metrics(clock):
    return FeedMetrics(clock=clock)


def running(metrics, clock, seconds=100.0):
    """A feed that has been up for ``seconds`` and just received a trade."""
    clock.advance(seconds)
    metrics.on_message('trades')


def test_message_counters_and_last_message_age(metrics, clock):
    metrics.on_message('trades')
    metrics.on_message('trades')
    metrics.on_message('l2_book', when=clock.now - 1.5)
    clock.advance(2.0)
    snap = metrics.snapshot()
    assert snap['messages'] == {'trades': 2, 'l2_book': 1}
    assert snap['messages_total'] == 3
    assert snap['last_message_age_s'] == pytest.approx(3.5)
    assert snap['uptime_s'] == pytest.approx(2.0)


def test_snapshot_is_json_serialisable_and_has_every_counter(metrics, clock):
    metrics.expect_books(['SOL_USDC', 'BTC_USDC_PERP'])
    metrics.on_snapshot('SOL_USDC')
    for hook in (metrics.on_parse_error, metrics.on_server_error, metrics.on_unknown_stream,
                 metrics.on_reconnect, metrics.on_gap, metrics.on_trade_gap_unrecovered,
                 metrics.on_rest_failure, metrics.on_callback_error, metrics.on_connect_failure,
                 lambda: metrics.on_auth_failure('key rejected')):
        hook()
    metrics.on_resync('BTC_USDC_PERP')
    metrics.on_dropped(3)
    metrics.on_backfilled_trades(7)
    clock.advance(4)
    snap = json.loads(json.dumps(metrics.snapshot(window_s=60)))
    assert snap['last_message_age_s'] is None
    assert {k: snap[k] for k in ('dropped', 'parse_errors', 'server_errors', 'unknown_streams', 'reconnects',
                                 'gaps', 'resyncs', 'backfilled_trades', 'trade_gaps_unrecovered',
                                 'rest_failures')} == {
        'dropped': 3, 'parse_errors': 1, 'server_errors': 1, 'unknown_streams': 1, 'reconnects': 1, 'gaps': 1,
        'resyncs': 1, 'backfilled_trades': 7, 'trade_gaps_unrecovered': 1, 'rest_failures': 1}
    assert 'rest_retries' not in snap   # REST retries are counted once, by the client (metrics_snapshot()['rest'])
    assert snap['snapshot_age_s'] == {'BTC_USDC_PERP': None, 'SOL_USDC': 4.0}
    assert snap['books_out_of_sync'] == ['BTC_USDC_PERP']
    assert snap['window_s'] == 60.0
    assert set(snap['recent_events']) == set(EVENT_KINDS)
    assert all(count == 1 for count in snap['recent_events'].values())
    assert (snap['auth_failures'], snap['auth_error'], snap['backfilled_fills'], snap['reconciliation_corrections'],
            snap['last_private_message_age_s']) == (1, 'key rejected', 0, 0, None)


def test_auth_error_makes_the_feed_unhealthy_until_cleared(metrics, clock):
    metrics.on_message('trades')
    metrics.on_auth_failure('expired: clock 20000 ms behind')
    report = evaluate_health(metrics, now=clock())
    assert report.status == 'unhealthy'
    assert 'private channels down: authentication failed: expired: clock 20000 ms behind' in report.reasons
    metrics.on_auth_ok()
    assert evaluate_health(metrics, now=clock()).status == 'healthy'


def test_resync_marks_the_book_out_of_sync_until_the_next_snapshot(metrics, clock):
    metrics.on_snapshot('SOL_USDC')
    metrics.on_resync('SOL_USDC')
    assert metrics.snapshot()['books_out_of_sync'] == ['SOL_USDC']
    clock.advance(1)
    metrics.on_snapshot('SOL_USDC')
    snap = metrics.snapshot()
    assert snap['books_out_of_sync'] == []
    assert snap['snapshot_age_s'] == {'SOL_USDC': 0.0}


def test_recent_events_count_only_inside_the_window(metrics, clock):
    metrics.on_reconnect()
    clock.advance(100)
    metrics.on_reconnect()
    metrics.on_gap()
    clock.advance(100)
    assert metrics.recent_events(150)['reconnect'] == 1
    assert metrics.recent_events(250)['reconnect'] == 2
    assert metrics.recent_events(50)['gap'] == 0
    start = clock.now - 200
    assert metrics.event_log(250) == [(start, 'reconnect'), (start + 100, 'gap'), (start + 100, 'reconnect')]
    # Lifetime counters are not windowed.
    assert metrics.snapshot(window_s=10)['reconnects'] == 2


def test_event_log_is_bounded_per_kind(clock):
    metrics = FeedMetrics(clock=clock, event_capacity=5)
    metrics.on_reconnect()
    for _ in range(50):
        metrics.on_parse_error()
    counts = metrics.recent_events(60)
    assert counts['parse_error'] == 5          # saturates at the capacity
    assert counts['reconnect'] == 1            # a flood of one kind does not evict another
    assert metrics.parse_errors == 50


def test_fresh_feed_is_healthy(metrics, clock):
    running(metrics, clock)
    report = evaluate_health(metrics, now=clock.now)
    assert report == BackpackHealthReport('healthy', (), clock.now)
    assert report.ok


def test_silence_longer_than_the_limit_is_unhealthy(metrics, clock):
    running(metrics, clock)
    clock.advance(61)
    report = evaluate_health(metrics, now=clock.now, max_message_age_s=60)
    assert report.status == 'unhealthy'
    assert report.reasons == ('no message for 61 s (limit 60 s)',)


def test_never_receiving_anything_is_unhealthy_after_the_grace_period(metrics, clock):
    clock.advance(10)
    assert evaluate_health(metrics, now=clock.now, max_message_age_s=5, startup_grace_s=30).status == 'healthy'
    clock.advance(30)
    report = evaluate_health(metrics, now=clock.now, max_message_age_s=5, startup_grace_s=30)
    assert report.status == 'unhealthy'
    assert 'no message received in 40 s since start' in report.reasons


def test_too_many_reconnects_in_the_window_is_degraded_and_names_the_count(metrics, clock):
    running(metrics, clock)
    for _ in range(4):
        metrics.on_reconnect()
    report = evaluate_health(metrics, now=clock.now, window_s=300, max_reconnects=3)
    assert report.status == 'degraded'
    assert report.reasons == ('4 reconnects in the last 300 s (limit 3)',)
    assert evaluate_health(metrics, now=clock.now, max_reconnects=4).status == 'healthy'


def test_an_old_hiccup_ages_out_of_the_window(metrics, clock):
    running(metrics, clock)
    for _ in range(6):
        metrics.on_gap()
        metrics.on_parse_error()
    for _ in range(11):
        metrics.on_parse_error()
    assert evaluate_health(metrics, now=clock.now).status == 'degraded'
    # Five minutes and one second later, with data still flowing, the burst no longer counts.
    clock.advance(301)
    metrics.on_message('trades')
    report = evaluate_health(metrics, now=clock.now, window_s=300)
    assert report.status == 'healthy', report.reasons
    assert metrics.gaps == 6   # lifetime counters still remember it


def test_book_without_snapshot_is_degraded_and_named(metrics, clock):
    metrics.expect_books(['SOL_USDC', 'ETH_USDC'])
    metrics.on_snapshot('ETH_USDC')
    running(metrics, clock)
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == 'degraded'
    assert report.reasons == ('book SOL_USDC out of sync for 100 s: no snapshot applied',)


def test_a_book_reset_by_a_reconnect_counts_as_out_of_sync_after_the_grace(metrics, clock):
    metrics.expect_books(['SOL_USDC'])
    metrics.on_snapshot('SOL_USDC')
    running(metrics, clock)
    metrics.on_book_reset('SOL_USDC')          # the connection restarted: no resync event, no gap
    assert metrics.resyncs == 0
    clock.advance(10)
    metrics.on_message('trades')
    assert evaluate_health(metrics, now=clock.now).ok                    # within the 15 s grace
    clock.advance(80)
    metrics.on_message('trades')
    report = evaluate_health(metrics, now=clock.now)
    assert report.reasons == ('book SOL_USDC out of sync for 90 s: no snapshot applied',)
    metrics.on_snapshot('SOL_USDC')
    assert evaluate_health(metrics, now=clock.now).ok


@pytest.mark.parametrize('lag, status', [(1.0, 'healthy'), (6.0, 'degraded'), (59.0, 'unhealthy')])
def test_consumer_lag_is_judged_from_exchange_time_against_receipt_time(metrics, clock, lag, status):
    running(metrics, clock)
    metrics.delivered_at = metrics.last_message_time          # the newest event delivered: received then,
    metrics.exchange_time = metrics.delivered_at - lag         # stamped by the exchange lag seconds earlier
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == status
    assert metrics.snapshot()['consumer_lag_s'] == pytest.approx(lag)
    if status != 'healthy':
        assert f'consumer {lag:.1f} s behind the exchange' in report.reasons[0]


def test_a_connection_that_gave_up_is_unhealthy_and_failed_attempts_degrade(metrics, clock):
    running(metrics, clock)
    for _ in range(3):
        metrics.on_connect_failure()
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == 'degraded' and '3 failed connection attempts' in report.reasons[0]
    metrics.on_connection_given_up('BACKPACK.ws.1')
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == 'unhealthy'
    assert 'connection BACKPACK.ws.1 gave up' in ' '.join(report.reasons)


def test_one_callback_error_degrades_until_it_ages_out(metrics, clock):
    running(metrics, clock)
    metrics.on_callback_error()
    assert '1 exceptions in user callbacks' in evaluate_health(metrics, now=clock.now).reasons[0]
    clock.advance(301)
    metrics.on_message('trades')
    assert evaluate_health(metrics, now=clock.now).ok


def test_missing_snapshot_during_startup_grace_is_not_reported(metrics, clock):
    metrics.expect_books(['SOL_USDC'])
    running(metrics, clock, seconds=5)
    assert evaluate_health(metrics, now=clock.now, startup_grace_s=30).status == 'healthy'


def test_old_snapshot_is_degraded_only_when_a_limit_is_set(metrics, clock):
    metrics.on_snapshot('SOL_USDC')
    running(metrics, clock, seconds=700)
    assert evaluate_health(metrics, now=clock.now).status == 'healthy'
    report = evaluate_health(metrics, now=clock.now, max_snapshot_age_s=600)
    assert report.status == 'degraded'
    assert report.reasons == ('book SOL_USDC snapshot is 700 s old (limit 600 s)',)


def test_unhealthy_wins_over_degraded_and_all_reasons_are_kept(metrics, clock):
    running(metrics, clock)
    for _ in range(6):
        metrics.on_rest_failure()
    metrics.on_trade_gap_unrecovered()
    clock.advance(120)
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == 'unhealthy'
    assert report.reasons == (
        'no message for 120 s (limit 60 s)',
        '6 REST failures in the last 300 s (limit 5)',
        '1 unrecovered trade gaps in the last 300 s (limit 0)',
    )


def test_a_snapshot_dict_gives_the_same_verdict_and_is_aged_to_now(metrics, clock):
    running(metrics, clock)
    for _ in range(4):
        metrics.on_reconnect()
    snap = json.loads(json.dumps(metrics.snapshot(window_s=300)))
    assert evaluate_health(snap, now=clock.now) == evaluate_health(metrics, now=clock.now)
    later = evaluate_health(snap, now=clock.now + 90)
    assert later.status == 'unhealthy'
    assert 'no message for 90 s (limit 60 s)' in later.reasons
    with pytest.raises(ValueError, match='window_s=60'):
        evaluate_health(snap, now=clock.now, window_s=60)


def test_report_is_frozen_and_validates_status(clock):
    report = BackpackHealthReport('degraded', ('x',), 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = 'healthy'
    assert report.as_dict() == {'status': 'degraded', 'reasons': ['x'], 'checked_at': 1.0}
    with pytest.raises(ValueError):
        BackpackHealthReport('fine', (), 1.0)


def test_a_failing_book_snapshot_is_named_at_once_and_before_the_counts(metrics, clock):
    metrics.expect_books(['SOL_USDC', 'ETH_USDC'])
    metrics.on_snapshot('SOL_USDC')
    metrics.on_snapshot('ETH_USDC')
    running(metrics, clock)
    metrics.on_book_reset('SOL_USDC')                       # a reconnect; then the snapshot fails
    clock.advance(1)
    for _ in range(6):
        metrics.on_snapshot_failure('SOL_USDC', 'Backpack is under maintenance or unavailable: HTTP 503')
    metrics.on_snapshot_failure('SOL_USDC', 'circuit open after repeated failures; not sending GET /api/v1/depth')
    metrics.on_message('trades')
    metrics.exchange_time, metrics.delivered_at = clock.now - 0.01, clock.now
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == 'degraded'
    assert report.reasons[0] == ('book SOL_USDC out of sync for 1 s: its REST depth snapshot failed 7 times in a '
                                 'row (last: circuit open after repeated failures; not sending GET /api/v1/depth); '
                                 'retrying')
    assert report.reasons[1] == '7 REST failures in the last 300 s (limit 5)'
    assert metrics.rest_failures == 7
    assert metrics.snapshot()['snapshot_failures'] == {
        'SOL_USDC': {'failures': 7, 'error': 'circuit open after repeated failures; not sending GET /api/v1/depth'}}
    metrics.on_snapshot('SOL_USDC')                         # in sync again: the book is no longer named
    assert metrics.snapshot()['snapshot_failures'] == {}
    assert not any('book' in reason for reason in evaluate_health(metrics, now=clock.now).reasons)


def test_a_failing_first_snapshot_is_reported_during_the_startup_grace(metrics, clock):
    metrics.expect_books(['SOL_USDC'])
    clock.advance(2)
    metrics.on_message('trades')
    assert evaluate_health(metrics, now=clock.now).ok                     # no snapshot yet: expected
    metrics.on_snapshot_failure('SOL_USDC', 'HTTP 503')
    report = evaluate_health(metrics, now=clock.now)
    assert report.status == 'degraded'
    assert report.reasons == ('book SOL_USDC out of sync for 2 s: its REST depth snapshot failed 1 time in a row '
                              '(last: HTTP 503); retrying',)
    metrics.forget_book('SOL_USDC')
    assert evaluate_health(metrics, now=clock.now).ok


def test_the_lag_is_that_of_the_newest_event_delivered_not_of_the_newest_frame(metrics, clock):
    running(metrics, clock)
    metrics.exchange_time, metrics.delivered_at = clock.now - 0.2, clock.now   # delivered 0.2 s after it happened
    clock.advance(30)
    metrics.on_message('l2_book')          # frames keep arriving, none delivered (a book out of sync)
    assert metrics.snapshot()['consumer_lag_s'] == pytest.approx(0.2)
    assert evaluate_health(metrics, now=clock.now).ok
    metrics.delivered_at = str(clock.now)  # a replay hands receipt times as text
    assert metrics.snapshot()['consumer_lag_s'] == pytest.approx(30.2)


def test_a_feed_that_stopped_itself_is_unhealthy_and_unlisted_symbols_degrade_it():
    from cryptofeed.exchanges.backpack.core.ops.health import evaluate_health
    from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics
    metrics = FeedMetrics(clock=lambda: 1000.0)
    metrics.on_message('trades', 1000.0)
    metrics.unlisted['SOL-USD'] = 'SOL-USD is not listed by Backpack (/api/v1/markets): did you mean SOL-USDC?'
    report = evaluate_health(metrics, now=1000.0)
    assert report.status == 'degraded'
    assert report.reasons == ('not subscribed: SOL-USD is not listed by Backpack (/api/v1/markets): did you mean '
                              'SOL-USDC?',)
    metrics.stopped = 'none of the requested symbols is listed: SOL-USD ...'
    snapshot = metrics.snapshot()
    assert snapshot['stopped'] == metrics.stopped and snapshot['unlisted_symbols'] == dict(metrics.unlisted)
    report = evaluate_health(snapshot, now=1001.0)
    assert report.status == 'unhealthy' and report.reasons[0] == f'feed stopped: {metrics.stopped}'


def test_listing_and_runtime_counters_are_in_the_snapshot():
    from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics
    metrics = FeedMetrics()
    metrics.listings_added, metrics.listings_removed, metrics.symbols_added, metrics.symbols_removed = 3, 1, 2, 4
    metrics.subscribed_symbols = 7
    snapshot = metrics.snapshot()
    assert {k: snapshot[k] for k in ('listings_added', 'listings_removed', 'symbols_added', 'symbols_removed',
                                     'subscribed_symbols')} == {'listings_added': 3, 'listings_removed': 1,
                                                                'symbols_added': 2, 'symbols_removed': 4,
                                                                'subscribed_symbols': 7}
    assert snapshot['stopped'] is None and snapshot['unlisted_symbols'] == {}


def test_a_report_reads_as_its_status_time_and_reasons():
    report = BackpackHealthReport('degraded', ('3 reconnects in the last 300 s (limit 3)', 'book X out of sync'),
                                  1796544000.25)
    assert str(report) == ('degraded (checked 2026-12-06T08:00:00.250+00:00)\n'
                           '  - 3 reconnects in the last 300 s (limit 3)\n  - book X out of sync')
    assert str(BackpackHealthReport('healthy', (), 1796544000.0)) == 'healthy (checked 2026-12-06T08:00:00.000+00:00)'
