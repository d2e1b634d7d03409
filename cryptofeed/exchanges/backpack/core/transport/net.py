"""Network addressing for every transport: which proxy to use, which URLs are acceptable, how to
show them safely.

Use this module wherever a URL or a proxy is decided or printed. It is the only place that reads
the proxy environment variables, so REST, WebSocket and the credential check cannot disagree:

* ``resolve_proxy(configured, target)``: the configured proxy when there is one, otherwise the
  first non-blank of ``HTTPS_PROXY``, ``https_proxy``, ``ALL_PROXY``, ``all_proxy`` (whatever the
  target's scheme, DESIGN D7), unless ``NO_PROXY`` / ``no_proxy`` matches the target's host;
  the result is validated (``validate_proxy_url``) and a bare ``host:port`` means HTTP;
* ``validate_service_url`` / ``validate_proxy_url``: checks with messages that say what to fix
  and never show a password;
* ``mask_url`` (one URL) and ``scrub_urls`` (any text, e.g. an aiohttp error) hide passwords;
* ``socks_connector``: the aiohttp connector for a ``socks5://`` / ``socks5h://`` proxy
  (``h``: the proxy resolves host names). HTTP CONNECT proxies need no connector.
"""
from __future__ import annotations

import ipaddress
import os
import re
import ssl as _ssl
from typing import Mapping, Optional
from urllib.parse import unquote, urlsplit

from cryptofeed.exchanges.backpack.core import log

__all__ = [
    'PROXY_SCHEMES', 'SOCKS_SCHEMES', 'PROXY_ENV_VARS', 'NO_PROXY_ENV_VARS', 'is_loopback_host', 'mask_url',
    'scrub_urls', 'validate_service_url', 'validate_proxy_url', 'no_proxy_matches', 'resolve_proxy', 'is_socks',
    'socks_connector',
]

LOG = log.get()

PROXY_SCHEMES = ('http', 'https', 'socks5', 'socks5h')
SOCKS_SCHEMES = ('socks5', 'socks5h')
PROXY_ENV_VARS = ('HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy')
NO_PROXY_ENV_VARS = ('NO_PROXY', 'no_proxy')

_USERINFO = re.compile(r'(?<=//)[^\s\'"]*@')


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
    return parts._replace(netloc=f'{parts.username or ""}:***@{host}').geturl()


def scrub_urls(text: object) -> str:
    """``text`` with the user information of every URL in it replaced by ``***``."""
    return _USERINFO.sub('***@', str(text))


def validate_service_url(value: str, field: str, secure: str, plain: str) -> str:
    """Check a REST/WS endpoint and return it without a trailing slash.

    ``plain`` (``http``/``ws``) is accepted only for loopback hosts, such as the simulator.
    """
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


def validate_proxy_url(url: str, where: str, *, bare_is_http: bool = False) -> str:
    """Check a proxy URL; messages never show its password. Returns ``scheme://netloc``, scheme
    lower-cased. With ``bare_is_http`` a ``host:port`` without a scheme means HTTP, as curl and
    the proxy environment variables have it; in a configuration file a scheme is required."""
    text = url.strip()
    if bare_is_http and '://' not in text:
        text = 'http://' + text
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


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """True when ``host`` is excluded from proxying by a NO_PROXY-style list.

    Entries: ``*``; host names (``example.com`` and ``.example.com`` both match the domain and its
    subdomains); IP addresses; CIDR blocks (``127.0.0.0/8``). A ``:port`` suffix is ignored.
    """
    host = host.strip('[]').rstrip('.').lower()
    if not host:
        return False
    try:
        host_ip = ipaddress.ip_address(host)
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
                pass  # not a CIDR block: ignore the entry, as curl does
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


def resolve_proxy(configured: Optional[str], target: str,
                  environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The proxy URL for connections to ``target``, or None for a direct connection.

    ``configured`` (from ``BackpackConfig.proxies``) always wins; otherwise the environment
    decides as the module docstring says. ``environ`` defaults to ``os.environ`` read now.
    Raises ``ValueError`` naming the variable when it holds an unusable proxy URL.
    """
    if configured:
        return validate_proxy_url(configured, 'proxy', bare_is_http=True)
    env = os.environ if environ is None else environ
    host = urlsplit(target).hostname or ''
    if no_proxy_matches(host, ','.join(env.get(name) or '' for name in NO_PROXY_ENV_VARS)):
        return None
    for name in PROXY_ENV_VARS:
        value = (env.get(name) or '').strip()
        if value:
            url = validate_proxy_url(value, f'environment variable {name}', bare_is_http=True)
            LOG.debug('Backpack connections to %s: proxy from %s: %s', urlsplit(target).hostname, name, mask_url(url))
            return url
    return None


def is_socks(proxy: Optional[str]) -> bool:
    return bool(proxy) and urlsplit(proxy).scheme.lower() in SOCKS_SCHEMES


def socks_connector(proxy: str, ssl_context: Optional[_ssl.SSLContext]):
    """An aiohttp connector that tunnels through the SOCKS5 ``proxy``."""
    import aiohttp_socks
    import python_socks

    parts = urlsplit(proxy)
    return aiohttp_socks.ProxyConnector(
        proxy_type=python_socks.ProxyType.SOCKS5, host=parts.hostname, port=parts.port or 1080,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        rdns=parts.scheme.lower() == 'socks5h', ssl=ssl_context if ssl_context is not None else True)
