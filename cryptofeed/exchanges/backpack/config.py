"""``BackpackConfig``: every setting of the Backpack integration, validated once, at construction.

Use this module to build the configuration a ``BackpackFeed`` (or the REST client, or the
credential check) runs with. Build it directly, or with one of the loaders:

* ``BackpackConfig.from_dict(d)``: our field names (cryptofeed's ``key_id`` / ``key_secret`` /
  ``key_passphrase`` are accepted as well);
* ``BackpackConfig.from_cryptofeed_config(cfg)``: the ``backpack:`` section of a cryptofeed
  ``Config``, of a YAML file, or of a dict holding a whole cryptofeed configuration;
* ``BackpackConfig.from_env(environ, **overrides)``: the ``BACKPACK_*`` environment variables;
* ``BackpackConfig.coerce(value)``: whatever a feed received as its ``config=`` argument.

The model is frozen and rejects unknown options. Every problem is reported as one
``BackpackConfigError`` naming the option and saying what to change (its ``problems`` attribute
lists ``(location, message)`` pairs). Secrets (the private key,
the passphrase, proxy passwords) are never part of ``repr``, ``str``, ``model_dump()``, error
messages or log lines; call ``get_secret_value()`` where the real value is needed.

Proxy precedence, for REST and WebSocket separately:

1. ``proxies.rest`` / ``proxies.websocket``;
2. ``proxies.url`` (both transports);
3. the environment: the first non-empty of ``HTTPS_PROXY``, ``https_proxy``, ``ALL_PROXY``,
   ``all_proxy``, unless ``NO_PROXY`` / ``no_proxy`` matches the target host (for instance
   ``NO_PROXY=127.0.0.1,localhost`` keeps the local simulator direct);
4. no proxy.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import ssl
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, Union, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel, ConfigDict, Field, Secret, SecretStr, ValidationError, ValidationInfo, field_validator,
    model_validator,
)

from cryptofeed.exchanges.backpack.auth import (
    DEFAULT_WINDOW_MS, BackpackSigner, match_public_key, parse_private_key, public_key_from_seed,
)
from cryptofeed.exchanges.backpack.errors import BackpackConfigError

__all__ = [
    'DEFAULT_REST_URL', 'DEFAULT_WS_URL', 'ENV_VARS', 'PROXY_ENV_VARS', 'NO_PROXY_ENV_VARS', 'no_proxy_matches', 'PROXY_SCHEMES', 'ProxyURL',
    'BackpackAuth', 'BackpackProxies', 'BackpackConfig', 'mask_url', 'is_loopback_host',
]

LOG = logging.getLogger('feedhandler')

DEFAULT_REST_URL = 'https://api.backpack.exchange'
DEFAULT_WS_URL = 'wss://ws.backpack.exchange'
MAX_WINDOW_MS = 10000
MAX_CLOCK_OFFSET_MS = 60000
PROXY_SCHEMES = ('http', 'https', 'socks5', 'socks5h')
PROXY_ENV_VARS = ('HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy')
NO_PROXY_ENV_VARS = ('NO_PROXY', 'no_proxy')

# Environment variable -> option path, read by ``BackpackConfig.from_env``.
ENV_VARS: Dict[str, str] = {
    'BACKPACK_API_KEY': 'auth.api_key',
    'BACKPACK_PUBLIC_KEY': 'auth.public_key',
    'BACKPACK_PRIVATE_KEY': 'auth.private_key',
    'BACKPACK_WINDOW_MS': 'window_ms',
    'BACKPACK_REST_URL': 'rest_url',
    'BACKPACK_WS_URL': 'ws_url',
    'BACKPACK_CA_FILE': 'ca_file',
}

# cryptofeed's own credential names in a ``backpack:`` section -> our ``auth`` fields.
_CRYPTOFEED_KEY_NAMES = {'key_id': 'api_key', 'key_secret': 'private_key', 'key_passphrase': 'passphrase'}
# Keys of the ``backpack:`` section that belong to other readers (cryptofeed's Exchange, the feed
# registry) and are not configuration options of ours.
_SECTION_KEYS_READ_ELSEWHERE = frozenset({'account_name', 'native_enabled'})


# --------------------------------------------------------------------------------------------
# URL helpers
# --------------------------------------------------------------------------------------------

def is_loopback_host(host: Optional[str]) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (brackets allowed)."""
    if not host:
        return False
    host = host.strip().strip('[]').rstrip('.').lower()
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe to log and to put in messages.

    A URL that cannot be parsed reliably is not echoed at all.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port, which often means a mangled password
    except ValueError:
        return '<unparseable URL>'
    if parts.password is None:
        return url
    host = parts.netloc.rpartition('@')[2]
    user = parts.username or ''
    return parts._replace(netloc=f'{user}:***@{host}').geturl()


