"""Fault injection for the simulator: validation of fault requests and the state they leave behind.

Use ``parse_fault()`` to turn a ``POST /_sim/faults`` body (or ``BackpackSimulator.inject()``
argument) into a validated ``Fault``; ``FaultState`` keeps what outlives the request: HTTP
error/slow-down budgets, duplicate/reorder budgets per stream and the ping silence deadline.
``malformed_payload()`` builds the documented broken frames, ``hostile_depth_payload()`` the
depth frames with impossible values or ids, ``corrupt_middle_row()`` the damaged REST answers of
``malformed_history_row``. The JSON of every fault is listed in the ``server`` module docstring.
The two standing limits live here too: ``HistoryRateLimit`` (historical endpoints, all clients
together) and ``RestRateLimit`` (a token bucket per client address over the public REST API).
Pure: the monotonic clock is injected, no I/O.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from cryptofeed.exchanges.backpack.simulator.wire import encode_json

__all__ = [
    'FAULT_KINDS', 'MALFORMED_KINDS', 'HOSTILE_DEPTH_KINDS', 'HTTP_FAULT_STATUSES', 'CORRUPT_SNAPSHOT_ID',
    'HISTORY_PATHS', 'RestRateLimit', 'HOSTILE_ACCOUNT_EVENTS', 'MALFORMED_ROW_PATHS', 'FaultError', 'Fault',
    'HttpFault',
    'FaultState', 'HistoryRateLimit', 'parse_fault', 'malformed_payload', 'hostile_depth_payload', 'http_error_body',
    'corrupt_middle_row',
]

FAULT_KINDS = ('skip_sequence', 'duplicate', 'reorder', 'drop_connections', 'silence_pings', 'malformed',
               'http_status', 'slow_rest', 'hostile_depth', 'corrupt_snapshot', 'hostile_account',
               'malformed_history_row')
MALFORMED_KINDS = ('truncated_json', 'unknown_stream', 'wrong_types')
# kind -> (price, size) of the one bid level of a hostile depth frame; None = the real best bid's
HOSTILE_DEPTH_KINDS = {
    'nan_price': ('NaN', None), 'snan_price': ('sNaN', None), 'infinite_price': ('Infinity', None),
    'negative_price': ('-1', None), 'huge_price': ('1E+400', None),
    'nan_size': (None, 'NaN'), 'snan_size': (None, 'sNaN'), 'infinite_size': (None, 'Infinity'),
    'negative_size': (None, '-5'), 'huge_size': (None, '1E+400'),
    'id_jump': (None, None),
}
ID_JUMP = 10 ** 9
CORRUPT_SNAPSHOT_ID = 10 ** 30
#: ``event`` of a hostile_account fault -> the account stream its frame goes out on.
HOSTILE_ACCOUNT_EVENTS = {'orderFill': 'account.orderUpdate', 'orderAccepted': 'account.orderUpdate',
                          'orderUpdate': 'account.orderUpdate', 'positionUpdate': 'account.positionUpdate',
                          'balanceUpdate': 'account.balanceUpdate'}
#: Signed REST paths whose answers malformed_history_row can damage (``/api/v1/capital``: an asset's entry).
MALFORMED_ROW_PATHS = ('/wapi/v1/history/fills', '/wapi/v1/history/orders', '/api/v1/orders', '/api/v1/position',
                       '/api/v1/capital')
_MAX_FIELD = 64
HTTP_FAULT_STATUSES = {
    429: ('TOO_MANY_REQUESTS', 'Too many requests'),
    451: ('FORBIDDEN', 'Unavailable for legal reasons: access from this region is restricted'),
    500: ('SERVER_ERROR', 'Internal server error'),
    502: ('SERVER_ERROR', 'Bad gateway'),
    503: ('MAINTENANCE', 'System under maintenance'),
}


class FaultError(ValueError):
    """A fault request that cannot be honoured; the message says which field is wrong."""


@dataclass(frozen=True)
class Fault:
    """A validated fault request. Unused fields keep their defaults."""
    fault: str
    symbol: Optional[str] = None
    count: int = 1
    stream: Optional[str] = None
    duration: float = 0.0
    kind: Optional[str] = None
    status: int = 0
    retry_after: int = 1
    path: Optional[str] = None
    delay: float = 0.0
    private_only: bool = False
    event: Optional[str] = None
    field: Optional[str] = None
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The normalised request, echoed back to the caller."""
        keep = {
            'skip_sequence': ('symbol', 'count'),
            'duplicate': ('symbol', 'stream', 'count'),
            'reorder': ('symbol', 'stream', 'count'),
            'drop_connections': ('duration', 'private_only'),
            'silence_pings': ('duration',),
            'malformed': ('kind', 'symbol'),
            'http_status': ('status', 'count', 'path', 'retry_after'),
            'slow_rest': ('delay', 'count', 'duration', 'path'),
            'hostile_depth': ('kind', 'symbol'),
            'corrupt_snapshot': ('count',),
            'hostile_account': ('event', 'symbol', 'field', 'value'),
            'malformed_history_row': ('path', 'field', 'value', 'count'),
        }[self.fault]
        out: dict[str, Any] = {'fault': self.fault}
        for name in keep:
            value = getattr(self, name)
            if name == 'value' or value is not None and not (name == 'retry_after' and self.status != 429):
                out[name] = value
        return out


