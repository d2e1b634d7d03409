"""Is the Backpack feed healthy right now? A pure verdict over a recent window of metrics.

Use ``evaluate_health(feed_metrics_or_snapshot, now=...)`` from a health endpoint, a
supervisor or a test. It reads a ``FeedMetrics`` (or the dict its ``snapshot()`` returns) and
returns a ``BackpackHealthReport``:

* ``unhealthy`` -- the feed stopped itself (``stopped``: e.g. none of its symbols is listed),
  no market data for longer than ``max_message_age_s`` (the feed is not delivering anything),
  or the exchange refuses the signature of the private channels (``auth_error``: they deliver
  nothing until it is fixed);
* ``degraded``  -- data flows but something is off in the last ``window_s`` seconds: too many
  reconnects, sequence gaps, resyncs, parse errors, server errors or REST failures, trade gaps
  that could not be backfilled, requested symbols that Backpack does not list, books without a
  snapshot (out of sync) or with a snapshot older than ``max_snapshot_age_s``, a consumer behind
  the exchange;
* ``healthy``   -- none of the above.

Reasons come in order of cause: what makes the feed unhealthy, then books out of sync (a book
whose REST snapshot is failing is named at once, with the error), then the windowed counts,
then the consumer lag (measured only on events that reached the callbacks, so frames buffered
for a book out of sync never pass for a slow consumer).

Only events inside the window count, so an old hiccup ages out instead of marking the feed
degraded forever. During the first ``startup_grace_s`` seconds of uptime a missing first
message or a missing first snapshot is expected and not reported.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple, Union

from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics

__all__ = ['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'BackpackHealthReport', 'evaluate_health']

HEALTHY = 'healthy'
DEGRADED = 'degraded'
UNHEALTHY = 'unhealthy'
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


@dataclass(frozen=True)
class BackpackHealthReport:
    """The verdict: ``status`` is 'healthy', 'degraded' or 'unhealthy'; ``reasons`` say why."""

    status: str
    reasons: Tuple[str, ...]
    checked_at: float

    def __post_init__(self):
        if self.status not in _RANK:
            raise ValueError(f'status must be one of {tuple(_RANK)}, got {self.status!r}')

    @property
    def ok(self) -> bool:
        return self.status == HEALTHY

    def as_dict(self) -> dict:
        return {'status': self.status, 'reasons': list(self.reasons), 'checked_at': self.checked_at}

    def __str__(self) -> str:
        """``healthy (checked 2026-12-06T07:58:00.000+00:00)``, then one ``- reason`` line each."""
        return f'{self.status} (checked {iso_utc(self.checked_at)})' + ''.join(
            f'\n  - {reason}' for reason in self.reasons)


def iso_utc(epoch_s: float) -> str:
    """An epoch time in seconds as ISO 8601 UTC, to the millisecond."""
    return datetime.datetime.fromtimestamp(epoch_s, datetime.timezone.utc).isoformat(timespec='milliseconds')


# (event kind in the snapshot, threshold parameter name, human noun)
_WINDOWED_CHECKS = (
    ('reconnect', 'max_reconnects', 'reconnects'),
    ('gap', 'max_gaps', 'sequence gaps'),
    ('resync', 'max_resyncs', 'book resyncs'),
    ('parse_error', 'max_parse_errors', 'parse errors'),
    ('server_error', 'max_server_errors', 'server errors'),
    ('rest_failure', 'max_rest_failures', 'REST failures'),
    ('trade_gap_unrecovered', 'max_unrecovered_trade_gaps', 'unrecovered trade gaps'),
    ('callback_error', 'max_callback_errors', 'exceptions in user callbacks'),
    ('connect_failure', 'max_connect_failures', 'failed connection attempts'),
)


def evaluate_health(metrics: Union[FeedMetrics, Mapping[str, Any]], *, now: float,
                    window_s: Optional[float] = None,
                    max_message_age_s: float = 60.0,
                    max_snapshot_age_s: Optional[float] = None,
                    max_reconnects: int = 3,
                    max_gaps: int = 5,
                    max_resyncs: int = 5,
                    max_parse_errors: int = 10,
                    max_server_errors: int = 5,
                    max_rest_failures: int = 5,
                    max_unrecovered_trade_gaps: int = 0,
                    max_callback_errors: int = 0,
                    max_connect_failures: int = 2,
                    book_sync_grace_s: float = 15.0,
                    max_consumer_lag_s: float = 5.0,
                    startup_grace_s: float = 30.0) -> BackpackHealthReport:
    """Judge the feed at time ``now`` (same clock as the metrics, Unix seconds).

    Each ``max_*`` count is the number tolerated within the window; one more makes the feed
    degraded. A book out of sync for longer than ``book_sync_grace_s`` is degraded, and at once
    (first of the reasons after the unhealthy ones) while its REST snapshot keeps failing; a consumer
    lag (receipt time minus exchange time of the newest event delivered to callbacks) above
    ``max_consumer_lag_s`` is degraded, above six times that unhealthy; a connection that gave
    up reconnecting is unhealthy. ``max_snapshot_age_s=None`` disables the snapshot-age check (a book kept in sync
    by deltas does not need fresh snapshots).

    ``window_s`` defaults to 300 s for a ``FeedMetrics``. A snapshot dict already holds event
    counts for its own window (``snapshot['window_s']``), so for a dict ``window_s`` must be
    omitted or equal to it; ages in the dict are moved forward by ``now - snapshot['taken_at']``.
    """
    if isinstance(metrics, FeedMetrics):
        snap = metrics.snapshot(now=now, window_s=300.0 if window_s is None else window_s)
        elapsed = 0.0
    else:
        snap = metrics
        if window_s is not None and float(window_s) != float(snap['window_s']):
            raise ValueError(
                f"this snapshot counts events over {snap['window_s']} s, not {window_s} s; "
                f"take the snapshot with window_s={window_s} or pass the FeedMetrics itself")
        elapsed = max(0.0, now - float(snap['taken_at']))
    window = float(snap['window_s'])
    limits = {
        'max_reconnects': max_reconnects, 'max_gaps': max_gaps, 'max_resyncs': max_resyncs,
        'max_parse_errors': max_parse_errors, 'max_server_errors': max_server_errors,
        'max_rest_failures': max_rest_failures, 'max_unrecovered_trade_gaps': max_unrecovered_trade_gaps,
        'max_callback_errors': max_callback_errors, 'max_connect_failures': max_connect_failures,
    }

    status = HEALTHY
    reasons = []

    def flag(level: str, reason: str) -> None:
        nonlocal status
        reasons.append(reason)
        if _RANK[level] > _RANK[status]:
            status = level

    uptime = float(snap['uptime_s']) + elapsed
    starting = uptime < startup_grace_s

    last_age = snap['last_message_age_s']
    if last_age is None:
        if not starting and uptime > max_message_age_s:
            flag(UNHEALTHY, f'no message received in {uptime:.0f} s since start')
    else:
        last_age = float(last_age) + elapsed
        if last_age > max_message_age_s:
            flag(UNHEALTHY, f'no message for {last_age:.0f} s (limit {max_message_age_s:g} s)')

    stopped = snap.get('stopped')
    if stopped:
        flag(UNHEALTHY, f'feed stopped: {stopped}')
    for symbol, reason in sorted((snap.get('unlisted_symbols') or {}).items()):
        flag(DEGRADED, f'not subscribed: {reason}')
    auth_error = snap.get('auth_error')
    if auth_error:
        flag(UNHEALTHY, f'private channels down: authentication failed: {auth_error}')
    for conn_id in snap.get('connections_given_up', ()):
        flag(UNHEALTHY, f'connection {conn_id} gave up: its retries are exhausted and it is not reconnecting')

    # Books first: a book without a snapshot explains the other symptoms (REST failures, resyncs).
    unsynced_books = snap.get('out_of_sync_s', {})
    failing = snap.get('snapshot_failures', {})
    for symbol, failure in failing.items():
        unsynced = float(unsynced_books.get(symbol, 0.0)) + elapsed
        flag(DEGRADED, f'book {symbol} out of sync for {unsynced:.0f} s: its REST depth snapshot failed '
                       f'{failure["failures"]} time{"s" if failure["failures"] != 1 else ""} in a row '
                       f'(last: {_short(failure["error"])}); retrying')
    if not starting:
        for symbol, unsynced in unsynced_books.items():
            unsynced = float(unsynced) + elapsed
            if symbol not in failing and unsynced > book_sync_grace_s:
                flag(DEGRADED, f'book {symbol} out of sync for {unsynced:.0f} s: no snapshot applied')

    recent = snap['recent_events']
    for kind, limit_name, noun in _WINDOWED_CHECKS:
        count = int(recent.get(kind, 0))
        limit = limits[limit_name]
        if count > limit:
            flag(DEGRADED, f'{count} {noun} in the last {window:g} s (limit {limit})')

    lag = snap.get('consumer_lag_s')
    if lag is not None and float(lag) > max_consumer_lag_s:
        flag(UNHEALTHY if float(lag) > 6 * max_consumer_lag_s else DEGRADED,
             f'consumer {float(lag):.1f} s behind the exchange (limit {max_consumer_lag_s:g} s): '
             f'callbacks are slower than the data')

    if max_snapshot_age_s is not None:
        for symbol, age in snap['snapshot_age_s'].items():
            if age is not None and float(age) + elapsed > max_snapshot_age_s:
                flag(DEGRADED, f'book {symbol} snapshot is {float(age) + elapsed:.0f} s old '
                               f'(limit {max_snapshot_age_s:g} s)')

    return BackpackHealthReport(status=status, reasons=tuple(reasons), checked_at=now)


def _short(text: str, limit: int = 200) -> str:
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'
