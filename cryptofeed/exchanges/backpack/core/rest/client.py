"""Async REST client for Backpack: public market data and signed account calls.

Use ``BackpackRestClient`` (or ``BackpackRestClient.from_config(cfg)``) for everything the feed
asks over HTTP: markets, depth snapshots, trade backfill, balances. Responses come back as the
parsed JSON (dicts and lists; prices stay strings) -- typing them is the adapters' job.

Behaviour worth knowing:

* **No I/O in the constructor.** The aiohttp session is made on the first request (with an
  aiohttp-socks connector for SOCKS proxies), or injected by the caller and then never closed
  by us. ``await client.close()`` releases our own session.
* **Errors** are translated where the response arrives, into the tree of ``errors.py``:
  401/403 -> ``BackpackAuthError``, 429 -> ``BackpackRateLimitedError`` (with ``retry_after``),
  451 -> ``BackpackRegionRestrictedError``, 503 -> ``BackpackMaintenanceError``, any other
  error status -> ``BackpackRequestError`` with Backpack's ``{code, message}`` parsed when the
  body is JSON and kept as text otherwise; transport failures and timeouts ->
  ``BackpackRequestError(status=None)``. HTTP 204 returns None. A server certificate that
  fails verification raises ``BackpackConfigError`` at once (a missing ``ca_file`` does not fix
  itself by retrying).
* **Retries** follow ``is_retryable`` with capped, jittered exponential backoff. On 429 the
  wait is ``max(Retry-After, backoff delay)``, never more than ``MAX_RETRY_AFTER_S`` (60 s):
  a server asking for longer is retried after 60 s rather than leaving a caller hanging for an
  unbounded time. Signed requests are signed afresh for each attempt (new timestamp). POST and
  DELETE may change account state, so they are retried only when the exchange certainly did
  not act on them: 429, 503, or a connection that was never established.
* **Region restriction (451)** is raised without retries and logged as an error that says to
  route through a proxy. It is then remembered for a cooldown that grows on a long capped
  schedule (``region_retry_base_s`` 30 s doubling up to ``region_retry_max_s`` 15 min, jittered):
  meanwhile every call fails fast and sends nothing (its ``retry_in`` says when the next trial
  is); after it, one call goes through as a trial. Another 451 logs again and lengthens the
  cooldown; any other answer ends the restriction (logged), so a proxy or routing fixed later is
  picked up without a restart. ``clear_region_restriction()`` ends it at once.
* **Circuit breaker**: after ``failure_threshold`` consecutive failed attempts (transport
  errors, timeouts, 5xx) calls fail fast with ``BackpackCircuitOpenError`` until
  ``reset_timeout_s`` has passed; then one trial request decides between closing and opening
  again. 4xx answers (including 429 and 451) prove the server is reachable, so they do not
  count as failures. The call whose failure opens the breaker stops retrying and raises that
  failure; later calls get ``BackpackCircuitOpenError`` without touching the network.
* **Proxies**: ``proxy=`` takes ``http://``/``https://`` (HTTP CONNECT for https targets) or
  ``socks5://``/``socks5h://`` (``h``: the proxy resolves host names). Without one,
  ``net.resolve_proxy`` applies the proxy environment variables (read once, in the
  constructor; ``from_config`` passes the URL ``BackpackConfig.rest_proxy`` resolved). An injected
  session keeps its own connector, so an explicit SOCKS proxy together with an injected session
  is refused as a configuration error. A proxy rejecting our credentials (407) raises
  ``BackpackConfigError``; proxy passwords never appear in messages or logs.
* **Raw data**: ``BackpackRestClient.tap``, when a host sets it, is awaited with every response
  body (``tap(client, url, text, receipt_ts)``); the host of each cryptofeed line hands it to
  that line's recorder, so REST traffic is recorded with the WebSocket traffic.
* ``stats`` counts attempts, retries, failures by status, breaker openings and latency.

Nothing here logs or raises request headers, signatures or key material.
"""
from __future__ import annotations

import asyncio
import copy
import json
import random
import ssl as _ssl
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import (
    Any, Awaitable, Callable, ClassVar, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union,
)
from urllib.parse import urlsplit