def _int(body: Mapping, name: str, default: int, minimum: int = 1) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultError(f'{name} must be an integer >= {minimum}')
    return value


def _number(body: Mapping, name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise FaultError(f'{name} must be a number >= 0')
    return float(value)


def _opt_str(body: Mapping, name: str) -> Optional[str]:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise FaultError(f'{name} must be a string')
    return value


def _field_and_value(body: Mapping) -> tuple[str, Any]:
    """The ``field`` (a key of the payload) and ``value`` (any JSON scalar) of the account faults."""
    name = body.get('field')
    if not isinstance(name, str) or not name or len(name) > _MAX_FIELD:
        raise FaultError(f'field must be the name of a key of the payload (1..{_MAX_FIELD} characters)')
    if 'value' not in body:
        raise FaultError('value is required: a string, a number, true/false or null')
    value = body['value']
    if isinstance(value, float) and not math.isfinite(value) or not (
            value is None or isinstance(value, (str, bool, int, float))):
        raise FaultError('value must be a string, a finite number, true/false or null '
                         '(send NaN or Infinity as the strings "NaN", "Infinity")')
    return name, value


def parse_fault(body: Any, symbols: Optional[list[str]] = None) -> Fault:
    """Validate a fault request against the simulated ``symbols``; raise ``FaultError``."""
    if not isinstance(body, Mapping):
        raise FaultError('a fault is a JSON object like {"fault": "drop_connections"}')
    name = body.get('fault')
    if name not in FAULT_KINDS:
        raise FaultError(f'fault must be one of {", ".join(FAULT_KINDS)}')
    symbol = _opt_str(body, 'symbol')
    if symbol is not None and symbols is not None and symbol not in symbols:
        raise FaultError(f'unknown symbol {symbol!r}')
    if name in ('skip_sequence', 'duplicate', 'reorder'):
        if symbol is None:
            raise FaultError(f'{name} needs a symbol')
        stream = _opt_str(body, 'stream')
        if name != 'skip_sequence':
            stream = stream or f'depth.{symbol}'
            if not stream.startswith('depth.') or not stream.endswith('.' + symbol):
                raise FaultError(f'stream must be a depth stream of {symbol}')
        elif stream is not None:
            raise FaultError('skip_sequence takes no stream')
        return Fault(name, symbol=symbol, stream=stream, count=_int(body, 'count', 1))
    if name == 'drop_connections':
        private_only = body.get('private_only', False)
        if not isinstance(private_only, bool):
            raise FaultError('private_only must be true or false')
        return Fault(name, duration=_number(body, 'duration', 0.0), private_only=private_only)
    if name == 'silence_pings':
        duration = _number(body, 'duration', 0.0)
        if duration <= 0:
            raise FaultError('silence_pings needs a duration > 0 (seconds)')
        return Fault(name, duration=duration)
    if name == 'malformed':
        kind = body.get('kind')
        if kind not in MALFORMED_KINDS:
            raise FaultError(f'kind must be one of {", ".join(MALFORMED_KINDS)}')
        return Fault(name, kind=kind, symbol=symbol or (symbols[0] if symbols else 'SOL_USDC'))
    if name == 'hostile_depth':
        kind = body.get('kind')
        if kind not in HOSTILE_DEPTH_KINDS:
            raise FaultError(f'kind must be one of {", ".join(HOSTILE_DEPTH_KINDS)}')
        return Fault(name, kind=kind, symbol=symbol or (symbols[0] if symbols else 'SOL_USDC'))
    if name == 'corrupt_snapshot':
        return Fault(name, count=_int(body, 'count', 1))
    if name == 'hostile_account':
        event = body.get('event')
        if event not in HOSTILE_ACCOUNT_EVENTS:
            raise FaultError(f'event must be one of {", ".join(HOSTILE_ACCOUNT_EVENTS)}')
        field, value = _field_and_value(body)
        if event == 'balanceUpdate':
            if symbol is not None:
                raise FaultError('balanceUpdate takes no symbol (set field "a" to choose the asset)')
        elif symbol is None and symbols:
            perps = [s for s in symbols if s.endswith('_PERP')]
            symbol = perps[0] if event == 'positionUpdate' and perps else symbols[0]
        return Fault(name, event=event, symbol=symbol or ('SOL_USDC' if event != 'balanceUpdate' else None),
                     field=field, value=value)
    if name == 'malformed_history_row':
        path = body.get('path')
        if path not in MALFORMED_ROW_PATHS:
            raise FaultError(f'path must be one of {", ".join(MALFORMED_ROW_PATHS)}')
        field, value = _field_and_value(body)
        return Fault(name, path=path, field=field, value=value, count=_int(body, 'count', 1))
    path = _opt_str(body, 'path')
    if path is not None and not path.startswith('/'):
        raise FaultError('path must start with /')
    if name == 'http_status':
        status = body.get('status')
        if status not in HTTP_FAULT_STATUSES:
            raise FaultError(f'status must be one of {sorted(HTTP_FAULT_STATUSES)}')
        return Fault(name, status=status, count=_int(body, 'count', 1), path=path,
                     retry_after=_int(body, 'retry_after', 1, minimum=0))
    delay = _number(body, 'delay', 0.0)
    if delay <= 0:
        raise FaultError('slow_rest needs a delay > 0 (seconds)')
    duration = _number(body, 'duration', 0.0)
    if 'count' in body and duration:
        raise FaultError('slow_rest takes count or duration, not both')
    return Fault(name, delay=delay, duration=duration, path=path,
                 count=0 if duration else _int(body, 'count', 1))


@dataclass
class HttpFault:
    """An HTTP error the next ``remaining`` matching requests receive."""
    status: int
    remaining: int
    path: Optional[str]
    retry_after: int


def http_error_body(status: int) -> bytes:
    """The JSON error body sent with an injected status."""
    code, message = HTTP_FAULT_STATUSES[status]
    return encode_json({'code': code, 'message': message})


#: Path prefixes of the historical endpoints that share ``HistoryRateLimit``'s budget.
HISTORY_PATHS = ('/api/v1/trades/history', '/api/v1/klines', '/wapi/v1/history/')


class HistoryRateLimit:
    """At most ``max_requests`` historical requests (``HISTORY_PATHS``) in any ``period_s``
    window, over all clients, like the exchange's limit on historical endpoints. ``take(path)``
    returns None when the request may proceed, else the Retry-After seconds of its 429;
    ``refused`` counts the 429s answered."""

    def __init__(self, max_requests: int, period_s: float, clock: Callable[[], float]):
        if max_requests < 1 or period_s <= 0:
            raise ValueError('history_rate_limit needs max_requests >= 1 and period_s > 0')
        self.max_requests = max_requests
        self.period_s = period_s
        self.refused = 0
        self._clock = clock
        self._sent: deque = deque()

    def take(self, path: str) -> Optional[int]:
        if not path.startswith(HISTORY_PATHS):
            return None
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.period_s:
            self._sent.popleft()
        if len(self._sent) < self.max_requests:
            self._sent.append(now)
            return None
        self.refused += 1
        return max(1, math.ceil(self._sent[0] + self.period_s - now))


class RestRateLimit:
    """A token bucket per client address: ``rate`` requests per second, with a burst of ``rate``
    (at least one). ``take(client)`` spends a token and returns None, or returns the Retry-After
    seconds (a whole number, at least 1: when the next token will be there) without spending any;
    ``refused`` counts the refusals. Buckets idle long enough to be full again are forgotten."""

    _PRUNE_AT = 1024

    def __init__(self, rate: float, clock: Callable[[], float]):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f'rest_rate_limit must be a number of requests per second > 0, not {rate!r}')
        self.rate = float(rate)
        self.burst = max(1.0, self.rate)
        self.refused = 0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}   # client -> (tokens, at)

    def take(self, client: str) -> Optional[int]:
        now = self._clock()
        tokens, at = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self._PRUNE_AT:
                self._prune(now)
            return None
        self._buckets[client] = (tokens, now)
        self.refused += 1
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _prune(self, now: float) -> None:
        refill = self.burst / self.rate
        for client, (_, at) in list(self._buckets.items()):
            if now - at > refill:
                del self._buckets[client]


