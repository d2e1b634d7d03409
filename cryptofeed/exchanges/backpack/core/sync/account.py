"""Pure helpers of the private account channels: the fill ledger, the clock-offset estimate and
the classification of authentication failures. No I/O, no ``await``.

Use ``FillLedger`` to deliver every fill exactly once across a live stream and a REST backfill:
it remembers the ``(trade id, order id)`` of the fills delivered (bounded, oldest forgotten
first) and the engine time of the newest one, which is where a backfill after a reconnect
starts. A fill is recorded (``record``) only once it has been delivered: a fill that could not
be delivered (a row that did not parse, say) stays unrecorded, so a later catch-up still
delivers it. ``FillLedger.pending(entries)`` takes ``(key, time ms, item)`` of history fills
(parsed and checked by the caller) and returns those not yet delivered, oldest first, without
recording them.

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

__all__ = ['FillLedger', 'fill_key', 'history_ms', 'estimate_offset_ms', 'classify_auth_failure', 'AUTH_CAUSES',
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

    def delivered(self, key: Key) -> bool:
        """True when the fill was delivered already (and counts it as a duplicate)."""
        if key in self._seen:
            self.duplicates += 1
            return True
        return False

    def record(self, key: Key, time_ms: Optional[int]) -> bool:
        """Note one fill as delivered; True when it is new, False for a duplicate."""
        if self.delivered(key):
            return False
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        if time_ms is not None and (self.last_ms is None or time_ms > self.last_ms):
            self.last_ms = time_ms
        return True

    def pending(self, entries: Iterable[Tuple[Key, int, Any]]) -> List[Tuple[Key, int, Any]]:
        """The ``(key, time_ms, item)`` entries not delivered yet (each key once), oldest first (time,
        then trade id). Nothing is recorded: ``record`` each one after delivering it."""
        out: Dict[Key, Tuple[Key, int, Any]] = {}
        for entry in entries:
            key = entry[0]
            if key not in out and not self.delivered(key):
                out[key] = entry
        return sorted(out.values(), key=lambda e: (e[1], _trade_order(e[0][0])))


def _trade_order(trade_id: str) -> Tuple[int, str]:
    return (int(trade_id), '') if trade_id.isdigit() else (-1, trade_id)


def history_ms(value: Any) -> int:
    """A history row's ``timestamp`` in ms (``history_seconds``)."""
    return round(history_seconds(value) * 1000)


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