import aiohttp
import aiohttp_socks

from cryptofeed.exchanges.backpack.core import log
from cryptofeed.exchanges.backpack.core.auth import render_value
from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays, parse_retry_after
from cryptofeed.exchanges.backpack.core.config import DEFAULT_REST_URL
from cryptofeed.exchanges.backpack.core.errors import (
    BackpackAuthError, BackpackConfigError, BackpackError, BackpackMaintenanceError, BackpackProtocolError,
    BackpackRateLimitedError, BackpackRegionRestrictedError, BackpackRequestError, is_retryable,
)
from cryptofeed.exchanges.backpack.core.transport.net import is_socks, resolve_proxy, scrub_urls, socks_connector

__all__ = [
    'DEFAULT_REST_URL', 'MAX_RETRY_AFTER_S', 'JSON_CONTENT_TYPE', 'BackpackCircuitOpenError', 'CircuitBreaker',
    'RestStats', 'BackpackRestClient', 'request_outlived_window',
]

LOG = log.get()

#: Longest single wait between two attempts, whatever Retry-After says.
MAX_RETRY_AFTER_S = 60.0
JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

_REGION_MESSAGE = ('Backpack refuses requests from this location (HTTP 451): route the traffic through a proxy '
                   'in an allowed region with BackpackConfig.proxies.')

Params = Optional[Mapping[str, Any]]
Body = Union[Mapping[str, Any], Sequence[Mapping[str, Any]], None]


class BackpackCircuitOpenError(BackpackRequestError):
    """The circuit breaker is open: the request was not sent. ``retry_in`` is seconds until a trial."""

    def __init__(self, message: str, *, retry_in: float, **kwargs):
        self.retry_in = retry_in
        super().__init__(message, **kwargs)


# -- circuit breaker ---------------------------------------------------------------------

class CircuitBreaker:
    """Consecutive-failure circuit breaker: closed -> open -> half-open -> closed | open.

    ``allow()`` asks permission before an attempt; report its outcome with ``record_success()``
    (any answer that shows the server is up) or ``record_failure()``. When open, ``allow()`` is
    False until ``reset_timeout_s`` has passed on ``clock``; then exactly one trial is allowed
    (half-open) until its outcome is recorded or ``release()`` gives the slot back.
    """

    CLOSED = 'closed'
    OPEN = 'open'
    HALF_OPEN = 'half-open'

    def __init__(self, failure_threshold: int = 5, reset_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        if failure_threshold < 1:
            raise ValueError(f'failure_threshold must be >= 1, got {failure_threshold}')
        if reset_timeout_s < 0:
            raise ValueError(f'reset_timeout_s must be >= 0, got {reset_timeout_s}')
        self.failure_threshold = int(failure_threshold)
        self.reset_timeout_s = float(reset_timeout_s)
        self.clock = clock
        self.failures = 0
        self.opens = 0
        self._state = self.CLOSED
        self._opened_at = 0.0
        self._trial_in_flight = False

    def __repr__(self) -> str:
        return f'CircuitBreaker(state={self.state!r}, failures={self.failures}, opens={self.opens})'

    @property
    def state(self) -> str:
        """Current state; an open breaker whose timeout has passed reads as half-open."""
        if self._state == self.OPEN and self.clock() - self._opened_at >= self.reset_timeout_s:
            return self.HALF_OPEN
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when not open)."""
        if self._state != self.OPEN:
            return 0.0
        return max(0.0, self.reset_timeout_s - (self.clock() - self._opened_at))

    def allow(self) -> bool:
        if self._state == self.CLOSED:
            return True
        if self._state == self.OPEN:
            if self.clock() - self._opened_at < self.reset_timeout_s:
                return False
            self._state = self.HALF_OPEN
            self._trial_in_flight = False
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self._state = self.CLOSED
        self.failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> bool:
        """Count one failure; True when this failure opened the breaker."""
        self._trial_in_flight = False
        if self._state == self.HALF_OPEN:
            self._open()
            return True
        if self._state == self.OPEN:
            return False
        self.failures += 1
        if self.failures >= self.failure_threshold:
            self._open()
            return True
        return False

    def release(self) -> None:
        """Give back a half-open trial slot whose attempt ended without an outcome (cancelled)."""
        self._trial_in_flight = False

    def _open(self) -> None:
        self._state = self.OPEN
        self._opened_at = self.clock()
        self.opens += 1


# -- statistics --------------------------------------------------------------------------

@dataclass
class RestStats:
    """Counters of one client. ``requests`` counts HTTP attempts actually sent; ``failures``
    counts calls that ended in an error; ``failures_by_status`` counts failed attempts, keyed by
    HTTP status (as a string), ``'transport'`` (no response), ``'config'`` (certificate or proxy
    credentials rejected) or ``'protocol'`` (unreadable 2xx body); ``fail_fast`` counts calls refused without
    touching the network (open breaker, remembered 451)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    failures_by_status: Dict[str, int] = field(default_factory=dict)
    breaker_opens: int = 0
    fail_fast: int = 0
    last_status: Optional[int] = None
    last_latency_s: Optional[float] = None

    def as_dict(self) -> Dict[str, Any]:
        return {
            'requests': self.requests, 'retries': self.retries, 'failures': self.failures,
            'failures_by_status': dict(self.failures_by_status), 'breaker_opens': self.breaker_opens,
            'fail_fast': self.fail_fast, 'last_status': self.last_status, 'last_latency_s': self.last_latency_s,
        }


