"""ED25519 request signing for Backpack (backpack-api.md section 4), free of I/O.

Use ``parse_private_key`` to turn a user-supplied secret (hex or base64 of the 32-byte seed)
into a seed, and ``BackpackSigner`` to build the signing string, REST headers and the
``signature`` array of a private WebSocket SUBSCRIBE. The clock is injected so that tests
and clock-offset correction need no patching. Nothing here logs or prints key material.
"""
from __future__ import annotations

import base64
import binascii
import time
from decimal import Decimal
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Union

from nacl.signing import SigningKey

from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError

__all__ = [
    'SEED_BYTES', 'DEFAULT_WINDOW_MS', 'MAX_EXCHANGE_WINDOW_MS', 'KeyFormat', 'parse_private_key',
    'parse_public_key', 'match_public_key', 'public_key_from_seed', 'render_value', 'signing_string',
    'BackpackSigner',
]

SEED_BYTES = 32
DEFAULT_WINDOW_MS = 5000
MAX_EXCHANGE_WINDOW_MS = 60000

Params = Union[Mapping[str, Any], Sequence[Mapping[str, Any]], None]


class KeyFormat:
    HEX = 'hex'
    BASE64 = 'base64'


def _decode_key_text(text: str, what: str) -> tuple[bytes, str]:
    """Decode hex or standard base64 (padding optional); return (bytes, format)."""
    text = text.strip()
    if not text:
        raise BackpackConfigError(f'{what} is empty')
    if len(text) % 2 == 0 and all(c in '0123456789abcdefABCDEF' for c in text) and len(text) in (64, 128):
        return bytes.fromhex(text), KeyFormat.HEX
    padded = text + '=' * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True), KeyFormat.BASE64
    except (binascii.Error, ValueError):
        raise BackpackConfigError(
            f'{what} is neither hex nor standard base64; expected the 32-byte ED25519 key as '
            f'64 hex characters or 44 base64 characters') from None


def public_key_from_seed(seed: bytes) -> bytes:
    return bytes(SigningKey(seed).verify_key)


def parse_private_key(value: Union[str, bytes], what: str = 'private_key') -> tuple[bytes, str]:
    """Return ``(seed, format)`` for an ED25519 secret.

    Accepts the 32-byte seed as hex or base64 (Backpack's own format), or raw bytes. A 64-byte
    libsodium-style secret (seed followed by its public key) is accepted only when its second
    half really is the public key of its first half.
    """
    if isinstance(value, (bytes, bytearray)):
        raw, fmt = bytes(value), 'bytes'
    else:
        raw, fmt = _decode_key_text(str(value), what)
    if len(raw) == 2 * SEED_BYTES:
        seed, tail = raw[:SEED_BYTES], raw[SEED_BYTES:]
        if public_key_from_seed(seed) != tail:
            raise BackpackConfigError(
                f'{what} is 64 bytes but its second half is not the public key of its first half; '
                f'give the 32-byte ED25519 seed instead')
        return seed, fmt
    if len(raw) != SEED_BYTES:
        raise BackpackConfigError(
            f'{what} decodes to {len(raw)} bytes; an ED25519 private key (seed) is {SEED_BYTES} bytes')
    return raw, fmt


def parse_public_key(value: str, what: str = 'public_key') -> tuple[bytes, str]:
    """Return ``(public_key_bytes, format)`` for a 32-byte ED25519 verifying key in hex or base64."""
    raw, fmt = _decode_key_text(str(value), what)
    if len(raw) != SEED_BYTES:
        raise BackpackConfigError(
            f'{what} decodes to {len(raw)} bytes; an ED25519 public key is {SEED_BYTES} bytes')
    return raw, fmt


def match_public_key(value: str, seed: bytes, what: str = 'public_key',
                     private: str = 'private_key') -> tuple[Optional[str], Optional[str]]:
    """``(format, problem)`` of an API / public key given beside the private key ``seed``.

    ``format`` is the key's format, None when it cannot be read. ``problem`` is None when ``value``
    is the public key of ``seed``, else what is wrong: unreadable, swapped with the private key,
    or from another key pair. ``what`` and ``private`` name the two keys in the messages.
    """
    try:
        given, fmt = parse_public_key(value, what)
    except BackpackConfigError as exc:
        return None, f'{exc}. On Backpack the API key is the base64 public key of the private key'
    derived = public_key_from_seed(seed)
    if given == derived:
        return fmt, None
    if public_key_from_seed(given) == seed:
        return fmt, (f'{what} and {private} look swapped: the value given as {what} is a private key and the one '
                     f'given as {private} is its public key; put the secret in {private}')
    return fmt, (f'{what} does not match the public key derived from {private} '
                 f'({base64.b64encode(derived).decode()}). On Backpack the API key is the base64 public key '
                 f'of the private key; check that both come from the same key pair')


