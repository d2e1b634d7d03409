"""Frame -> typed payload -> handler, by exact stream name; everything else counted and dropped.

Use ``Router`` inside the feed's ``message_handler``: it decodes each WebSocket frame once
(``messages.ENVELOPE_DECODER``), splits the stream name exactly (``split_stream``), looks the
handler up in a table built once, resolves the cryptofeed symbol, and calls::

    handler(payload, symbol, variant, receipt_ts)

``payload`` is the typed struct of ``messages.py``; ``symbol`` the normalized cryptofeed symbol
(``None`` for ``account.balanceUpdate``); ``variant`` the middle part of the stream name when
it has one: the kline interval (``'1m'``) or the depth aggregation window (``'200ms'``), else
``None``. ``handle(msg, conn, receipt_ts)`` has the signature of cryptofeed's message handlers,
so the feed installs it as its ``message_handler`` directly; it returns what the handler
returned, an awaitable that cryptofeed's connection handler awaits (``dropped`` for a dropped
frame). It is a plain function, not a coroutine: the common frame costs one decode, two dict
lookups and the handler call, and no extra coroutine object is created per frame.

What is dropped, never raised (backpack-api.md section 7; STYLE item 4). Each drop adds one to
``drops[reason]`` and logs one WARNING per (reason, stream) per ``log_interval`` seconds, with
the stream, the symbol and the number of drops suppressed since the previous warning:

==================  ==========================================================================
``malformed``       not JSON, not a JSON object, or not a ``{stream, data}`` envelope
``invalid``         a known stream whose payload has wrong types, misses fields, carries an
                    unknown event type (order and position streams excepted: their unknown
                    events reach the handler as the base class, ``event`` None), or is the
                    payload of another stream
``unknown_stream``  a stream kind without a handler, or a name missing a required part
``unknown_symbol``  a symbol (from the name, or ``data.s`` on all-market streams) not in the map
                    (a symbol removed with ``remove_symbol`` is counted without a warning)
``error_frame``     the server's ``{"id": null, "error": {...}}``; also passed to ``on_error``
==================  ==========================================================================

Handler exceptions are not frame problems and are not caught. The stream name is authoritative
for the symbol; ``data.s`` is consulted only on streams whose name has no symbol
(``liquidation``, ``account.orderUpdate``, ``account.positionUpdate``).

Decoding strategy (numbers measured by ``bench/decode.py``): the envelope and the payload are
decoded in one pass by a msgspec tagged union on ``data.e``; a frame the strict decoder refuses
is retried with the lax decoder (numbers sent as JSON strings, section 11) and, failing that,
classified through ``messages.PROBE_DECODER`` and the per-stream payload decoders (position
snapshots without ``e``, error frames, garbage). Once a frame has needed the lax decoder, the
router keeps using it (``lenient``), since the server is then evidently quoting numbers.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import msgspec

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.wire import messages as bp

__all__ = [
    'MALFORMED', 'INVALID', 'UNKNOWN_STREAM', 'UNKNOWN_SYMBOL', 'ERROR_FRAME', 'DROP_REASONS',
    'Handler', 'ErrorHandler', 'split_stream', 'Router',
]

LOG = log.get('.backpack.router')

MALFORMED = 'malformed'
INVALID = 'invalid'
UNKNOWN_STREAM = 'unknown_stream'
UNKNOWN_SYMBOL = 'unknown_symbol'
ERROR_FRAME = 'error_frame'
DROP_REASONS = (MALFORMED, INVALID, UNKNOWN_STREAM, UNKNOWN_SYMBOL, ERROR_FRAME)

Handler = Callable[[Any, Optional[str], Optional[str], float], Any]
ErrorHandler = Callable[[bp.ErrorFrame, float], Any]

_DEFAULT_LOG_INTERVAL_S = 10.0
_MAX_KEYS = 1024  # bound on cached routes and rate-limit entries (stream names come from the wire)
_MAX_WARNINGS_PER_INTERVAL = 20  # per drop reason: distinct bad streams beyond this are only counted
_MAX_LOGGED_CHARS = 120  # stream names and symbols come from the wire: never log them whole
_MAX_EXCERPT = 200

# How each stream kind names its symbol: in the stream name (required), in the name or else in
# ``data.s`` (all-market / all-account streams), or not at all.
_NAME = 'name'
_NAME_OR_DATA = 'name_or_data'
_NONE = 'none'
_SYMBOL_SOURCE: Dict[str, str] = {
    'trade': _NAME,
    'depth': _NAME,
    'bookTicker': _NAME,
    'ticker': _NAME,
    'kline': _NAME,
    'markPrice': _NAME,
    'openInterest': _NAME,
    'liquidation': _NAME_OR_DATA,
    'account.orderUpdate': _NAME_OR_DATA,
    'account.positionUpdate': _NAME_OR_DATA,
    'account.balanceUpdate': _NONE,
}
_NEEDS_VARIANT = frozenset({'kline'})


def _is_window(part: str) -> bool:
    """``200ms``, ``600ms``, ``1000ms``: the aggregation window of a depth stream."""
    return len(part) > 2 and part.endswith('ms') and part[:-2].isascii() and part[:-2].isdigit()


def split_stream(name: str) -> Tuple[str, Optional[str], Optional[str]]:
    """Split a stream name into ``(kind, variant, exchange_symbol)``, exactly.

    Symbols may contain ``.`` (``SPCX.US_USDC``), so only the known leading parts are split
    off and the rest is the symbol, unchanged::

        trade.SPCX.US_USDC              -> ('trade', None, 'SPCX.US_USDC')
        depth.200ms.SOL_USDC            -> ('depth', '200ms', 'SOL_USDC')
        kline.1m.SPCX.US_USDC           -> ('kline', '1m', 'SPCX.US_USDC')
        account.orderUpdate.SOL_USDC    -> ('account.orderUpdate', None, 'SOL_USDC')
        account.orderUpdate             -> ('account.orderUpdate', None, None)
        liquidation                     -> ('liquidation', None, None)

    Missing parts are ``None``; an unknown kind is split as ``<kind>.<symbol>``. Pure; whether
    the kind exists is the router's question.
    """
    kind, sep, rest = name.partition('.')
    if not sep:
        return name, None, None
    if kind == 'account':
        sub, _, symbol = rest.partition('.')
        return 'account.' + sub, None, symbol or None
    if kind == 'kline':
        variant, _, symbol = rest.partition('.')
        return kind, variant or None, symbol or None
    if kind == 'depth':
        head, sep, tail = rest.partition('.')
        if sep and _is_window(head):
            return kind, head, tail or None
    return kind, None, rest or None


class _Route:
    """Everything ``route`` needs for one stream name, resolved once and cached."""

    __slots__ = ('stream', 'kind', 'handler', 'types', 'symbol', 'exchange_symbol', 'variant',
                 'symbol_from_data')

    def __init__(self, stream: str, kind: str, handler: Handler, types: Tuple[type, ...],
                 symbol: Optional[str], exchange_symbol: Optional[str], variant: Optional[str],
                 symbol_from_data: bool):
        self.stream = stream
        self.kind = kind
        self.handler = handler
        self.types = types
        self.symbol = symbol
        self.exchange_symbol = exchange_symbol
        self.variant = variant
        self.symbol_from_data = symbol_from_data


def _present(raw: msgspec.Raw) -> bool:
    """A raw JSON member that was sent and is not ``null``."""
    return bool(raw) and bytes(raw) != b'null'


def _excerpt(frame: Any) -> str:
    try:
        text = frame if isinstance(frame, str) else bytes(frame).decode('utf-8', 'replace')
    except Exception:  # noqa: BLE001 - anything un-bytes-like is described, not decoded
        return f'<{type(frame).__name__}>'
    return repr(text[:_MAX_EXCERPT])


class Router:
    """Routes Backpack frames to the feed's handlers; see the module docstring.

    ``handlers`` maps a stream kind (``'trade'``, ``'depth'``, ``'kline'``,
    ``'account.orderUpdate'``, ...; the keys of ``messages.STREAM_PAYLOADS``) to the callable
    for its payloads; kinds left out count as ``unknown_stream``. ``symbols`` maps exchange
    symbols to normalized ones (a feed passes its ``exchange_symbol_mapping``); it is read, not
    copied, so later additions are seen. ``data_symbols`` (default: ``symbols``) resolves the
    ``data.s`` of streams whose name carries no symbol (``liquidation``). ``on_error`` receives server error frames; ``on_drop``
    (if given) is called with the reason of every dropped frame, for time-stamped metrics.
    ``dropped`` is what ``route``/``handle`` return for a dropped frame (a feed passes an
    already finished awaitable, so that every frame yields something to await).
    ``clock`` (monotonic seconds) and ``log_interval`` drive the warning rate limit.
    """

    __slots__ = ('_handlers', '_symbols', '_data_symbols', '_on_error', '_on_drop', '_dropped', '_clock', '_log_interval', '_log',
                 '_routes', '_decode', '_lenient', '_counts', '_last_logged', '_suppressed', '_budget', '_retired')

    def __init__(self, handlers: Mapping[str, Handler], symbols: Mapping[str, str], *,
                 data_symbols: Optional[Mapping[str, str]] = None,
                 on_error: Optional[ErrorHandler] = None, on_drop: Optional[Callable[[str], Any]] = None,
                 dropped: Any = None, clock: Callable[[], float] = time.monotonic,
                 log_interval: float = _DEFAULT_LOG_INTERVAL_S, logger: logging.Logger = LOG):
        unknown = sorted(set(handlers) - set(bp.STREAM_PAYLOADS))
        if unknown:
            raise ValueError(f'no Backpack stream kind named {unknown}; known kinds: '
                             f'{sorted(bp.STREAM_PAYLOADS)}')
        self._handlers: Dict[str, Handler] = dict(handlers)
        self._symbols = symbols
        self._data_symbols = symbols if data_symbols is None else data_symbols
        self._on_error = on_error
        self._on_drop = on_drop
        self._dropped = dropped
        self._clock = clock
        self._log_interval = log_interval
        self._log = logger
        self._routes: Dict[str, _Route] = {}
        self._decode = bp.ENVELOPE_DECODER.decode
        self._lenient = False
        self._counts: Dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._last_logged: Dict[Tuple[str, str], float] = {}
        self._suppressed: Dict[Tuple[str, str], int] = {}
        self._budget: Dict[str, list] = {}   # reason -> [interval start, warnings in it, streams not warned of]
        self._retired: set = set()           # exchange symbols removed while running: dropped without a warning

    # -- the subscribed-symbol table, changed while running ------------------------------------

    def add_symbol(self, exchange_symbol: str, symbol: str) -> None:
        """Route the streams of ``exchange_symbol`` (``SOL_USDC``) as ``symbol`` (``SOL-USDC``) from now on."""
        self._retired.discard(exchange_symbol)
        self._symbols[exchange_symbol] = symbol

    def remove_symbol(self, exchange_symbol: str) -> None:
        """Stop routing ``exchange_symbol``: its frames still in flight after an UNSUBSCRIBE are
        counted as ``unknown_symbol`` drops without a warning each."""
        self._symbols.pop(exchange_symbol, None)
        self._retired.add(exchange_symbol)
        for stream in [name for name, route in self._routes.items() if route.exchange_symbol == exchange_symbol]:
            del self._routes[stream]

    # -- observability ---------------------------------------------------------------------

    @property
    def drops(self) -> Dict[str, int]:
        """Frames dropped so far, per reason (a copy; every reason is present)."""
        return dict(self._counts)

    @property
    def dropped(self) -> int:
        """Total frames dropped so far."""
        return sum(self._counts.values())

    @property
    def lenient(self) -> bool:
        """True once a frame needed the lax decoder; from then on every frame uses it."""
        return self._lenient

    # -- hot path --------------------------------------------------------------------------

    def handle(self, frame: Any, conn: Any, receipt_ts: float) -> Any:
        """``route`` with the signature of a cryptofeed message handler (``conn`` is unused), so a
        feed can hand the router itself to cryptofeed's ConnectionHandler."""
        try:
            env = self._decode(frame)
        except (msgspec.DecodeError, TypeError):
            return self._recover(frame, receipt_ts)
        try:
            route = self._routes[env.stream]
        except KeyError:
            route = self._resolve(env.stream)
            if route is None:
                return self._dropped
        data = env.data
        if data.__class__ not in route.types:
            return self._wrong_payload(route, data)
        symbol = route.symbol
        if symbol is None and route.symbol_from_data:
            symbol = self._data_symbols.get(data.s)
            if symbol is None:
                return self._drop(UNKNOWN_SYMBOL, route.stream, data.s, 'symbol not in the symbol map')
        return route.handler(data, symbol, route.variant, receipt_ts)

    def route(self, frame: Any, receipt_ts: float) -> Any:
        """Decode ``frame`` (``str`` or bytes-like) and call its handler; return the handler's
        result, or ``dropped`` when the frame was dropped. Never raises for any frame."""
        return self.handle(frame, None, receipt_ts)

    # -- slow paths ------------------------------------------------------------------------

    def _resolve(self, stream: str) -> Optional[_Route]:
        """Build (and cache) the route of a stream name, or count why there is none."""
        kind, variant, exchange_symbol = split_stream(stream)
        handler = self._handlers.get(kind)
        if handler is None:
            self._drop(UNKNOWN_STREAM, stream, exchange_symbol, f'no handler for stream kind {kind!r}')
            return None
        source = _SYMBOL_SOURCE[kind]
        if kind in _NEEDS_VARIANT and variant is None:
            self._drop(UNKNOWN_STREAM, stream, exchange_symbol, f'{kind} stream without an interval')
            return None
        symbol = None
        symbol_from_data = False
        if exchange_symbol is None:
            if source == _NAME:
                self._drop(UNKNOWN_STREAM, stream, None, f'{kind} stream without a symbol')
                return None
            symbol_from_data = source == _NAME_OR_DATA
        else:
            if source == _NONE:
                self._drop(UNKNOWN_STREAM, stream, exchange_symbol, f'{kind} streams take no symbol')
                return None
            symbol = self._symbols.get(exchange_symbol)
            if symbol is None:
                # Not cached: the symbol map may still learn it.
                if exchange_symbol in self._retired:  # unsubscribed a moment ago: expected, not worth a warning
                    self._counts[UNKNOWN_SYMBOL] += 1
                    if self._on_drop is not None:
                        self._on_drop(UNKNOWN_SYMBOL)
                    return None
                self._drop(UNKNOWN_SYMBOL, stream, exchange_symbol, 'symbol not in the symbol map')
                return None
        route = _Route(stream, kind, handler, bp.PAYLOAD_TYPES[kind], symbol, exchange_symbol, variant,
                       symbol_from_data)
        if len(self._routes) >= _MAX_KEYS:
            self._routes.clear()
        self._routes[stream] = route
        return route

    def _wrong_payload(self, route: _Route, data: Any) -> None:
        event = type(data).__struct_config__.tag
        return self._drop(INVALID, route.stream, route.exchange_symbol,
                          f'a {event!r} payload does not belong on this stream')

    def _dispatch(self, stream: str, data: Any, receipt_ts: float) -> Any:
        # The tail of ``handle`` for frames decoded by the slow path; ``handle`` inlines it
        # because a call per frame is measurable there.
        route = self._routes.get(stream) or self._resolve(stream)
        if route is None:
            return self._dropped
        if data.__class__ not in route.types:
            return self._wrong_payload(route, data)
        symbol = route.symbol
        if symbol is None and route.symbol_from_data:
            symbol = self._data_symbols.get(data.s)
            if symbol is None:
                return self._drop(UNKNOWN_SYMBOL, route.stream, data.s, 'symbol not in the symbol map')
        return route.handler(data, symbol, route.variant, receipt_ts)

    def _recover(self, frame: Any, receipt_ts: float) -> Any:
        """The strict envelope decoder refused ``frame``: try the lax one, then classify."""
        try:
            env = bp.ENVELOPE_DECODER_LAX.decode(frame)
        except (msgspec.DecodeError, TypeError):
            env = None
        if env is not None:
            if not self._lenient:
                self._lenient = True
                self._decode = bp.ENVELOPE_DECODER_LAX.decode
                self._log.info('Backpack sent a value in a looser JSON type than documented (e.g. a number as a '
                               'string) on stream %s; decoding leniently from now on', env.stream)
            return self._dispatch(env.stream, env.data, receipt_ts)
        try:
            probe = bp.PROBE_DECODER.decode(frame)
        except msgspec.ValidationError:
            return self._drop(MALFORMED, '?', None, f'not a JSON object: {_excerpt(frame)}')
        except (msgspec.DecodeError, TypeError):
            return self._drop(MALFORMED, '?', None, f'not JSON: {_excerpt(frame)}')
        if _present(probe.error):
            return self._error_frame(frame, probe, receipt_ts)
        if probe.stream is None or not _present(probe.data):
            return self._drop(MALFORMED, probe.stream or '?', None,
                              f'not a {{stream, data}} envelope: {_excerpt(frame)}')
        stream = probe.stream
        route = self._routes.get(stream) or self._resolve(stream)
        if route is None:
            return self._dropped
        try:
            data = bp.PAYLOAD_DECODERS[route.kind].decode(probe.data)
        except msgspec.DecodeError as exc:
            return self._drop(INVALID, stream, route.exchange_symbol, f'{exc}: {_excerpt(probe.data)}')
        return self._dispatch(stream, data, receipt_ts)

    def _error_frame(self, frame: Any, probe: bp.Probe, receipt_ts: float) -> Any:
        try:
            error = bp.ERROR_DECODER.decode(frame)
        except msgspec.DecodeError:
            error = bp.ErrorFrame(error=bp.ErrorBody(message=_excerpt(probe.error)))
        code, message = error.error.code, error.error.message
        self._drop(ERROR_FRAME, '?', None, f'server error {code}: {message}', key_part=f"error {code}")
        result = None if self._on_error is None else self._on_error(error, receipt_ts)
        return self._dropped if result is None else result

    def _drop(self, reason: str, stream: str, symbol: Optional[str], detail: str,
              key_part: Optional[str] = None) -> None:
        """Count a dropped frame and warn, at most once per (reason, stream) per log interval
        (error frames carry no stream: their code takes its place in the rate-limit key)."""
        self._counts[reason] += 1
        if self._on_drop is not None:
            self._on_drop(reason)
        key = (reason, stream if key_part is None else key_part)
        now = self._clock()
        last = self._last_logged.get(key)
        if last is not None and now - last < self._log_interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return self._dropped
        budget = self._budget.get(reason)
        if budget is None or now - budget[0] >= self._log_interval:
            budget = self._budget[reason] = [now, 0, 0 if budget is None else budget[2]]
        if budget[1] >= _MAX_WARNINGS_PER_INTERVAL:
            budget[2] += 1  # a flood of distinct bad streams: count it, say so in the next warning
            return self._dropped
        budget[1] += 1
        if last is None and len(self._last_logged) >= _MAX_KEYS:
            self._last_logged.clear()
            self._suppressed.clear()
        self._last_logged[key] = now
        suppressed = self._suppressed.pop(key, 0)
        more = f' ({suppressed} more since the last report)' if suppressed else ''
        if budget[2]:
            more += f' ({budget[2]} more {reason} frames of other streams not reported one by one)'
            budget[2] = 0
        self._log.warning('Backpack frame dropped (%s): stream=%s symbol=%s: %s%s', reason, _clip(stream),
                          _clip(symbol), _clip(detail), more)
        return self._dropped


def _clip(text: Optional[str]) -> Optional[str]:
    """``text`` cut to a loggable length (it may come from the wire)."""
    if text is None or len(text) <= _MAX_LOGGED_CHARS:
        return text
    return f'{text[:_MAX_LOGGED_CHARS]}... ({len(text)} characters)'