# -- the client --------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, 'f')
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def _without_nulls(body: Body) -> Body:
    """The JSON body with ``None`` members left out, as the signature leaves them out: a body
    sending ``"key": null`` that the signing string skipped would not verify (and means nothing)."""
    if body is None:
        return None
    if isinstance(body, Mapping):
        return {key: value for key, value in body.items() if value is not None}
    return [{key: value for key, value in item.items() if value is not None} for item in body]


def _query(params: Params) -> List[Tuple[str, str]]:
    """Query pairs with None dropped and values rendered exactly as they are signed."""
    if not params:
        return []
    out = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out.extend((key, render_value(item)) for item in value)
        else:
            out.append((key, render_value(value)))
    return out


class _Attempt:
    """Outcome details of one attempt that the retry loop needs besides the exception."""

    __slots__ = ('connected',)

    def __init__(self):
        self.connected = False


class BackpackRestClient:
    """Backpack REST API over aiohttp. See the module docstring for retries, errors and proxies.

    ``base_url`` is the API root (``https://api.backpack.exchange`` or a simulator's URL).
    ``signer`` is a ``BackpackSigner`` (anything with ``rest_headers(instruction, params)``);
    without one, signed calls raise ``BackpackAuthError``. ``ssl`` is a context for custom CAs
    (None: system trust). ``breaker`` defaults to ``CircuitBreaker()``; ``rng`` seeds jitter.
    ``trust_env=False`` takes ``proxy`` as final (no environment fallback).
    """

    max_retry_after_s = MAX_RETRY_AFTER_S
    tap: ClassVar[Optional[Callable[['BackpackRestClient', str, str, float], Awaitable[None]]]] = None

    def __init__(self, base_url: str = DEFAULT_REST_URL, *, session: Optional[aiohttp.ClientSession] = None,
                 signer: Any = None, timeout_s: float = 10, max_retries: int = 5, backoff_base_s: float = 0.25,
                 backoff_max_s: float = 10, proxy: Optional[str] = None, ssl: Optional[_ssl.SSLContext] = None,
                 conn_id: str = 'BACKPACK.rest', breaker: Optional[CircuitBreaker] = None,
                 rng: Optional[random.Random] = None, trust_env: bool = True,
                 region_retry_base_s: float = 30.0, region_retry_max_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic):
        if not base_url or urlsplit(base_url).scheme not in ('http', 'https'):
            raise BackpackConfigError(f'base_url must be an http(s) URL, got {base_url!r}')
        if timeout_s <= 0:
            raise BackpackConfigError(f'timeout_s must be > 0, got {timeout_s}')
        if max_retries < 0:
            raise BackpackConfigError(f'max_retries must be >= 0, got {max_retries}')
        if not 0 < backoff_base_s <= backoff_max_s:
            raise BackpackConfigError(
                f'need 0 < backoff_base_s <= backoff_max_s, got {backoff_base_s} and {backoff_max_s}')
        self.base_url = base_url.rstrip('/')
        self.signer = signer
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        try:
            self.proxy = resolve_proxy(proxy, self.base_url, None if trust_env else {})
        except ValueError as exc:
            raise BackpackConfigError(f'unsupported proxy: {exc}') from None
        if self.proxy and session is not None and is_socks(self.proxy):
            # A SOCKS proxy lives in the connector, which an injected session already has.
            if proxy:
                raise BackpackConfigError(
                    'a SOCKS proxy cannot be applied to an injected session; build that session with '
                    'aiohttp_socks.ProxyConnector, or let the client create its own session')
            LOG.warning('%s: ignoring the SOCKS proxy from the environment: the injected session decides '
                        'its own connector', conn_id)
            self.proxy = None
        self._http_proxy = self.proxy if self.proxy and not is_socks(self.proxy) else None
        self.ssl = ssl
        self.conn_id = conn_id
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.stats = RestStats()
        self._rng = rng if rng is not None else random.Random()
        self._session = session
        self._owns_session = session is None
        self._region_error: Optional[BackpackRegionRestrictedError] = None
        self._region_retry_at = 0.0
        self._region_delays: Optional[Iterator[float]] = None
        self._region_schedule = (region_retry_base_s, region_retry_max_s)
        backoff_delays(region_retry_base_s, region_retry_max_s)  # raises ValueError if inconsistent
        self._clock = clock

    @classmethod
    def from_config(cls, cfg: Any, session: Optional[aiohttp.ClientSession] = None,
                    **overrides: Any) -> 'BackpackRestClient':
        """Build from a ``BackpackConfig`` (read by attribute name only; no import of config.py)."""
        kwargs = dict(
            session=session,
            signer=cfg.signer(),
            timeout_s=cfg.request_timeout_s,
            max_retries=cfg.max_retries,
            backoff_base_s=cfg.retry_backoff_base_s,
            backoff_max_s=cfg.retry_backoff_max_s,
            proxy=cfg.rest_proxy,
            ssl=cfg.ssl_context(),
            trust_env=False,   # rest_proxy has already applied the environment
        )
        kwargs.update(overrides)
        return cls(cfg.rest_url, **kwargs)

    def __repr__(self) -> str:
        proxy = scrub_urls(self.proxy) if self.proxy else None
        return (f'{type(self).__name__}({self.base_url!r}, proxy={proxy!r}, signed={self.signer is not None}, '
                f'breaker={self.breaker.state!r})')

    # -- session lifecycle -----------------------------------------------------------------

    @property
    def session(self) -> Optional[aiohttp.ClientSession]:
        """The aiohttp session in use, or None before the first request (when not injected)."""
        return self._session

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            connector = None
            if is_socks(self.proxy):
                connector = socks_connector(self.proxy, self.ssl)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
            self._owns_session = True
        return self._session

    def fork(self) -> 'BackpackRestClient':
        """The same client (URL, signer, proxy, retries, breaker, stats) without a session yet:
        for use on another event loop, since an aiohttp session serves only the loop it was made
        on. The fork makes and owns its session; close it when done. A client given its session
        cannot be forked: that session's connector (a proxy, say) decides the route, and a new
        session would quietly bypass it."""
        if not self._owns_session:
            raise BackpackConfigError(
                'this REST client was given its aiohttp session, which serves one event loop; it cannot be '
                'used from another one (the *_sync calls run on their own): call the async methods instead, '
                'or let the client create its session')
        twin = copy.copy(self)
        twin._session = None
        twin._owns_session = True
        return twin

    async def close(self) -> None:
        """Close the session if this client created it; an injected session is left open."""
        session, self._session = (self._session, None) if self._owns_session else (None, self._session)
        if session is not None and not session.closed:
            await session.close()

    async def __aenter__(self) -> 'BackpackRestClient':
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # -- region restriction -----------------------------------------------------------------

    @property
    def region_restricted(self) -> bool:
        """True while the last answer of Backpack was 451 (see the module docstring)."""
        return self._region_error is not None

    def clear_region_restriction(self) -> None:
        self._region_error = None
        self._region_delays = None

    def _region_lifted(self) -> None:
        LOG.warning('%s: Backpack serves this location again (no more HTTP 451); REST requests resume',
                    self.conn_id)
        self.clear_region_restriction()

    def _region_refused(self, exc: BackpackRegionRestrictedError) -> None:
        """Another 451: remember it and wait longer before the next trial."""
        if self._region_delays is None:
            self._region_delays = backoff_delays(*self._region_schedule, jitter='equal', rng=self._rng)
        wait = next(self._region_delays)
        self._region_error = exc
        self._region_retry_at = self._clock() + wait
        exc.retry_in = wait
        LOG.error('%s: %s Next trial request in %.1f s.', self.conn_id, _REGION_MESSAGE, wait)

    # -- public market data -----------------------------------------------------------------

    async def markets(self, market_types: Optional[Iterable[str]] = None) -> List[dict]:
        params = {'marketType': list(market_types)} if market_types else None
        return await self.get('/api/v1/markets', params)

    async def market(self, symbol: str) -> dict:
        return await self.get('/api/v1/market', {'symbol': symbol})

    async def ticker(self, symbol: str, interval: Optional[str] = None) -> Optional[dict]:
        """24 h ticker, or None when Backpack answers 204 (no data for the market)."""
        return await self.get('/api/v1/ticker', {'symbol': symbol, 'interval': interval})

    async def depth(self, symbol: str, limit: int = 1000) -> dict:
        return await self.get('/api/v1/depth', {'symbol': symbol, 'limit': limit})

    async def trades(self, symbol: str, limit: int = 100) -> List[dict]:
        return await self.get('/api/v1/trades', {'symbol': symbol, 'limit': limit})

    async def trades_history(self, symbol: str, limit: int = 100, offset: int = 0) -> List[dict]:
        return await self.get('/api/v1/trades/history', {'symbol': symbol, 'limit': limit, 'offset': offset})

    async def klines(self, symbol: str, interval: str, start_s: int, end_s: Optional[int] = None) -> List[dict]:
        """Candles from ``start_s`` to ``end_s`` (Unix seconds, as Backpack takes them)."""
        return await self.get('/api/v1/klines', {'symbol': symbol, 'interval': interval,
                                                 'startTime': int(start_s),
                                                 'endTime': None if end_s is None else int(end_s)})

    async def mark_prices(self, symbol: Optional[str] = None) -> List[dict]:
        return await self.get('/api/v1/markPrices', {'symbol': symbol})

    async def funding_rates(self, symbol: str, limit: int = 100, offset: int = 0) -> List[dict]:
        return await self.get('/api/v1/fundingRates', {'symbol': symbol, 'limit': limit, 'offset': offset})

    async def open_interest(self, symbol: Optional[str] = None) -> List[dict]:
        return await self.get('/api/v1/openInterest', {'symbol': symbol})

    async def status(self) -> dict:
        """``{"status": "Ok" | "Maintenance", "message": ...}`` as Backpack reports it."""
        return await self.get('/api/v1/status')

    async def ping(self) -> str:
        return await self.get('/api/v1/ping', expect='text')

    async def server_time_ms(self) -> int:
        text = await self.get('/api/v1/time', expect='text')
        try:
            return int(str(text).strip())
        except ValueError:
            raise BackpackProtocolError(f'/api/v1/time returned {str(text)[:80]!r}, not an integer') from None

    # -- signed account calls ---------------------------------------------------------------

    async def balances(self) -> dict:
        return await self.signed_get('balanceQuery', '/api/v1/capital')

    async def positions(self, symbol: Optional[str] = None) -> List[dict]:
        return await self.signed_get('positionQuery', '/api/v1/position', {'symbol': symbol})

    async def open_orders(self, symbol: Optional[str] = None, market_type: Optional[str] = None) -> List[dict]:
        return await self.signed_get('orderQueryAll', '/api/v1/orders', {'symbol': symbol, 'marketType': market_type})

    async def fill_history(self, symbol: Optional[str] = None, *, from_ms: Optional[int] = None,
                           to_ms: Optional[int] = None, limit: int = 100, offset: int = 0,
                           fill_type: Optional[str] = None, market_type: Optional[str] = None,
                           sort_direction: Optional[str] = None) -> List[dict]:
        return await self.signed_get('fillHistoryQueryAll', '/wapi/v1/history/fills', {
            'symbol': symbol, 'from': from_ms, 'to': to_ms, 'limit': limit, 'offset': offset,
            'fillType': fill_type, 'marketType': market_type, 'sortDirection': sort_direction})

    async def order_history(self, symbol: Optional[str] = None, *, order_id: Optional[str] = None,
                            limit: int = 100, offset: int = 0, market_type: Optional[str] = None,
                            sort_direction: Optional[str] = None) -> List[dict]:
        return await self.signed_get('orderHistoryQueryAll', '/wapi/v1/history/orders', {
            'symbol': symbol, 'orderId': order_id, 'limit': limit, 'offset': offset, 'marketType': market_type,
            'sortDirection': sort_direction})

    async def signed_get(self, instruction: str, path: str, params: Params = None) -> Any:
        return await self._call('GET', path, params=params, instruction=instruction)

    async def signed_post(self, instruction: str, path: str, body: Body) -> Any:
        return await self._call('POST', path, body=body, instruction=instruction)

    async def signed_delete(self, instruction: str, path: str, body: Body) -> Any:
        return await self._call('DELETE', path, body=body, instruction=instruction)

    async def get(self, path: str, params: Params = None, *, expect: str = 'json') -> Any:
        """Unsigned GET of ``path`` (e.g. ``/api/v1/depth``); ``expect`` is 'json' or 'text'."""
        return await self._call('GET', path, params=params, expect=expect)

    # -- machinery --------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, params: Params = None, body: Body = None,
                    instruction: Optional[str] = None, expect: str = 'json') -> Any:
        if instruction is not None and self.signer is None:
            raise BackpackAuthError(
                f'{method} {path} needs API keys ({instruction}); configure the public and private key '
                f'(BackpackConfig key_id/key_secret or the environment) to make signed requests')
        if self._region_error is not None:
            retry_in = self._region_retry_at - self._clock()
            if retry_in > 0:
                self.stats.fail_fast += 1
                self.stats.failures += 1
                exc = BackpackRegionRestrictedError(
                    _REGION_MESSAGE + f' (remembered from an earlier response; no request sent; next trial in '
                    f'{retry_in:.0f} s)', status=451, code=self._region_error.code, path=path)
                exc.retry_in = retry_in
                raise exc

        query = _query(params)
        body = _without_nulls(body)
        idempotent = method == 'GET'
        delays = backoff_delays(self.backoff_base_s, self.backoff_max_s, rng=self._rng)
        attempt = 0
        while True:
            if not self.breaker.allow():
                self.stats.fail_fast += 1
                self.stats.failures += 1
                retry_in = self.breaker.retry_in()
                raise BackpackCircuitOpenError(
                    f'circuit open after repeated failures; not sending {method} {path} '
                    f'(next trial in {retry_in:.1f} s)', retry_in=retry_in, path=path)
            state = _Attempt()
            try:
                result = await self._attempt(method, path, query, body, instruction, expect, state)
            except BackpackError as exc:
                status = getattr(exc, 'status', None)
                self._count_failure(exc, status)
                if isinstance(exc, BackpackRegionRestrictedError):
                    self.stats.failures += 1
                    self._region_refused(exc)
                    raise
                if status is not None and self._region_error is not None:
                    self._region_lifted()  # an answer other than 451: this route is served again
                retry_ok = (is_retryable(exc) and (idempotent or not state.connected or status in (429, 503))
                            and self.breaker.state != CircuitBreaker.OPEN)
                if not retry_ok or attempt >= self.max_retries:
                    self.stats.failures += 1
                    raise
                delay = next(delays)
                retry_after = getattr(exc, 'retry_after', None)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                delay = min(delay, self.max_retry_after_s)
                attempt += 1
                self.stats.retries += 1
                LOG.warning('%s: %s %s failed (status=%s); retry %d/%d in %.2f s', self.conn_id, method, path,
                            status if status is not None else 'transport', attempt, self.max_retries, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                # Cancelled, or the raw-data callback failed: no verdict on the server's health.
                self.breaker.release()
                raise
            self.breaker.record_success()
            if self._region_error is not None:
                self._region_lifted()
            return result

    def _count_failure(self, exc: BackpackError, status: Optional[int]) -> None:
        """Book one failed attempt in the stats and the breaker.

        Only transport failures, timeouts and 5xx count against the breaker; any other answer
        (4xx, an unreadable 2xx body) shows the server is reachable and closes it.
        """
        if status is not None:
            key = str(status)
        elif isinstance(exc, BackpackRequestError):
            key = 'transport'
        elif isinstance(exc, BackpackConfigError):
            key = 'config'
        else:
            key = 'protocol'
        self.stats.failures_by_status[key] = self.stats.failures_by_status.get(key, 0) + 1
        if isinstance(exc, BackpackRequestError) and (status is None or status >= 500):
            if self.breaker.record_failure():
                self.stats.breaker_opens += 1
                LOG.warning('%s: circuit breaker opened after %d consecutive failures; failing fast for %.0f s',
                            self.conn_id, self.breaker.failure_threshold, self.breaker.reset_timeout_s)
        else:
            self.breaker.record_success()

    async def _attempt(self, method: str, path: str, query: List[Tuple[str, str]], body: Body,
                       instruction: Optional[str], expect: str, state: _Attempt) -> Any:
        session = self._ensure_session()
        url = self.base_url + path
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(',', ':'), default=_json_default).encode()
            headers['Content-Type'] = JSON_CONTENT_TYPE
        if instruction is not None:
            sign_params = body if body is not None else dict(query)
            headers.update(self.signer.rest_headers(instruction, sign_params))
        signed_at = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        started = time.perf_counter()
        self.stats.requests += 1
        try:
            async with session.request(method, url, params=query or None, data=data, headers=headers,
                                       proxy=self._http_proxy, ssl=self.ssl if self.ssl is not None else True,
                                       timeout=timeout) as response:
                state.connected = True
                raw = await response.read()
                status = response.status
                address = str(response.url)
                retry_after_header = response.headers.get('Retry-After')
        except asyncio.TimeoutError as exc:
            # Only a connect timeout proves nothing was sent; a total timeout may hit mid-request.
            state.connected = not isinstance(exc, aiohttp.ConnectionTimeoutError)
            raise BackpackRequestError(f'{method} timed out after {self.timeout_s:g} s', path=path) from None
        except aiohttp.ClientHttpProxyError as exc:
            # The proxy refused the CONNECT / request: nothing reached Backpack.
            if exc.status == 407:
                raise BackpackConfigError(
                    f'the HTTP proxy {scrub_urls(self.proxy or "")} rejected our credentials (407); check the '
                    f'user:password in the proxy URL') from None
            raise BackpackRequestError(f'{method} refused by the proxy: HTTP {exc.status} {scrub_urls(exc.message)}',
                                       path=path) from None
        except (aiohttp.ClientConnectorError, aiohttp_socks.ProxyConnectionError, aiohttp_socks.ProxyError,
                aiohttp_socks.ProxyTimeoutError) as exc:
            _raise_if_certificate_error(exc, url)
            raise BackpackRequestError(f'{method} could not connect: {_describe(exc)}', path=path) from None
        except (aiohttp.ClientError, OSError) as exc:
            _raise_if_certificate_error(exc, url)
            state.connected = True  # the request may have reached the server
            raise BackpackRequestError(f'{method} transport error: {_describe(exc)}', path=path) from None
        finally:
            self.stats.last_latency_s = time.perf_counter() - started

        self.stats.last_status = status
        text = raw.decode('utf-8', errors='replace')
        tap = BackpackRestClient.tap
        if tap is not None:
            await tap(self, address, text, time.time())
        if 200 <= status < 300:
            return parse_success(status, text, expect, path)
        exc = _error_for(status, text, path, retry_after_header)
        if instruction is not None and isinstance(exc, BackpackAuthError):
            _note_request_time(exc, (time.perf_counter() - signed_at) * 1000, self.signer.window_ms)
        raise exc