def _validate_service_url(value: str, field: str, secure: str, plain: str) -> str:
    """Check a REST/WS endpoint and return it without a trailing slash."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f'{field} is not a valid URL; expected {secure}://host[:port][/path]') from None
    scheme = parts.scheme.lower()
    if scheme not in (secure, plain):
        raise ValueError(
            f'{field} must start with {secure}:// (or {plain}:// for a loopback host), '
            f'got scheme {parts.scheme + "://" if parts.scheme else "none"}')
    if not parts.hostname:
        raise ValueError(f'{field} has no host; expected {secure}://host[:port][/path]')
    if parts.username is not None or parts.password is not None:
        raise ValueError(f'{field} must not contain a user name or password')
    if parts.query or parts.fragment:
        raise ValueError(f'{field} must not contain a query string or fragment: {mask_url(text)}')
    if scheme == plain and not is_loopback_host(parts.hostname):
        raise ValueError(
            f'{field} uses {plain}:// for {parts.hostname}, but unencrypted connections are only allowed '
            f'to loopback hosts (127.0.0.0/8, ::1, localhost), e.g. the local simulator; use {secure}://')
    if port == 0:
        raise ValueError(f'{field} has port 0; give the port the server listens on')
    return f'{scheme}://{parts.netloc}{parts.path.rstrip("/")}'


def _validate_proxy_url(url: str, where: str) -> str:
    """Check a proxy URL; messages never show its password. Returns ``scheme://netloc``, scheme lower-cased."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018
    except ValueError:
        raise ValueError(
            f'{where} is not a valid proxy URL; expected scheme://[user:password@]host:port '
            f'(percent-encode special characters in the password)') from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(
            f'{where} has unsupported scheme {parts.scheme + "://" if parts.scheme else "(none)"}; '
            f'use http:// or https:// (HTTP CONNECT), socks5:// or socks5h:// (SOCKS5)')
    if not parts.hostname:
        raise ValueError(f'{where} has no host: {mask_url(text)}')
    if parts.path not in ('', '/') or parts.query or parts.fragment:
        raise ValueError(
            f'{where} must be scheme://[user:password@]host:port with nothing after the port '
            f'(percent-encode "/", "?", "#" and "@" inside a password)')
    return f'{scheme}://{parts.netloc}'


class ProxyURL(Secret[str]):
    """A proxy URL whose password is a secret: ``repr``/``str``/JSON show it as ``***``.

    ``get_secret_value()`` returns the full URL for the transport.
    """

    def _display(self) -> str:
        return mask_url(self.get_secret_value())

    @property
    def scheme(self) -> str:
        return urlsplit(self.get_secret_value()).scheme.lower()


