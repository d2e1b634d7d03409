"""Counters the Backpack feed keeps about itself, and the snapshot its ``metrics_snapshot()`` returns.

Use one ``FeedMetrics`` per feed. The feed's hot handlers count frames by incrementing
``messages[channel]`` in place (no call, no lock: everything runs on one event loop); the time
of the newest frame comes from cryptofeed's connections (``last_message_time``). Rarer
events (reconnects, sequence gaps, resyncs, parse and server errors, REST failures, trade gaps
left unrecovered) are also stamped into small bounded per-kind logs, so that ``health.py`` can
judge "how many in the last N seconds" instead of "how many ever": one hiccup an hour ago
must not keep the feed marked degraded.

``snapshot()`` returns plain JSON-serialisable data with ages in seconds. The clock is
injectable (Unix seconds, default ``time.time``) so tests can move time by hand.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple

__all__ = ['EVENT_KINDS', 'FeedMetrics']

#: Kinds of events kept with their timestamps for windowed health checks.
EVENT_KINDS = ('reconnect', 'gap', 'resync', 'parse_error', 'server_error', 'rest_failure',
               'trade_gap_unrecovered', 'callback_error', 'connect_failure', 'auth_failure')

_DEFAULT_EVENT_CAPACITY = 512


class FeedMetrics:
    """Counters, last-seen times and a per-kind event log for one feed.

    ``event_capacity`` bounds each kind's log; a window holding more events than that counts
    as exactly ``event_capacity`` (health thresholds are far below it). Logs are per kind so a
    burst of one kind (say parse errors) cannot push the rarer ones (reconnects) out.
    """

    __slots__ = ('clock', 'started_at', 'messages', 'dropped', 'parse_errors', 'server_errors',
                 'unknown_streams', 'reconnects', 'gaps', 'resyncs', 'backfilled_trades',
                 'trade_gaps_unrecovered', 'rest_failures', 'last_message_time', 'exchange_time', 'delivered_at',
                 'callback_errors', 'connect_failures', 'connections_given_up', 'auth_failures', 'auth_error',
                 'backfilled_fills', 'reconciliation_corrections', 'last_private_message_time',
                 'listings_added', 'listings_removed', 'symbols_added', 'symbols_removed', 'unlisted', 'stopped',
                 'subscribed_symbols', '_book_symbols', '_snapshot_times', '_unsynced_since', '_snapshot_errors', '_events')

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 event_capacity: int = _DEFAULT_EVENT_CAPACITY):
        if event_capacity < 1:
            raise ValueError(f'event_capacity must be >= 1, got {event_capacity}')
        self.clock = clock
        self.started_at = clock()
        self.messages: Dict[str, int] = {}
        self.dropped = 0
        self.parse_errors = 0
        self.server_errors = 0
        self.unknown_streams = 0
        self.reconnects = 0
        self.gaps = 0
        self.resyncs = 0
        self.backfilled_trades = 0
        self.trade_gaps_unrecovered = 0
        self.rest_failures = 0
        self.last_message_time: Optional[float] = None
        # Exchange time and receipt time (seconds) of the newest event delivered to callbacks; set in
        # place by the hot handlers, only for what they deliver (frames buffered for a book that is
        # out of sync are not delivered, and do not count). Their difference is the consumer lag.
        self.exchange_time: Optional[float] = None
        self.delivered_at: Optional[float] = None
        self.callback_errors = 0
        self.connect_failures = 0
        self.connections_given_up: List[str] = []
        # Private account channels (channels/account.py): rejected signatures, the reason the
        # private streams are down now (None while they work), fills recovered from REST after a
        # reconnect, balances corrected by REST reconciliation, the newest private frame.
        self.auth_failures = 0
        self.auth_error: Optional[str] = None
        self.backfilled_fills = 0
        self.reconciliation_corrections = 0
        self.last_private_message_time: Optional[float] = None
        # Markets followed while running (hosts/listings.py): new listings subscribed and
        # delisted/closed markets dropped by the listing poll of symbols='all', symbols added and
        # removed by add_symbols/remove_symbols; requested symbols Backpack does not list (with
        # their "did you mean"); why the feed stopped, when it stopped itself (None while it runs);
        # how many markets it follows now.
        self.listings_added = 0
        self.listings_removed = 0
        self.symbols_added = 0
        self.symbols_removed = 0
        self.unlisted: Dict[str, str] = {}
        self.stopped: Optional[str] = None
        self.subscribed_symbols = 0
        self._book_symbols: set[str] = set()
        self._snapshot_times: Dict[str, float] = {}
        self._unsynced_since: Dict[str, float] = {}
        self._snapshot_errors: Dict[str, Tuple[int, str]] = {}   # symbol -> (failures in a row, last error)
        self._events: Dict[str, Deque[float]] = {kind: deque(maxlen=event_capacity) for kind in EVENT_KINDS}

    # -- recording -----------------------------------------------------------------------

    def mark_started(self, when: Optional[float] = None) -> None:
        """Restart the uptime clock (e.g. when the feed starts, after being built earlier)."""
        self.started_at = self.clock() if when is None else when

    def on_message(self, channel: str, when: Optional[float] = None) -> None:
        """One frame handled on ``channel`` (for callers off the hot path); ``when`` = receipt time."""
        self.messages[channel] = self.messages.get(channel, 0) + 1
        self.last_message_time = self.clock() if when is None else when

    def on_dropped(self, count: int = 1) -> None:
        self.dropped += count

    def on_parse_error(self) -> None:
        self.parse_errors += 1
        self._stamp('parse_error')

    def on_server_error(self) -> None:
        """The exchange sent an error frame or error response."""
        self.server_errors += 1
        self._stamp('server_error')

    def on_unknown_stream(self) -> None:
        self.unknown_streams += 1

    def on_reconnect(self) -> None:
        self.reconnects += 1
        self._stamp('reconnect')

    def on_gap(self) -> None:
        """A sequence gap was detected in a book stream."""
        self.gaps += 1
        self._stamp('gap')

    def on_resync(self, symbol: str) -> None:
        """``symbol``'s book is being rebuilt: it is out of sync until the next snapshot."""
        self.resyncs += 1
        self._stamp('resync')
        self.on_book_reset(symbol)

    def on_book_reset(self, symbol: str) -> None:
        """``symbol``'s book was dropped (a gap, a reconnect): out of sync until its next snapshot."""
        self._book_symbols.add(symbol)
        self._snapshot_times.pop(symbol, None)
        self._unsynced_since.setdefault(symbol, self.clock())

    def on_backfilled_trades(self, count: int) -> None:
        self.backfilled_trades += count

    def on_trade_gap_unrecovered(self) -> None:
        self.trade_gaps_unrecovered += 1
        self._stamp('trade_gap_unrecovered')

    def on_rest_failure(self) -> None:
        self.rest_failures += 1
        self._stamp('rest_failure')

    def on_auth_failure(self, reason: str) -> None:
        """The exchange refused our signature; ``reason`` is shown by health until ``on_auth_ok``."""
        self.auth_failures += 1
        self.auth_error = reason
        self._stamp('auth_failure')

    def on_auth_ok(self) -> None:
        self.auth_error = None

    def expect_books(self, symbols: Iterable[str]) -> None:
        """Declare the symbols whose books should be in sync (those subscribed to L2_BOOK)."""
        now = self.clock()
        for symbol in symbols:
            self._book_symbols.add(symbol)
            self._unsynced_since.setdefault(symbol, now)

    def forget_book(self, symbol: str) -> None:
        """``symbol`` is no longer followed (e.g. the exchange does not list it): stop reporting its book."""
        self._book_symbols.discard(symbol)
        self._snapshot_times.pop(symbol, None)
        self._unsynced_since.pop(symbol, None)
        self._snapshot_errors.pop(symbol, None)

    def on_snapshot_failure(self, symbol: str, error: str) -> None:
        """``symbol``'s REST depth snapshot failed with ``error``: a REST failure, and the reason its
        book stays out of sync until a snapshot is applied (``health`` says so at once)."""
        failures = self._snapshot_errors.get(symbol, (0, ''))[0] + 1
        self._snapshot_errors[symbol] = (failures, error)
        self.on_rest_failure()

    def on_snapshot(self, symbol: str, when: Optional[float] = None) -> None:
        """A book snapshot was applied: ``symbol`` is in sync from now on."""
        self._book_symbols.add(symbol)
        self._snapshot_times[symbol] = self.clock() if when is None else when
        self._unsynced_since.pop(symbol, None)
        self._snapshot_errors.pop(symbol, None)

    def on_callback_error(self) -> None:
        """A user callback raised (the feed logged it and carried on)."""
        self.callback_errors += 1
        self._stamp('callback_error')

    def on_connect_failure(self) -> None:
        """A connection attempt failed before the connection was established."""
        self.connect_failures += 1
        self._stamp('connect_failure')

    def on_connection_given_up(self, conn_id: str) -> None:
        """A connection exhausted its retries: it will not be tried again."""
        self.connections_given_up.append(conn_id)

    def _stamp(self, kind: str) -> None:
        self._events[kind].append(self.clock())

    # -- reading -------------------------------------------------------------------------

    @property
    def consumer_lag(self) -> Optional[float]:
        """Receipt time minus exchange time of the newest event delivered (>= 0), None before one."""
        if self.exchange_time is None or self.delivered_at is None:
            return None
        try:  # a replay may hand receipt times as text
            return max(0.0, float(self.delivered_at) - self.exchange_time)
        except (TypeError, ValueError):
            return None

    def recent_events(self, window_s: float, now: Optional[float] = None) -> Dict[str, int]:
        """How many events of each kind happened in ``(now - window_s, now]``."""
        now = self.clock() if now is None else now
        since = now - window_s
        counts = {}
        for kind, stamps in self._events.items():
            n = 0
            for stamp in reversed(stamps):  # newest first; stop at the first one too old
                if stamp <= since:
                    break
                if stamp <= now:
                    n += 1
            counts[kind] = n
        return counts

    def event_log(self, window_s: float, now: Optional[float] = None) -> List[Tuple[float, str]]:
        """``(timestamp, kind)`` of the events in the window, oldest first (for diagnostics)."""
        now = self.clock() if now is None else now
        since = now - window_s
        out = [(stamp, kind) for kind, stamps in self._events.items() for stamp in stamps if since < stamp <= now]
        out.sort()
        return out

    def snapshot(self, now: Optional[float] = None, window_s: float = 300.0) -> Dict[str, Any]:
        """Everything above as plain JSON-serialisable data; ages are seconds at ``now``.

        ``snapshot_age_s`` maps every expected book symbol to the age of its last snapshot, or
        None while it has none (``books_out_of_sync`` lists those; ``snapshot_failures`` those whose
        snapshot request keeps failing, with the count and the last error). ``consumer_lag_s`` is the
        receipt time minus the exchange time of the newest event delivered. ``recent_events`` counts
        events by kind over the last ``window_s`` seconds.
        """
        now = self.clock() if now is None else now
        last = self.last_message_time
        return {
            'taken_at': now,
            'uptime_s': max(0.0, now - self.started_at),
            'messages': dict(self.messages),
            'messages_total': sum(self.messages.values()),
            'last_message_age_s': None if last is None else max(0.0, now - last),
            'dropped': self.dropped,
            'parse_errors': self.parse_errors,
            'server_errors': self.server_errors,
            'unknown_streams': self.unknown_streams,
            'reconnects': self.reconnects,
            'gaps': self.gaps,
            'resyncs': self.resyncs,
            'backfilled_trades': self.backfilled_trades,
            'trade_gaps_unrecovered': self.trade_gaps_unrecovered,
            'rest_failures': self.rest_failures,
            'auth_failures': self.auth_failures,
            'auth_error': self.auth_error,
            'backfilled_fills': self.backfilled_fills,
            'reconciliation_corrections': self.reconciliation_corrections,
            'listings_added': self.listings_added,
            'listings_removed': self.listings_removed,
            'symbols_added': self.symbols_added,
            'symbols_removed': self.symbols_removed,
            'subscribed_symbols': self.subscribed_symbols,
            'unlisted_symbols': dict(self.unlisted),
            'stopped': self.stopped,
            'last_private_message_age_s': (None if self.last_private_message_time is None
                                           else max(0.0, now - self.last_private_message_time)),
            'snapshot_age_s': {
                symbol: (max(0.0, now - self._snapshot_times[symbol]) if symbol in self._snapshot_times else None)
                for symbol in sorted(self._book_symbols)
            },
            'books_out_of_sync': sorted(s for s in self._book_symbols if s not in self._snapshot_times),
            'out_of_sync_s': {symbol: max(0.0, now - since) for symbol, since in sorted(self._unsynced_since.items())
                              if symbol not in self._snapshot_times},
            'snapshot_failures': {symbol: {'failures': failures, 'error': error}
                                  for symbol, (failures, error) in sorted(self._snapshot_errors.items())
                                  if symbol not in self._snapshot_times},
            'consumer_lag_s': self.consumer_lag,
            'callback_errors': self.callback_errors,
            'connect_failures': self.connect_failures,
            'connections_given_up': list(self.connections_given_up),
            'window_s': float(window_s),
            'recent_events': self.recent_events(window_s, now),
        }