def _note_request_time(exc: BackpackAuthError, elapsed_ms: float, window_ms: int) -> None:
    """A signed request was refused: keep how long it took from signing to the answer
    (``exc.elapsed_ms``) and the window it was signed with (``exc.window_ms``). An expired request
    that took longer than its window expired on the way, whatever the clocks say: the message says so."""
    exc.elapsed_ms = round(elapsed_ms)
    exc.window_ms = window_ms
    if request_outlived_window(exc):
        exc.args = (f'{exc.args[0]}; the request took {exc.elapsed_ms} ms from signing to the answer, longer than '
                    f'its signature window of {window_ms} ms (window_ms): it expired on the way, not because of '
                    f'the clock; raise window_ms (at most 10000) or find what slows the requests (network, proxy, '
                    f'a loaded machine)',)


def request_outlived_window(exc: BaseException) -> bool:
    """True when ``exc`` refused a signed request as expired that took longer than its window."""
    elapsed, window = getattr(exc, 'elapsed_ms', None), getattr(exc, 'window_ms', None)
    text = str(exc.args[0] if exc.args else '').lower()
    return (elapsed is not None and window is not None and elapsed > window
            and ('expired' in text or 'timestamp' in text))


def _describe(exc: BaseException) -> str:
    """Exception class and message, safe for logs: aiohttp puts proxy URLs (with passwords) in some."""
    return f'{type(exc).__name__}: {scrub_urls(str(exc))}'