def render_value(value: Any) -> str:
    """Render a parameter value the way Backpack signs it: raw, booleans lower-case, no exponents."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, Decimal):
        return format(value, 'f')
    if isinstance(value, float):
        return format(Decimal(repr(value)), 'f')
    return str(value)


def _sorted_pairs(params: Mapping[str, Any]) -> Iterable[str]:
    for key in sorted(params):
        value = params[key]
        if value is None:
            continue
        yield f'{key}={render_value(value)}'


def signing_string(instruction: str, params: Params, timestamp_ms: int, window_ms: int) -> str:
    """The exact bytes Backpack verifies.

    ``params`` is a mapping (query or JSON body) or, for batch order placement, a sequence of
    mappings: each item then contributes ``instruction=<name>&<its sorted pairs>``.
    """
    if params is None or isinstance(params, Mapping):
        parts = [f'instruction={instruction}', *_sorted_pairs(params or {})]
    else:
        parts = []
        for item in params:
            parts.append(f'instruction={instruction}')
            parts.extend(_sorted_pairs(item))
    parts.append(f'timestamp={int(timestamp_ms)}')
    parts.append(f'window={int(window_ms)}')
    return '&'.join(parts)


class BackpackSigner:
    """Signs Backpack instructions with one ED25519 key.

    ``clock`` returns Unix seconds (default ``time.time``); ``clock_offset_ms`` is added to it,
    e.g. the server-minus-local difference measured with ``/api/v1/time``.
    """

    __slots__ = ('_key', 'public_key', 'window_ms', 'clock', 'clock_offset_ms')

    def __init__(self, private_key: Union[str, bytes], *, window_ms: int = DEFAULT_WINDOW_MS,
                 clock: Callable[[], float] = time.time, clock_offset_ms: int = 0):
        seed, _ = parse_private_key(private_key)
        if not 1 <= int(window_ms) <= MAX_EXCHANGE_WINDOW_MS:
            raise BackpackConfigError(f'window_ms must be within 1..{MAX_EXCHANGE_WINDOW_MS}, got {window_ms}')
        self._key = SigningKey(seed)
        self.public_key = base64.b64encode(bytes(self._key.verify_key)).decode()
        self.window_ms = int(window_ms)
        self.clock = clock
        self.clock_offset_ms = int(clock_offset_ms)

    def __repr__(self) -> str:
        return f'BackpackSigner(public_key={self.public_key!r}, window_ms={self.window_ms})'

    def now_ms(self) -> int:
        return int(self.clock() * 1000) + self.clock_offset_ms

    def sign(self, message: str) -> str:
        """Base64 of the 64-byte ED25519 signature over ``message`` (UTF-8)."""
        return base64.b64encode(self._key.sign(message.encode()).signature).decode()

    def _stamp(self, timestamp_ms: Optional[int], window_ms: Optional[int]) -> tuple[int, int]:
        return (self.now_ms() if timestamp_ms is None else int(timestamp_ms),
                self.window_ms if window_ms is None else int(window_ms))

    def rest_headers(self, instruction: str, params: Params = None, *, timestamp_ms: Optional[int] = None,
                     window_ms: Optional[int] = None) -> dict[str, str]:
        """Headers for a signed REST call: ``X-API-Key``, ``X-Signature``, ``X-Timestamp``, ``X-Window``."""
        ts, window = self._stamp(timestamp_ms, window_ms)
        return {
            'X-API-Key': self.public_key,
            'X-Signature': self.sign(signing_string(instruction, params, ts, window)),
            'X-Timestamp': str(ts),
            'X-Window': str(window),
        }

    def ws_signature(self, *, timestamp_ms: Optional[int] = None, window_ms: Optional[int] = None) -> List[str]:
        """``[verifying_key_b64, signature_b64, timestamp_ms, window_ms]`` for a private SUBSCRIBE."""
        ts, window = self._stamp(timestamp_ms, window_ms)
        return [self.public_key, self.sign(signing_string('subscribe', None, ts, window)), str(ts), str(window)]
