"""Server-side verification of Backpack signed requests for the simulator (backpack-api.md §4, §7).

Use this module where the simulator receives a signed REST request or a private WebSocket
SUBSCRIBE. It rebuilds the signing string from what actually arrived (method, path, query,
raw body, headers) instead of trusting any client helper, checks the ED25519 signature with
pynacl, and applies the window rules. It is pure: the current time is passed in and nothing
here touches a socket.

Decisions the API reference leaves open, made here once:

* ``X-Window`` must be an integer in ``1..60000``; outside that range -> 400
  ``INVALID_CLIENT_REQUEST``. Missing -> 5000, and ``window=5000`` is still signed.
* A timestamp older than ``now - window`` -> 401 ``UNAUTHORIZED`` ("Request has expired");
  more than ``FUTURE_TOLERANCE_MS`` ahead of the server clock -> 401 ``UNAUTHORIZED``.
* A signature that does not verify (or is not 64 bytes of base64) -> 401 ``INVALID_SIGNATURE``.
* Missing ``X-API-Key``/``X-Signature``/``X-Timestamp`` -> 401 ``UNAUTHORIZED``; a key that is
  not base64 of 32 bytes -> 400 ``INVALID_CLIENT_REQUEST``; in strict mode a well-formed but
  unregistered key -> 401 ``UNAUTHORIZED``.
* On the WebSocket every failure is the observed error ``4003 Invalid signature``; ``detail``
  keeps the precise reason for logs and tests.
"""
from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any, Iterable, Mapping, Optional, Sequence

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

__all__ = [
    'DEFAULT_WINDOW_MS', 'MAX_WINDOW_MS', 'FUTURE_TOLERANCE_MS', 'WS_INVALID_SIGNATURE', 'INSTRUCTIONS',
    'SimAuthError', 'KeyRegistry', 'instruction_for', 'decode_api_key', 'rest_signing_string',
    'verify_rest', 'verify_ws',
]

DEFAULT_WINDOW_MS = 5000
MAX_WINDOW_MS = 60000
FUTURE_TOLERANCE_MS = 1000
WS_INVALID_SIGNATURE = 4003

_KEY_BYTES = 32
_SIGNATURE_BYTES = 64

#: (HTTP method, path) -> instruction name, as listed in backpack-api.md §4.
INSTRUCTIONS: dict[tuple[str, str], str] = {
    ('GET', '/api/v1/account'): 'accountQuery',
    ('PATCH', '/api/v1/account'): 'accountUpdate',
    ('GET', '/api/v1/capital'): 'balanceQuery',
    ('GET', '/api/v1/capital/collateral'): 'collateralQuery',
    ('GET', '/api/v1/order'): 'orderQuery',
    ('POST', '/api/v1/order'): 'orderExecute',
    ('DELETE', '/api/v1/order'): 'orderCancel',
    ('GET', '/api/v1/orders'): 'orderQueryAll',
    ('POST', '/api/v1/orders'): 'orderExecute',
    ('DELETE', '/api/v1/orders'): 'orderCancelAll',
    ('GET', '/api/v1/position'): 'positionQuery',
    ('GET', '/wapi/v1/history/fills'): 'fillHistoryQueryAll',
    ('GET', '/wapi/v1/history/orders'): 'orderHistoryQueryAll',
    ('GET', '/wapi/v1/history/funding'): 'fundingHistoryQueryAll',
    ('GET', '/wapi/v1/history/position'): 'positionHistoryQueryAll',
    ('GET', '/wapi/v1/history/settlement'): 'settlementHistoryQueryAll',
    ('GET', '/wapi/v1/history/borrowLend'): 'borrowHistoryQueryAll',
    ('GET', '/wapi/v1/history/interest'): 'interestHistoryQueryAll',
    ('GET', '/wapi/v1/history/borrowLend/positions'): 'borrowPositionHistoryQueryAll',
    ('GET', '/wapi/v1/history/dust'): 'dustHistoryQueryAll',
    ('GET', '/api/v1/account/limits/borrow'): 'maxBorrowQuantity',
    ('GET', '/api/v1/account/limits/order'): 'maxOrderQuantity',
    ('GET', '/api/v1/account/limits/withdrawal'): 'maxWithdrawalQuantity',
    ('GET', '/api/v1/borrowLend/positions'): 'borrowLendPositionQuery',
    ('POST', '/api/v1/borrowLend'): 'borrowLendExecute',
    ('GET', '/wapi/v1/capital/deposits'): 'depositQueryAll',
    ('GET', '/wapi/v1/capital/deposit/address'): 'depositAddressQuery',
    ('GET', '/wapi/v1/capital/withdrawals'): 'withdrawalQueryAll',
    ('POST', '/wapi/v1/capital/withdrawals'): 'withdraw',
    ('POST', '/api/v1/rfq'): 'rfqSubmit',
    ('POST', '/api/v1/rfq/quote'): 'quoteSubmit',
    ('POST', '/api/v1/rfq/accept'): 'quoteAccept',
    ('POST', '/api/v1/rfq/refresh'): 'rfqRefresh',
    ('POST', '/api/v1/rfq/cancel'): 'rfqCancel',
    ('GET', '/api/v1/rfqs'): 'rfqQuery',
    ('GET', '/api/v1/strategy'): 'strategyQuery',
    ('POST', '/api/v1/strategy'): 'strategyCreate',
    ('DELETE', '/api/v1/strategy'): 'strategyCancel',
    ('GET', '/api/v1/strategies'): 'strategyQueryAll',
    ('DELETE', '/api/v1/strategies'): 'strategyCancelAll',
}