class _Reorder:
    __slots__ = ('remaining', 'held')

    def __init__(self, remaining: int):
        self.remaining = remaining
        self.held: Optional[bytes] = None


class FaultState:
    """What injected faults leave behind, consulted by the server on every request and frame."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._http: list[HttpFault] = []
        self._slow: list[list] = []          # [delay, remaining count (0 = by time), deadline or 0, path]
        self._duplicate: dict[str, int] = {}
        self._reorder: dict[str, _Reorder] = {}
        self._silent_until = 0.0
        self._corrupt_snapshots = 0
        self._rows: list[list] = []          # [path, field, value, answers left] of malformed_history_row

    def apply(self, fault: Fault) -> None:
        """Record a fault that acts later (HTTP, frame and ping faults); others are the server's job."""
        if fault.fault == 'http_status':
            self._http.append(HttpFault(fault.status, fault.count, fault.path, fault.retry_after))
        elif fault.fault == 'slow_rest':
            deadline = self._clock() + fault.duration if fault.duration else 0.0
            self._slow.append([fault.delay, fault.count, deadline, fault.path])
        elif fault.fault == 'duplicate':
            self._duplicate[fault.stream] = self._duplicate.get(fault.stream, 0) + fault.count
        elif fault.fault == 'reorder':
            state = self._reorder.get(fault.stream)
            if state is None:
                self._reorder[fault.stream] = _Reorder(fault.count)
            else:
                state.remaining += fault.count
        elif fault.fault == 'silence_pings':
            self._silent_until = max(self._silent_until, self._clock() + fault.duration)
        elif fault.fault == 'corrupt_snapshot':
            self._corrupt_snapshots += fault.count
        elif fault.fault == 'malformed_history_row':
            self._rows.append([fault.path, fault.field, fault.value, fault.count])

    def damages(self, path: str) -> bool:
        """True when a malformed_history_row fault waits for an answer of ``path``."""
        return any(entry[0] == path for entry in self._rows)

    def damage_answer(self, path: str, body: Any) -> bool:
        """Set the field of the middle row of ``body`` (the decoded answer of ``path``) as the first
        malformed_history_row fault of that path asks; True when it did (an answer without rows is
        left alone and does not use up the fault's count)."""
        for entry in self._rows:
            if entry[0] == path:
                if not corrupt_middle_row(body, entry[1], entry[2]):
                    return False
                entry[3] -= 1
                if entry[3] <= 0:
                    self._rows.remove(entry)
                return True
        return False

    def take_corrupt_snapshot(self) -> bool:
        """True when this ``/api/v1/depth`` answer must carry a corrupt ``lastUpdateId``."""
        if self._corrupt_snapshots:
            self._corrupt_snapshots -= 1
            return True
        return False

    # ---------------------------------------------------------------- HTTP

    def take_http_fault(self, path: str) -> Optional[HttpFault]:
        """The injected error for this request, if one applies (its budget is consumed)."""
        for fault in self._http:
            if fault.path is None or fault.path == path:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._http.remove(fault)
                return fault
        return None

    def take_delay(self, path: str) -> float:
        """Seconds to hold this REST request back (0 when no slow_rest applies)."""
        now = self._clock()
        self._slow = [s for s in self._slow if (s[1] > 0 if not s[2] else now < s[2])]
        for entry in self._slow:
            delay, count, deadline, only = entry
            if only is not None and only != path:
                continue
            if not deadline:
                entry[1] = count - 1
            return delay
        return 0.0

    # ---------------------------------------------------------------- frames

    @property
    def frames_active(self) -> bool:
        return bool(self._duplicate or self._reorder)

    def transform(self, stream: str, frame: bytes) -> tuple[bytes, ...]:
        """The frames to send in place of ``frame`` on ``stream`` (duplicated, held or swapped)."""
        dup = self._duplicate.get(stream)
        if dup:
            if dup == 1:
                del self._duplicate[stream]
            else:
                self._duplicate[stream] = dup - 1
            return frame, frame
        state = self._reorder.get(stream)
        if state is None:
            return (frame,)
        if state.held is None:
            state.remaining -= 1
            if state.remaining <= 0:
                del self._reorder[stream]
                return (frame,)
            state.held = frame
            return ()
        held, state.held = state.held, None
        state.remaining -= 1
        if state.remaining <= 0:
            del self._reorder[stream]
        return frame, held

    # ---------------------------------------------------------------- pings

    def pings_silenced(self) -> bool:
        return self._clock() < self._silent_until