def _raise_if_certificate_error(exc: BaseException, url: str) -> None:
    """Turn a failed certificate check anywhere in ``exc``'s chain into a ``BackpackConfigError``.

    aiohttp reports it as ``ClientConnectorCertificateError`` on direct connections, but through
    a SOCKS connector it arrives as a ``ClientOSError`` caused by ``ssl.SSLCertVerificationError``.
    """
    seen = set()
    cause: Optional[BaseException] = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, aiohttp.ClientConnectorCertificateError):
            detail = cause.certificate_error
            break
        if isinstance(cause, _ssl.SSLCertVerificationError):
            detail = cause
            break
        cause = cause.__cause__ or cause.__context__
    else:
        return
    host = urlsplit(url).netloc
    raise BackpackConfigError(
        f'TLS certificate of {host} could not be verified ({detail}); if the server or an intercepting '
        f'proxy uses a private CA, give its certificate as BackpackConfig.ca_file') from None


def parse_success(status: int, text: str, expect: str, path: str) -> Any:
    if status == 204 or not text.strip():
        return None
    if expect == 'text':
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise BackpackProtocolError(
            f'{path} returned HTTP {status} with a body that is not JSON: {text[:200]!r}') from None


def _error_for(status: int, text: str, path: str, retry_after_header: Optional[str]) -> BackpackError:
    code = None
    message = None
    try:
        payload = json.loads(text) if text.strip() else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = payload.get('code') if isinstance(payload.get('code'), str) else None
        message = payload.get('message') if isinstance(payload.get('message'), str) else None
    summary = message or f'HTTP {status}'
    common = dict(status=status, code=code, body=text or None, path=path)
    if status in (401, 403):
        exc = BackpackAuthError(f'Backpack rejected the credentials: HTTP {status}'
                                f'{" " + code if code else ""}: {summary} (path={path})')
        exc.status, exc.code, exc.path, exc.body = status, code, path, text or None
        return exc
    if status == 429:
        return BackpackRateLimitedError(f'rate limited: {summary}', retry_after=parse_retry_after(retry_after_header),
                                        **common)
    if status == 451:
        return BackpackRegionRestrictedError(_REGION_MESSAGE, **common)
    if status == 503:
        return BackpackMaintenanceError(f'Backpack is under maintenance or unavailable: {summary}', **common)
    return BackpackRequestError(summary, **common)