class SimAuthError(Exception):
    """A request or subscription the simulator refuses.

    ``status`` is the HTTP status to answer with, ``code`` the ``ApiErrorCode`` string (REST) or
    the integer WebSocket error code, ``message`` the text clients see, ``detail`` the precise
    reason (equal to ``message`` on REST).
    """

    def __init__(self, status: int, code: Any, message: str, detail: Optional[str] = None):
        super().__init__(f'{status} {code}: {detail or message}')
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or message

    def body(self) -> dict[str, Any]:
        """The REST error body ``{"code", "message"}``."""
        return {'code': self.code, 'message': self.message}

    def ws_frame(self, request_id: Any = None) -> dict[str, Any]:
        """The WebSocket error frame ``{"id", "error": {"code", "message"}}``."""
        return {'id': request_id, 'error': {'code': self.code, 'message': self.message}}


class KeyRegistry:
    """Which API keys the simulator accepts.

    Open mode (``strict_keys=None``): every well-formed ED25519 public key is its own account.
    Strict mode: only the registered base64 keys; ``register`` adds one at run time.
    """

    __slots__ = ('_strict',)

    def __init__(self, strict_keys: Optional[Iterable[str]] = None):
        self._strict = None if strict_keys is None else {str(k) for k in strict_keys}

    @property
    def strict(self) -> bool:
        return self._strict is not None

    def register(self, api_key: str) -> None:
        decode_api_key(api_key)
        if self._strict is not None:
            self._strict.add(api_key)

    def admits(self, api_key: str) -> bool:
        return self._strict is None or api_key in self._strict


_OPEN = KeyRegistry()


def instruction_for(method: str, path: str) -> Optional[str]:
    """The instruction name signed for ``method path``, or None when the endpoint is not private."""
    if len(path) > 1 and path.endswith('/'):
        path = path[:-1]
    return INSTRUCTIONS.get((method.upper(), path))


def decode_api_key(api_key: str) -> bytes:
    """The 32 raw bytes of a base64 ED25519 public key; ``SimAuthError`` 400 when malformed."""
    try:
        raw = base64.b64decode(api_key, validate=True)
    except (binascii.Error, ValueError):
        raise SimAuthError(400, 'INVALID_CLIENT_REQUEST', 'Invalid API key: not standard base64') from None
    if len(raw) != _KEY_BYTES:
        raise SimAuthError(400, 'INVALID_CLIENT_REQUEST',
                           f'Invalid API key: decodes to {len(raw)} bytes, expected {_KEY_BYTES}')
    return raw


def _render(value: Any) -> str:
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(',', ':'), default=str)
    return str(value)


def _pairs(items: Iterable[tuple[str, Any]]) -> list[str]:
    return [f'{k}={_render(v)}' for k, v in sorted(items, key=lambda kv: kv[0]) if v is not None]


def rest_signing_string(instruction: str, query: Iterable[tuple[str, str]], body: Any,
                        timestamp: str, window: str) -> str:
    """The string a client must have signed for this request.

    ``query`` is the decoded query pairs, ``body`` the parsed JSON body (object, array or None).
    Query pairs come first, sorted; then the body: an object's pairs sorted; an array (batch
    order placement) contributes ``instruction=<name>&<sorted pairs>`` per item, the first
    item sharing the leading ``instruction=<name>``.
    """
    parts = [f'instruction={instruction}', *_pairs(query)]
    if isinstance(body, list):
        for index, item in enumerate(body):
            if index:
                parts.append(f'instruction={instruction}')
            parts.extend(_pairs(item.items() if isinstance(item, dict) else ()))
    elif isinstance(body, dict):
        parts.extend(_pairs(body.items()))
    parts.append(f'timestamp={timestamp}')
    parts.append(f'window={window}')
    return '&'.join(parts)


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def _parse_int(text: str, what: str) -> int:
    text = text.strip()
    if not text or not (text.isdigit() or (text[0] == '-' and text[1:].isdigit())):
        raise SimAuthError(400, 'INVALID_CLIENT_REQUEST', f'{what} must be an integer number of milliseconds')
    return int(text)


def _parse_body(body: Optional[bytes]) -> Any:
    if not body or not body.strip():
        return None
    try:
        parsed = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise SimAuthError(400, 'INVALID_CLIENT_REQUEST', 'Request body is not valid JSON') from None
    if not isinstance(parsed, (dict, list)):
        raise SimAuthError(400, 'INVALID_CLIENT_REQUEST', 'Request body must be a JSON object or array')
    return parsed