class _Redacted:
    """Stands in for a value pydantic would otherwise copy into an error (unknown options)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return '<redacted>'


_REDACTED = _Redacted()


# --------------------------------------------------------------------------------------------
# Error reporting
# --------------------------------------------------------------------------------------------

Problem = Tuple[Tuple[Any, ...], str]


class _InvalidConfig(BackpackConfigError):
    """Raised by the models: one message for all problems, and ``problems`` as (location, text)."""

    def __init__(self, problems: List[Problem], source: Optional[str] = None,
                 labels: Optional[Mapping[str, str]] = None):
        self.problems = problems
        lines = []
        for loc, text in problems:
            path = '.'.join(str(part) for part in loc)
            label = f'{path} (from {labels[path]})' if labels and path in labels else path
            if not label:
                lines.append(text)
                continue
            # Messages that already start with the option's name read better without a prefix.
            for name in (path, str(loc[-1])):
                if text.startswith(name + ' '):
                    lines.append(label + text[len(name):])
                    break
            else:
                lines.append(f'{label}: {text}')
        where = f' from {source}' if source else ''
        if len(lines) == 1:
            message = f'invalid Backpack configuration{where}: {lines[0]}'
        else:
            message = f'invalid Backpack configuration{where}:\n' + '\n'.join(f'  - {line}' for line in lines)
        super().__init__(message)


def _problems(exc: ValidationError, model: Type[BaseModel]) -> List[Problem]:
    """(location, text) for every error of ``exc``, without any input value."""
    problems: List[Problem] = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(err['loc'])
        owner = _owner_model(model, loc)
        field = str(loc[-1]) if loc else ''
        info = owner.model_fields.get(field)
        description = info.description if info is not None else None
        kind, text = err['type'], err['msg']
        if kind == 'value_error':
            text = text.removeprefix('Value error, ')
        elif kind == 'missing':
            text = 'is required' + (f' ({description})' if description else '')
        elif kind == 'extra_forbidden':
            text = f'is not a known option; valid options here: {", ".join(owner.model_fields)}'
        elif description:
            text = f'{text} ({description})'
        problems.append((loc, text))
    return problems


def _owner_model(model: Type[BaseModel], loc: Tuple[Any, ...]) -> Type[BaseModel]:
    """The model class declaring the last element of ``loc`` (walking nested model fields)."""
    owner = model
    for part in loc[:-1]:
        info = owner.model_fields.get(str(part))
        if info is None:
            break
        nested = [arg for arg in (info.annotation, *get_args(info.annotation))
                  if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if not nested:
            break
        owner = nested[0]
    return owner


class _ConfigModelMeta(type(BaseModel)):  # type: ignore[misc]
    """Turns the ValidationError of a direct ``Model(...)`` call into a ``BackpackConfigError``.

    Done in the metaclass rather than in ``__init__`` so that pydantic still validates nested
    models field by field (an ``__init__`` override would make it call ``__init__`` for them and
    report their errors against the whole, unmasked input).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            raise _InvalidConfig(_problems(exc, cls)) from None