def malformed_payload(kind: str, symbol: str, emit_us: int) -> bytes:
    """The text of a broken frame of ``kind`` (see the server docstring for the exact shapes)."""
    if kind == 'unknown_stream':
        return encode_json({'stream': f'unknownStream.{symbol}',
                            'data': {'E': emit_us, 'e': 'unknownStream', 's': symbol}})
    if kind == 'wrong_types':
        return encode_json({'stream': f'trade.{symbol}', 'data': {
            'E': 'not-a-number', 'T': None, 'a': 12345, 'b': 67890, 'e': 'trade', 'm': 'false', 'p': 101.5,
            'q': [1], 's': symbol, 't': 'abc'}})
    if kind == 'truncated_json':
        whole = encode_json({'stream': f'trade.{symbol}', 'data': {
            'E': emit_us, 'T': emit_us, 'a': '5100000001', 'b': '5100000002', 'e': 'trade', 'm': False,
            'p': '100.00', 'q': '1.00', 's': symbol, 't': 1}})
        return whole[:len(whole) // 2]
    raise FaultError(f'kind must be one of {", ".join(MALFORMED_KINDS)}')


def hostile_depth_payload(kind: str, symbol: str, sequence: int, best_bid: tuple[str, str], emit_us: int) -> bytes:
    """A ``depth.<symbol>`` frame that follows ``sequence`` (``U = u = sequence + 1``) but whose one
    bid level carries an impossible value (``kind`` in ``HOSTILE_DEPTH_KINDS``), or, for
    ``id_jump``, the unchanged best bid with ``u = sequence + 10**9``. The market's own next frame
    carries the same ``U``: a client that drops the hostile frame stays in sequence."""
    try:
        price, size = HOSTILE_DEPTH_KINDS[kind]
    except KeyError:
        raise FaultError(f'kind must be one of {", ".join(HOSTILE_DEPTH_KINDS)}') from None
    last = sequence + (ID_JUMP if kind == 'id_jump' else 1)
    level = [price or best_bid[0], size or best_bid[1]]
    return encode_json({'stream': f'depth.{symbol}', 'data': {
        'E': emit_us, 'T': emit_us, 'U': sequence + 1, 'a': [], 'b': [level], 'e': 'depth', 's': symbol,
        'u': last}})


def corrupt_middle_row(body: Any, field: str, value: Any) -> bool:
    """Set ``field`` to ``value`` in the middle row of a REST answer: element ``len // 2`` of a list
    of objects, or, for a mapping of objects (``/api/v1/capital``: asset -> entry), the entry of
    the middle key in sorted order. False (nothing changed) when there is no such row."""
    if isinstance(body, list) and body:
        row = body[len(body) // 2]
    elif isinstance(body, dict) and body:
        row = body[sorted(body)[len(body) // 2]]
    else:
        return False
    if not isinstance(row, dict):
        return False
    row[field] = value
    return True