def _check_window(timestamp: int, window: int, now_ms: int, future_tolerance_ms: int, error) -> None:
    if now_ms - timestamp > window:
        raise error(f'Request has expired: timestamp {timestamp} is {now_ms - timestamp} ms old, window {window} ms')
    if timestamp - now_ms > future_tolerance_ms:
        raise error(f'Request timestamp {timestamp} is {timestamp - now_ms} ms in the future')


def _verify_signature(key: bytes, message: str, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(signature) != _SIGNATURE_BYTES:
        return False
    try:
        VerifyKey(key).verify(message.encode(), signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def verify_rest(method: str, path: str, query: Mapping[str, str], body: Optional[bytes],
                headers: Mapping[str, str], now_ms: int, *, accounts: Optional[KeyRegistry] = None,
                future_tolerance_ms: int = FUTURE_TOLERANCE_MS) -> str:
    """Check a signed REST request and return its API key, or raise ``SimAuthError``.

    ``query`` may be a multi-mapping (every pair is signed); ``body`` is the raw request body.
    """
    accounts = accounts or _OPEN
    instruction = instruction_for(method, path)
    if instruction is None:
        raise SimAuthError(404, 'RESOURCE_NOT_FOUND', f'No private endpoint {method.upper()} {path}')
    api_key = _header(headers, 'X-API-Key')
    signature = _header(headers, 'X-Signature')
    timestamp_text = _header(headers, 'X-Timestamp')
    missing = [name for name, value in (('X-API-Key', api_key), ('X-Signature', signature),
                                        ('X-Timestamp', timestamp_text)) if not value]
    if missing:
        raise SimAuthError(401, 'UNAUTHORIZED', f'Missing authentication header(s): {", ".join(missing)}')
    key = decode_api_key(api_key)
    timestamp = _parse_int(timestamp_text, 'X-Timestamp')
    window_text = _header(headers, 'X-Window')
    if window_text is None or not window_text.strip():
        window = DEFAULT_WINDOW_MS
    else:
        window = _parse_int(window_text, 'X-Window')
    if not 1 <= window <= MAX_WINDOW_MS:
        raise SimAuthError(400, 'INVALID_CLIENT_REQUEST',
                           f'X-Window must be within 1..{MAX_WINDOW_MS} ms, got {window}')
    if not accounts.admits(api_key):
        raise SimAuthError(401, 'UNAUTHORIZED', 'API key is not registered')
    parsed = _parse_body(body)
    query_items = list(query.items())
    message = rest_signing_string(instruction, query_items, parsed, str(timestamp), str(window))
    if not _verify_signature(key, message, signature):
        raise SimAuthError(401, 'INVALID_SIGNATURE', 'Invalid signature')
    _check_window(timestamp, window, now_ms, future_tolerance_ms,
                  lambda detail: SimAuthError(401, 'UNAUTHORIZED', detail))
    return api_key


def _ws_error(detail: str) -> SimAuthError:
    return SimAuthError(401, WS_INVALID_SIGNATURE, 'Invalid signature', detail)


def _ws_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _ws_error(f'{what} must be an integer string')
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise _ws_error(f'{what} must be an integer string')


def verify_ws(signature: Optional[Sequence[Any]], now_ms: int, *, accounts: Optional[KeyRegistry] = None,
              future_tolerance_ms: int = FUTURE_TOLERANCE_MS) -> str:
    """Check the ``signature`` array of a private SUBSCRIBE and return its API key.

    Expects ``[api_key_b64, signature_b64, timestamp_ms, window_ms]`` over
    ``instruction=subscribe&timestamp=<ts>&window=<window>``. Every failure raises
    ``SimAuthError`` with code 4003.
    """
    accounts = accounts or _OPEN
    if signature is None:
        raise _ws_error('private stream requested without a signature')
    if not isinstance(signature, (list, tuple)) or len(signature) != 4:
        raise _ws_error('signature must be [api_key, signature, timestamp, window]')
    api_key, signature_b64, timestamp_value, window_value = signature
    if not isinstance(api_key, str) or not isinstance(signature_b64, str):
        raise _ws_error('api key and signature must be base64 strings')
    try:
        key = decode_api_key(api_key)
    except SimAuthError as exc:
        raise _ws_error(exc.message) from None
    timestamp = _ws_int(timestamp_value, 'timestamp')
    window = _ws_int(window_value, 'window')
    if not 1 <= window <= MAX_WINDOW_MS:
        raise _ws_error(f'window must be within 1..{MAX_WINDOW_MS} ms, got {window}')
    if not accounts.admits(api_key):
        raise _ws_error('API key is not registered')
    message = f'instruction=subscribe&timestamp={timestamp}&window={window}'
    if not _verify_signature(key, message, signature_b64):
        raise _ws_error('signature does not verify')
    _check_window(timestamp, window, now_ms, future_tolerance_ms, _ws_error)
    return api_key