class _FrozenModel(BaseModel, metaclass=_ConfigModelMeta):
    """Frozen, strict about unknown options, and never echoing input values in errors.

    Secrets are wrapped (``SecretStr``, ``ProxyURL``) and unknown options replaced by a
    placeholder before validation, so even ``ValidationError.errors()`` cannot carry them.
    """

    model_config = ConfigDict(frozen=True, extra='forbid', hide_input_in_errors=True)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any):  # type: ignore[override]
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _InvalidConfig(_problems(exc, cls)) from None

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any):  # type: ignore[override]
        """Parse the JSON first and validate in Python mode, where secrets are wrapped early."""
        try:
            data = json.loads(json_data)
        except ValueError as exc:
            position = getattr(exc, 'pos', None)
            raise BackpackConfigError(f'{cls.__name__}: not valid JSON (at position {position})') from None
        return cls.model_validate(data, *args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise BackpackConfigError(
            f'{type(self).__name__} is frozen: cannot set {name!r}; build a new one, e.g. with .replace()')

    def __delattr__(self, name: str) -> None:
        raise BackpackConfigError(f'{type(self).__name__} is frozen: cannot delete {name!r}')

    @classmethod
    def _redact_unknown(cls, data: Mapping[str, Any]) -> Dict[str, Any]:
        return {key: (value if key in cls.model_fields else _REDACTED) for key, value in data.items()}

    def replace(self, **changes: Any):
        """A validated copy with ``changes`` applied (secrets carry over as they are)."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        current.update(changes)
        return type(self)(**current)


def _secret_input(value: Any) -> Any:
    """Wrap a raw secret before validation so that no error can carry it in clear."""
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, (bytes, bytearray)):
        # A raw seed (or seed + public key) given as bytes: base64 is the canonical text form.
        return SecretStr(base64.b64encode(bytes(value)).decode())
    if value is None or isinstance(value, SecretStr):
        return value
    # Anything else fails the string check; YAML turns an unquoted all-digit hex key into a number.
    return _REDACTED


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

class BackpackAuth(_FrozenModel):
    """API credentials: an ED25519 key pair.

    ``private_key`` is the 32-byte ED25519 seed as hex (64 characters) or base64 (44 characters,
    Backpack's format); it is stored normalized to base64. The public key is derived from it.
    On Backpack the API key *is* the base64 public key, so ``api_key`` and ``public_key`` are
    optional cross-checks: when given (hex or base64) they must match the derived key, and after
    validation both hold the derived base64 key.

    ``passphrase`` is accepted for compatibility with configurations written for other
    exchanges and is ignored: Backpack has no passphrase.
    """

    # private_key is declared first: the api_key / public_key checks read it from ``info.data``.
    private_key: SecretStr = Field(
        description='ED25519 private key (32-byte seed) as base64 or hex text; quote it in YAML')
    api_key: Optional[str] = Field(
        default=None, validate_default=True,
        description='Backpack API key = base64 ED25519 public key; derived when omitted')
    public_key: Optional[str] = Field(
        default=None, validate_default=True,
        description='ED25519 public key as base64 or hex; derived when omitted')
    passphrase: Optional[SecretStr] = Field(default=None, description='ignored: Backpack has no passphrase')

    @model_validator(mode='before')
    @classmethod
    def _protect_inputs(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = cls._redact_unknown(data)
        if info.mode == 'json':
            return out  # JSON input holds plain strings only; see _FrozenModel.model_validate_json
        for name in ('private_key', 'passphrase'):
            if name in out:
                out[name] = _secret_input(out[name])
        return out

    @field_validator('private_key')
    @classmethod
    def _normalize_private_key(cls, value: SecretStr) -> SecretStr:
        try:
            seed, _ = parse_private_key(value.get_secret_value(), 'private_key')
        except BackpackConfigError as exc:
            raise ValueError(str(exc)) from None
        return SecretStr(base64.b64encode(seed).decode())

    @field_validator('api_key', 'public_key')
    @classmethod
    def _check_against_private_key(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        private = info.data.get('private_key')
        if private is None:
            return value  # private_key itself failed; that error is reported
        seed = base64.b64decode(private.get_secret_value())
        derived = base64.b64encode(public_key_from_seed(seed)).decode()
        if value is not None and str(value).strip():
            _, problem = match_public_key(value, seed, str(info.field_name))
            if problem is not None:
                raise ValueError(problem)
        return derived

    @property
    def derived_public_key(self) -> str:
        """Base64 ED25519 public key derived from ``private_key`` (= the Backpack API key)."""
        return self.public_key  # type: ignore[return-value]  # always filled by validation

    def signer(self, window_ms: int = DEFAULT_WINDOW_MS, clock_offset_ms: int = 0, *,
               clock: Callable[[], float] = time.time) -> BackpackSigner:
        """A ``BackpackSigner`` for this key pair."""
        return BackpackSigner(self.private_key.get_secret_value(), window_ms=window_ms, clock=clock,
                              clock_offset_ms=clock_offset_ms)


class BackpackProxies(_FrozenModel):
    """Proxy for REST and/or WebSocket traffic.

    ``url`` applies to both transports; ``rest`` and ``websocket`` override it for one of them.
    Schemes: ``http://`` / ``https://`` (HTTP CONNECT), ``socks5://``, ``socks5h://`` (the proxy
    resolves host names). A password in the URL is a secret: it shows as ``***``.
    """

    url: Optional[ProxyURL] = Field(default=None, description='proxy for REST and WebSocket')
    rest: Optional[ProxyURL] = Field(default=None, description='proxy for REST only')
    websocket: Optional[ProxyURL] = Field(default=None, description='proxy for WebSocket only')

    @model_validator(mode='before')
    @classmethod
    def _protect_inputs(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = cls._redact_unknown(data)
        if info.mode == 'json':
            return out  # JSON input holds plain strings only; see _FrozenModel.model_validate_json
        for name in ('url', 'rest', 'websocket'):
            value = out.get(name)
            if isinstance(value, str):
                out[name] = ProxyURL(value)
            elif value is not None and not isinstance(value, ProxyURL):
                out[name] = _REDACTED
        return out

    @field_validator('url', 'rest', 'websocket')
    @classmethod
    def _check_proxy(cls, value: Optional[ProxyURL], info: ValidationInfo) -> Optional[ProxyURL]:
        if value is None:
            return None
        return ProxyURL(_validate_proxy_url(value.get_secret_value(), f'proxies.{info.field_name}'))

    @model_validator(mode='after')
    def _not_empty(self) -> 'BackpackProxies':
        if self.url is None and self.rest is None and self.websocket is None:
            raise ValueError('proxies is empty: set url (both transports), or rest and/or websocket')
        return self

    def for_rest(self) -> Optional[ProxyURL]:
        return self.rest or self.url

    def for_websocket(self) -> Optional[ProxyURL]:
        return self.websocket or self.url


class BackpackConfig(_FrozenModel):
    """Settings of the Backpack integration. Frozen; see the module docstring for loaders."""

    enable_private_channels: bool = Field(
        default=False, description='subscribe to account streams (needs auth)')
    auth: Optional[BackpackAuth] = Field(default=None, description='API credentials')
    proxies: Optional[BackpackProxies] = Field(default=None, description='proxy URLs')
    window_ms: int = Field(default=DEFAULT_WINDOW_MS, ge=1, le=MAX_WINDOW_MS,
                           description=f'signature validity window in ms, 1..{MAX_WINDOW_MS}')
    use_sandbox: bool = Field(default=False, description='must stay False: Backpack has no sandbox')
    rest_url: str = Field(default=DEFAULT_REST_URL, description='REST base URL')
    ws_url: str = Field(default=DEFAULT_WS_URL, description='WebSocket URL')
    ca_file: Optional[Path] = Field(default=None, description='extra CA bundle (PEM) to trust for TLS')
    symbol_cache_ttl_s: float = Field(default=900.0, gt=0, allow_inf_nan=False,
                                      description='seconds the market list is cached, > 0')
    request_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False,
                                     description='REST request timeout in seconds, > 0')
    max_retries: int = Field(default=5, ge=0, le=20, description='REST retries, 0..20')
    retry_backoff_base_s: float = Field(default=0.25, gt=0, allow_inf_nan=False,
                                        description='first retry delay in seconds, > 0')
    retry_backoff_max_s: float = Field(default=10.0, gt=0, allow_inf_nan=False,
                                       description='retry delay cap in seconds, >= retry_backoff_base_s')
    clock_offset_ms: int = Field(default=0, ge=-MAX_CLOCK_OFFSET_MS, le=MAX_CLOCK_OFFSET_MS,
                                 description=f'server minus local clock in ms, |x| <= {MAX_CLOCK_OFFSET_MS}')

    @model_validator(mode='before')
    @classmethod
    def _protect_inputs(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = cls._redact_unknown(data)
        auth = out.get('auth')
        if auth is not None and not isinstance(auth, (Mapping, BackpackAuth)):
            out['auth'] = _REDACTED  # e.g. a key string given as auth=...
        proxies = out.get('proxies')
        if isinstance(proxies, str):
            out['proxies'] = {'url': proxies}
        elif proxies is not None and not isinstance(proxies, (Mapping, BackpackProxies)):
            out['proxies'] = _REDACTED
        return out

    @field_validator('use_sandbox')
    @classmethod
    def _no_sandbox(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                'Backpack has no sandbox; leave use_sandbox False and point rest_url/ws_url at the local '
                'simulator instead (python -m cryptofeed.exchanges.backpack.simulator prints its URLs)')
        return value

    @field_validator('rest_url')
    @classmethod
    def _check_rest_url(cls, value: str) -> str:
        return _validate_service_url(value, 'rest_url', 'https', 'http')

    @field_validator('ws_url')
    @classmethod
    def _check_ws_url(cls, value: str) -> str:
        return _validate_service_url(value, 'ws_url', 'wss', 'ws')

    @field_validator('ca_file')
    @classmethod
    def _check_ca_file(cls, value: Optional[Path]) -> Optional[Path]:
        if value is None:
            return None
        path = value.expanduser().absolute()
        if not path.exists():
            raise ValueError(f'ca_file {path} does not exist; give the path of a PEM CA bundle')
        if not path.is_file():
            raise ValueError(f'ca_file {path} is not a file; give the path of a PEM CA bundle')
        if not os.access(path, os.R_OK):
            raise ValueError(f'ca_file {path} is not readable by this process; fix its permissions')
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(path))
        except (ssl.SSLError, OSError, ValueError):
            raise ValueError(f'ca_file {path} holds no PEM certificate that can be loaded; '
                             f'give a CA bundle in PEM format') from None
        return path

    @model_validator(mode='after')
    def _cross_checks(self) -> 'BackpackConfig':
        if self.retry_backoff_max_s < self.retry_backoff_base_s:
            raise ValueError(
                f'retry_backoff_max_s ({self.retry_backoff_max_s}) must be >= retry_backoff_base_s '
                f'({self.retry_backoff_base_s})')
        if self.enable_private_channels and self.auth is None:
            raise ValueError(
                'enable_private_channels=True needs credentials: set auth.private_key (in a backpack: '
                'section, key_secret; in the environment, BACKPACK_PRIVATE_KEY), or disable private channels')
        return self

    # ---------------------------------------------------------------- derived settings

    def signer(self, *, clock: Callable[[], float] = time.time) -> Optional[BackpackSigner]:
        """A signer using ``window_ms`` and ``clock_offset_ms``; None without ``auth``."""
        if self.auth is None:
            return None
        return self.auth.signer(self.window_ms, self.clock_offset_ms, clock=clock)

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        """System trust plus ``ca_file``; None (library default) when no ``ca_file`` is set."""
        if self.ca_file is None:
            return None
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.ca_file))
        return context

    @property
    def rest_proxy(self) -> Optional[str]:
        """Proxy URL for REST (full, with password: do not log it), or None. See module docstring."""
        return self.proxy_for('rest')

    @property
    def ws_proxy(self) -> Optional[str]:
        """Proxy URL for the WebSocket (full, with password: do not log it), or None."""
        return self.proxy_for('websocket')

    def proxy_for(self, transport: str, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
        """Resolve the proxy of ``'rest'`` or ``'websocket'``: configured first, then the environment.

        ``environ`` defaults to ``os.environ`` read at call time. Raises ``BackpackConfigError``
        when the environment names a proxy with an unsupported scheme.
        """
        if transport not in ('rest', 'websocket'):
            raise ValueError(f"transport must be 'rest' or 'websocket', got {transport!r}")
        if self.proxies is not None:
            chosen = self.proxies.for_rest() if transport == 'rest' else self.proxies.for_websocket()
            if chosen is not None:
                return chosen.get_secret_value()
        env = os.environ if environ is None else environ
        target = self.rest_url if transport == 'rest' else self.ws_url
        host = urlsplit(target).hostname or ''
        if no_proxy_matches(host, ','.join(env.get(name, '') for name in NO_PROXY_ENV_VARS)):
            return None
        for name in PROXY_ENV_VARS:
            value = (env.get(name) or '').strip()
            if not value:
                continue
            if '://' not in value:
                value = 'http://' + value
            try:
                url = _validate_proxy_url(value, f'environment variable {name}')
            except ValueError as exc:
                raise BackpackConfigError(str(exc)) from None
            LOG.debug('Backpack %s proxy from %s: %s', transport, name, mask_url(url))
            return url
        return None

    # ---------------------------------------------------------------- loaders

    @classmethod
    def _build(cls, data: Mapping[str, Any], source: str,
               labels: Optional[Mapping[str, str]] = None) -> 'BackpackConfig':
        try:
            config = cls.__pydantic_validator__.validate_python(dict(data))
        except ValidationError as exc:
            raise _InvalidConfig(_problems(exc, cls), source, labels) from None
        LOG.debug('Backpack configuration loaded from %s', source)
        return config

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> 'BackpackConfig':
        """Build from a mapping of our option names.

        cryptofeed's credential names are accepted too: ``key_id`` (API key), ``key_secret``
        (private key), ``key_passphrase`` (ignored). ``account_name`` and ``native_enabled`` are
        read by cryptofeed and the feed registry and are skipped here.
        """
        if not isinstance(d, Mapping):
            raise BackpackConfigError(f'from_dict expects a mapping, got {type(d).__name__}')
        return cls._build(section_to_fields(d), 'dict')

    @classmethod
    def from_cryptofeed_config(cls, cfg: Any) -> 'BackpackConfig':
        """Build from the ``backpack:`` section of a cryptofeed configuration.

        ``cfg`` is a ``cryptofeed.config.Config``, the path of a YAML file, or a dict of the whole
        cryptofeed configuration. A missing section gives the defaults (public data only).
        """
        from cryptofeed.config import Config

        if isinstance(cfg, Config):
            root, source = cfg.config, 'cryptofeed Config'
        elif isinstance(cfg, (str, os.PathLike)):
            root, source = load_yaml_file(Path(cfg)), f'file {os.fspath(cfg)}'
        elif isinstance(cfg, Mapping):
            root, source = cfg, 'cryptofeed config dict'
        else:
            raise BackpackConfigError(
                f'from_cryptofeed_config expects a cryptofeed Config, a YAML path or a dict, got {type(cfg).__name__}')
        if root is None:
            root = {}
        if not isinstance(root, Mapping):
            raise BackpackConfigError(f'{source} does not hold a mapping at its top level')
        section = root.get('backpack')
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise BackpackConfigError(f'the backpack: section of {source} must be a mapping of options')
        return cls._build(section_to_fields(section), f'{source}, section backpack')

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> 'BackpackConfig':
        """Build from ``BACKPACK_*`` variables (see ``ENV_VARS``); ``overrides`` win over them.

        Empty variables count as unset. Setting ``BACKPACK_API_KEY`` or ``BACKPACK_PUBLIC_KEY``
        without ``BACKPACK_PRIVATE_KEY`` is an error. ``auth=`` in ``overrides`` replaces the
        credentials from the environment as a whole.
        """
        data: Dict[str, Any] = {}
        auth: Dict[str, Any] = {}
        labels: Dict[str, str] = {}
        for name, path in ENV_VARS.items():
            value = environ.get(name)
            if value is None or not value.strip():
                continue
            labels[path] = name
            if path.startswith('auth.'):
                auth[path.split('.', 1)[1]] = value
            else:
                data[path] = value.strip()
        if auth and 'auth' not in overrides:
            if 'private_key' not in auth:
                given = ', '.join(n for n, p in ENV_VARS.items() if p.startswith('auth.') and p in labels)
                raise BackpackConfigError(
                    f'{given} is set but BACKPACK_PRIVATE_KEY is not; set the private key too (the API key '
                    f'alone cannot sign), or unset {given} for public data only')
            data['auth'] = auth
        data.update(overrides)
        return cls._build(data, 'environment', labels)

    @classmethod
    def coerce(cls, value: Any) -> 'BackpackConfig':
        """Turn a feed's ``config=`` argument into a ``BackpackConfig``.

        * ``None``: like cryptofeed, the YAML file named by ``CRYPTOFEED_CONFIG`` when it exists,
          else the defaults (the ``BACKPACK_*`` variables are read only by ``from_env``);
        * a ``BackpackConfig``: returned as is;
        * a ``cryptofeed.config.Config``, a YAML path (``str`` / ``Path``), or a dict with a
          ``backpack`` key: ``from_cryptofeed_config``;
        * any other dict: ``from_dict``.
        """
        from cryptofeed.config import Config

        if value is None:
            path = os.environ.get('CRYPTOFEED_CONFIG')
            if path and os.path.exists(path):
                return cls.from_cryptofeed_config(path)
            return cls()
        if isinstance(value, BackpackConfig):
            return value
        if isinstance(value, (Config, str, os.PathLike)):
            return cls.from_cryptofeed_config(value)
        if isinstance(value, Mapping):
            if 'backpack' in value:
                return cls.from_cryptofeed_config(value)
            return cls.from_dict(value)
        raise BackpackConfigError(
            f'cannot build a BackpackConfig from {type(value).__name__}; give a BackpackConfig, a dict, '
            f'a cryptofeed Config or the path of a YAML file')


def section_to_fields(section: Mapping[str, Any]) -> Dict[str, Any]:
    """Map a ``backpack:`` section (cryptofeed names allowed) onto our option names (also used by
    the credential check to read a key file)."""
    data = {key: value for key, value in section.items() if key not in _SECTION_KEYS_READ_ELSEWHERE}
    credentials = {}
    for theirs, ours in _CRYPTOFEED_KEY_NAMES.items():
        if theirs in data:
            value = data.pop(theirs)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                credentials[ours] = value
    if credentials:
        if data.get('auth') is not None:
            raise BackpackConfigError(
                'give credentials either as key_id/key_secret or under auth:, not both')
        data['auth'] = credentials
    for name in ('auth', 'proxies'):
        if isinstance(data.get(name), Mapping):
            data[name] = dict(data[name])  # plain dicts (cryptofeed hands out AttrDicts)
    return data


def load_yaml_file(path: Path, what: str = 'configuration file', syntax: str = 'YAML') -> Any:
    """Parse a YAML file (also read by the credential check); errors name the file and line but never
    quote its content. ``what`` and ``syntax`` name the file and its expected syntax in messages."""
    try:
        text = path.expanduser().read_text()
    except FileNotFoundError:
        raise BackpackConfigError(f'cannot read {what} {path}: it does not exist') from None
    except OSError as exc:
        raise BackpackConfigError(f'cannot read {what} {path}: {exc.strerror or type(exc).__name__}') from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' near line {mark.line + 1}' if mark is not None else ''
        raise BackpackConfigError(f'{what} {path} is not valid {syntax}{where}') from None


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """True when ``host`` is excluded from proxying by a NO_PROXY-style list.

    Entries: ``*``; host names (``example.com`` and ``.example.com`` both match the domain and its
    subdomains); IP addresses; CIDR blocks (``127.0.0.0/8``). A ``:port`` suffix is ignored.
    """
    host = host.strip('[]').rstrip('.').lower()
    if not host:
        return False
    try:
        host_ip: Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]] = ipaddress.ip_address(host)
    except ValueError:
        host_ip = None
    for raw in no_proxy.replace(' ', ',').split(','):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == '*':
            return True
        if '/' in entry:
            try:
                if host_ip is not None and host_ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if entry.startswith('['):
            entry = entry[1:].partition(']')[0]
        elif entry.count(':') == 1:
            entry = entry.partition(':')[0]
        try:
            entry_ip = ipaddress.ip_address(entry)
        except ValueError:
            entry_ip = None
        if entry_ip is not None:
            if entry_ip == host_ip:
                return True
            continue
        domain = entry.lstrip('*').lstrip('.').rstrip('.')
        if domain and (host == domain or host.endswith('.' + domain)):
            return True
    return False

