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

Proxy precedence, for REST and WebSocket separately (``rest_proxy`` / ``ws_proxy``, resolved
by ``net.resolve_proxy`` when read):

1. ``proxies.rest`` / ``proxies.websocket``;
2. ``proxies.url`` (both transports);
3. the proxy environment variables, as ``net.py`` (their only reader) documents them;
4. no proxy.
"""
from __future__ import annotations

import base64
import difflib
import os
import ssl
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import yaml
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.config_models import (
    _REDACTED, ProxyURL, _FrozenModel, _problems, _secret_input, invalid_config,
)
from cryptofeed.exchanges.backpack.core.auth import (
    DEFAULT_WINDOW_MS, BackpackSigner, match_public_key, parse_private_key, public_key_from_seed,
)
from cryptofeed.exchanges.backpack.core.errors import BackpackConfigError
from cryptofeed.exchanges.backpack.core.transport.net import resolve_proxy, validate_proxy_url, validate_service_url

__all__ = ['DEFAULT_REST_URL', 'DEFAULT_WS_URL', 'ENV_VARS', 'ProxyURL', 'BackpackAuth', 'BackpackProxies',
           'BackpackConfig']

LOG = log.get()

DEFAULT_REST_URL = 'https://api.backpack.exchange'
DEFAULT_WS_URL = 'wss://ws.backpack.exchange'
MAX_WINDOW_MS = 10000
MAX_CLOCK_OFFSET_MS = 60000
NO_SANDBOX_MESSAGE = ('Backpack has no sandbox; leave sandbox/use_sandbox False and point rest_url/ws_url at the '
                      'local simulator instead (python -m cryptofeed.exchanges.backpack.simulator prints its URLs)')

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
# Every name a ``backpack:`` section may hold besides our options (listed in errors about an unknown one).
SECTION_NAMES = tuple(_CRYPTOFEED_KEY_NAMES) + tuple(sorted(_SECTION_KEYS_READ_ELSEWHERE))
# The section of a cryptofeed configuration that holds ours.
SECTION = 'backpack'
# How alike (difflib ratio) a top-level key must be to ``backpack`` to be taken for a misspelling.
_NEAR_MISS_RATIO = 0.8
_warned_sections: set = set()


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

    @classmethod
    def _wrap_secrets(cls, out: Dict[str, Any]) -> None:
        for name in ('private_key', 'passphrase'):
            if name in out:
                out[name] = _secret_input(out[name])

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

    @classmethod
    def _wrap_secrets(cls, out: Dict[str, Any]) -> None:
        for name in ('url', 'rest', 'websocket'):
            value = out.get(name)
            if isinstance(value, str):
                out[name] = ProxyURL(value)
            elif value is not None and not isinstance(value, ProxyURL):
                out[name] = _REDACTED

    @field_validator('url', 'rest', 'websocket')
    @classmethod
    def _check_proxy(cls, value: Optional[ProxyURL], info: ValidationInfo) -> Optional[ProxyURL]:
        if value is None:
            return None
        return ProxyURL(validate_proxy_url(value.get_secret_value(), f'proxies.{info.field_name}'))

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
    listing_poll_s: float = Field(default=300.0, gt=0, allow_inf_nan=False,
                                  description="symbols='all': seconds between polls of /api/v1/markets for "
                                              'new and delisted markets, > 0 (the endpoint is cached 300 s)')
    request_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False,
                                     description='REST request timeout in seconds, > 0')
    max_retries: int = Field(default=5, ge=0, le=20, description='REST retries, 0..20')
    retry_backoff_base_s: float = Field(default=0.25, gt=0, allow_inf_nan=False,
                                        description='first retry delay in seconds, > 0')
    retry_backoff_max_s: float = Field(default=10.0, gt=0, allow_inf_nan=False,
                                       description='retry delay cap in seconds, >= retry_backoff_base_s')
    clock_offset_ms: int = Field(default=0, ge=-MAX_CLOCK_OFFSET_MS, le=MAX_CLOCK_OFFSET_MS,
                                 description=f'server minus local clock in ms, |x| <= {MAX_CLOCK_OFFSET_MS}')
    metrics_port: Optional[int] = Field(
        default=None, ge=0, le=65535,
        description='serve /metrics (Prometheus) and /healthz on this port, 0 = any free port; None = off')
    metrics_host: str = Field(default='127.0.0.1', description='address the metrics server listens on')

    @classmethod
    def _wrap_secrets(cls, out: Dict[str, Any]) -> None:
        auth = out.get('auth')
        if auth is not None and not isinstance(auth, (Mapping, BackpackAuth)):
            out['auth'] = _REDACTED  # e.g. a key string given as auth=...
        proxies = out.get('proxies')
        if isinstance(proxies, str):
            out['proxies'] = {'url': proxies}
        elif proxies is not None and not isinstance(proxies, (Mapping, BackpackProxies)):
            out['proxies'] = _REDACTED

    @field_validator('window_ms', 'max_retries', 'clock_offset_ms', 'symbol_cache_ttl_s', 'listing_poll_s',
                     'request_timeout_s', 'retry_backoff_base_s', 'retry_backoff_max_s', mode='before')
    @classmethod
    def _not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool):  # pydantic would read True as 1
            raise ValueError(f'{info.field_name} must be a number, got {value}')
        return value

    @field_validator('metrics_port', mode='before')
    @classmethod
    def _metrics_port_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f'metrics_port must be a port number (1..65535, or 0 for any free port), got {value}')
        return value

    @field_validator('metrics_host')
    @classmethod
    def _check_metrics_host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c in host for c in '/ @') or host.count(':') == 1:
            raise ValueError(f'metrics_host must be a bare address or host name to listen on, such as 127.0.0.1, '
                             f'0.0.0.0 or ::1 (no scheme, no port: that is metrics_port), got {value!r}')
        return host

    @field_validator('use_sandbox')
    @classmethod
    def _no_sandbox(cls, value: bool) -> bool:
        if value:
            raise ValueError(NO_SANDBOX_MESSAGE)
        return value

    @field_validator('rest_url')
    @classmethod
    def _check_rest_url(cls, value: str) -> str:
        return validate_service_url(value, 'rest_url', 'https', 'http')

    @field_validator('ws_url')
    @classmethod
    def _check_ws_url(cls, value: str) -> str:
        return validate_service_url(value, 'ws_url', 'wss', 'ws')

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
                return chosen.get_secret_value()  # validated when the config was built
        target = self.rest_url if transport == 'rest' else self.ws_url
        try:
            return resolve_proxy(None, target, environ)
        except ValueError as exc:
            raise BackpackConfigError(str(exc)) from None

    # ---------------------------------------------------------------- loaders

    @classmethod
    def _build(cls, data: Mapping[str, Any], source: str, labels: Optional[Mapping[str, str]] = None,
               also_valid: Tuple[str, ...] = ()) -> 'BackpackConfig':
        try:
            config = cls.__pydantic_validator__.validate_python(dict(data))
        except ValidationError as exc:
            raise invalid_config(_problems(exc, cls, also_valid), source, labels) from None
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
        return cls._build(section_to_fields(d), 'dict', also_valid=SECTION_NAMES)

    @classmethod
    def from_cryptofeed_config(cls, cfg: Any) -> 'BackpackConfig':
        """Build from the ``backpack:`` section of a cryptofeed configuration.

        ``cfg`` is a ``cryptofeed.config.Config``, the path of a YAML file, or a dict of the whole
        cryptofeed configuration. A missing section gives the defaults (public data only).
        """
        if is_cryptofeed_config(cfg):
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
        section = root.get(SECTION)
        warn_misspelt_sections(root, source)
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise BackpackConfigError(f'the backpack: section of {source} must be a mapping of options')
        return cls._build(section_to_fields(section), f'{source}, section backpack', also_valid=SECTION_NAMES)

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
        if value is None:
            path = os.environ.get('CRYPTOFEED_CONFIG')
            if path and os.path.exists(path):
                return cls.from_cryptofeed_config(path)
            return cls()
        if isinstance(value, BackpackConfig):
            return value
        if is_cryptofeed_config(value) or isinstance(value, (str, os.PathLike)):
            return cls.from_cryptofeed_config(value)
        if isinstance(value, Mapping):
            if 'backpack' in value:
                return cls.from_cryptofeed_config(value)
            return cls.from_dict(value)
        raise BackpackConfigError(
            f'cannot build a BackpackConfig from {type(value).__name__}; give a BackpackConfig, a dict, '
            f'a cryptofeed Config or the path of a YAML file')


def is_cryptofeed_config(value: Any) -> bool:
    """A ``cryptofeed.config.Config`` of any line, known by its class (the core imports no cryptofeed)."""
    kind = type(value)
    return (kind.__module__, kind.__name__) == ('cryptofeed.config', 'Config') and isinstance(
        getattr(value, 'config', None), Mapping)


def misspelt_sections(root: Mapping[str, Any]) -> List[str]:
    """Top-level keys of a cryptofeed configuration that look like a misspelt ``backpack:``
    (``backpak``, ``Backpack``, ``back-pack``): read by nobody, so their options would be
    silently ignored. Pure."""
    found = []
    for key in root:
        if not isinstance(key, str) or key == SECTION:
            continue
        ratio = difflib.SequenceMatcher(None, key.lower(), SECTION).ratio()
        if ratio >= _NEAR_MISS_RATIO:
            found.append(key)
    return found


def warn_misspelt_sections(root: Mapping[str, Any], source: str) -> List[str]:
    """Log a warning (once per process and key) for each ``misspelt_sections`` key of ``root``;
    returns them. Called wherever a ``backpack:`` section is read (the loaders, the registry)."""
    found = misspelt_sections(root)
    for key in found:
        if key in _warned_sections:
            continue
        _warned_sections.add(key)
        if SECTION in root:
            LOG.warning('%s has a section %r besides backpack: only backpack: is read, so the options under '
                        '%r are ignored; merge them into backpack:', source, key, key)
        else:
            LOG.warning('%s has a section %r but no backpack: section: is it misspelt? Only backpack: is '
                        'read, so its options are ignored and the defaults apply (the live exchange at %s, '
                        'the ccxt feed for the name BACKPACK); rename it to backpack:', source, key,
                        DEFAULT_REST_URL)
    return found


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
        text = path.expanduser().read_text(encoding='utf-8')
    except FileNotFoundError:
        raise BackpackConfigError(f'cannot read {what} {path}: it does not exist') from None
    except UnicodeDecodeError as exc:
        raise BackpackConfigError(f'unreadable {what} {path}: it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} '
                                  f'at offset {exc.start}); save it as UTF-8') from None
    except OSError as exc:
        raise BackpackConfigError(f'cannot read {what} {path}: {exc.strerror or type(exc).__name__}') from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' near line {mark.line + 1}' if mark is not None else ''
        raise BackpackConfigError(f'{what} {path} is not valid {syntax}{where}') from None
