"""Pure helpers of the private account channels: the fill ledger, the clock-offset estimate and
the classification of authentication failures. No I/O, no ``await``.

Use ``FillLedger`` to deliver every fill exactly once across a live stream and a REST backfill:
it remembers the ``(trade id, order id)`` of the fills delivered (bounded, oldest forgotten
first) and the engine time of the newest one, which is where a backfill after a reconnect
starts. ``FillLedger.backfill(rows)`` takes ``/wapi/v1/history/fills`` rows and returns those
not yet delivered, oldest first, recording them.

``estimate_offset_ms`` turns one ``/api/v1/time`` round trip into "exchange clock minus ours".
``classify_auth_failure`` names why the exchange refused a signed request (backpack-api.md §4,
§6, §7): ``expired`` (timestamp outside the window: a clock problem), ``invalid_signature``,
``key_rejected`` (unknown or disabled key), or ``ws_rejected`` (the WebSocket's error frame
4003, which does not say which of those it was).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cryptofeed.exchanges.backpack.core.wire.parse import history_seconds

__all__ = ['FillLedger', 'fill_key', 'estimate_offset_ms', 'classify_auth_failure', 'AUTH_CAUSES',
           'EXPIRED', 'INVALID_SIGNATURE', 'KEY_REJECTED', 'WS_REJECTED']

EXPIRED = 'expired'
INVALID_SIGNATURE = 'invalid_signature'
KEY_REJECTED = 'key_rejected'
WS_REJECTED = 'ws_rejected'

AUTH_CAUSES: Dict[str, str] = {
    EXPIRED: 'the signed request expired: its timestamp was outside the signature window, so the clock used '
             'for signing is off from the exchange\'s',
    INVALID_SIGNATURE: 'the signature does not verify: the private key does not belong to the API key sent, '
                       'or the key text was altered',
    KEY_REJECTED: 'the API key is not accepted: it is unknown to Backpack, disabled, or lacks the permission',
    WS_REJECTED: 'the private subscribe was refused (error 4003 Invalid signature): wrong key, invalid '
                 'signature or an expired timestamp',
}
"""Cause -> what it means, in the words the log uses."""

Key = Tuple[str, str]


def fill_key(trade_id: Any, order_id: Any) -> Key:
    """The identity of one fill: the trade id alone is per market, the order id alone per order."""
    return str(trade_id), str(order_id)


class FillLedger:
    """Fills delivered so far (see the module docstring). ``capacity`` bounds the memory."""

    __slots__ = ('capacity', '_seen', 'last_ms', 'duplicates')

    def __init__(self, capacity: int = 100_000):
        if capacity < 1:
            raise ValueError('capacity must be >= 1')
        self.capacity = capacity
        self._seen: 'OrderedDict[Key, None]' = OrderedDict()
        self.last_ms: Optional[int] = None
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: Key) -> bool:
        return key in self._seen

    def record(self, key: Key, time_ms: Optional[int]) -> bool:
        """Note one fill; True when it is new (deliver it), False for a duplicate (drop it)."""
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        if time_ms is not None and (self.last_ms is None or time_ms > self.last_ms):
            self.last_ms = time_ms
        return True

    def backfill(self, rows: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The history rows not delivered yet, oldest first (time, then trade id), now recorded."""
        ordered = sorted(rows, key=lambda r: (history_seconds(r['timestamp']), int(r['tradeId'])))
        return [row for row in ordered
                if self.record(fill_key(row['tradeId'], row['orderId']), int(history_seconds(row['timestamp']) * 1000))]


def estimate_offset_ms(sent_s: float, server_ms: int, received_s: float) -> int:
    """Exchange clock minus local clock, in ms, from one request sent at ``sent_s`` and answered
    at ``received_s`` (local seconds) with the exchange time ``server_ms``: the server read its
    clock, on average, half-way through the round trip."""
    return int(server_ms - round((sent_s + received_s) * 500))


def classify_auth_failure(code: Optional[str], message: Optional[str]) -> str:
    """The cause of a 401/403 from its ``{code, message}`` body (or a WS error frame's)."""
    text = (message or '').lower()
    if 'expired' in text or 'in the future' in text or 'timestamp' in text:
        return EXPIRED
    if code == 'INVALID_SIGNATURE':
        return INVALID_SIGNATURE
    if code in (4003, '4003'):
        return WS_REJECTED
    return KEY_REJECTED
