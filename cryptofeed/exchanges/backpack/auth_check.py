"""``backpack-auth-check``: verify Backpack API credentials without ever printing the secret.

Run it before configuring a feed, or when a private stream is rejected::

    backpack-auth-check --key-file ~/.config/backpack.yaml
    BACKPACK_PRIVATE_KEY=... backpack-auth-check --api-key <base64 public key> --json
    python -m tools.backpack_auth_check --key-file keys.yaml --server https://api.backpack.exchange

It reports the detected key formats (hex / base64), the public key derived from the private key,
whether the given API key / public key match it, and the signing string and signature of one
instruction (``--instruction``, ``--param``, ``--window``, ``--timestamp``). With ``--server`` it
also measures the clock drift against ``/api/v1/time`` and makes one signed read-only request
(``GET /api/v1/capital``) to learn whether the exchange accepts the key.

Keys come from, in this order of precedence: the flags, ``--key-file`` (YAML or JSON with
``api_key`` / ``public_key`` / ``private_key``, or a cryptofeed ``backpack:`` section with
``key_id`` / ``key_secret``), the environment (``BACKPACK_API_KEY``, ``BACKPACK_PUBLIC_KEY``,
``BACKPACK_PRIVATE_KEY``). Prefer the last two for the private key: flags end up in shell history.

Exit status: 0 valid, 1 invalid credentials (malformed key, mismatch, rejected by the server),
2 usage error (bad arguments, no private key, unreadable key file, bad server URL),
3 the server check could not be completed (unreachable, unexpected answer).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple
from urllib.parse import unquote, urlsplit

import yaml

from cryptofeed.exchanges.backpack.auth import (
    DEFAULT_WINDOW_MS, MAX_EXCHANGE_WINDOW_MS, BackpackSigner, parse_private_key, parse_public_key,
    public_key_from_seed, signing_string,
)
from cryptofeed.exchanges.backpack.errors import BackpackConfigError

__all__ = ['EXIT_OK', 'EXIT_INVALID', 'EXIT_USAGE', 'EXIT_SERVER', 'build_parser', 'main']

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_SERVER = 3

PROG = 'backpack-auth-check'
_ENV = {'api_key': 'BACKPACK_API_KEY', 'public_key': 'BACKPACK_PUBLIC_KEY', 'private_key': 'BACKPACK_PRIVATE_KEY'}
_FILE_NAMES = {'api_key': ('api_key', 'key_id'), 'public_key': ('public_key',),
               'private_key': ('private_key', 'key_secret')}
_MAX_SERVER_MESSAGE = 200


class _UsageError(Exception):
    """Bad invocation: reported on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _param(text: str) -> Tuple[str, str]:
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    return key, value


def _window(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer number of ms, got {text!r}') from None
    if not 1 <= value <= MAX_EXCHANGE_WINDOW_MS:
        raise argparse.ArgumentTypeError(f'must be within 1..{MAX_EXCHANGE_WINDOW_MS} ms, got {value}')
    return value


def _timestamp(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected Unix time in ms, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'expected a positive Unix time in ms, got {value}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``backpack-auth-check``."""
    parser = _Parser(
        prog=PROG, allow_abbrev=False,
        description='Check Backpack API credentials (ED25519) and preview a request signature. '
                    'The private key is never printed.',
        epilog='Key sources, highest precedence first: flags, --key-file, environment '
               '(BACKPACK_API_KEY, BACKPACK_PUBLIC_KEY, BACKPACK_PRIVATE_KEY). Exit status: 0 valid, '
               '1 invalid credentials, 2 usage error, 3 server check not completed.')
    keys = parser.add_argument_group('keys')
    keys.add_argument('--api-key', help='Backpack API key (the base64 ED25519 public key)')
    keys.add_argument('--public-key', help='ED25519 public key, hex or base64 (optional cross-check)')
    keys.add_argument('--private-key', help='ED25519 private key (32-byte seed), hex or base64; '
                                            'prefer BACKPACK_PRIVATE_KEY or --key-file')
    keys.add_argument('--key-file', type=Path, metavar='PATH',
                      help='YAML/JSON file with api_key/private_key, or backpack: {key_id, key_secret}')
    sign = parser.add_argument_group('signature preview')
    sign.add_argument('--instruction', default='balanceQuery', help='instruction name (default: balanceQuery)')
    sign.add_argument('--param', type=_param, action='append', default=[], metavar='KEY=VALUE',
                      help='request parameter to sign (repeatable)')
    sign.add_argument('--window', type=_window, default=DEFAULT_WINDOW_MS, metavar='MS',
                      help=f'signature window in ms (default {DEFAULT_WINDOW_MS})')
    sign.add_argument('--timestamp', type=_timestamp, metavar='MS', help='Unix time in ms (default: now)')
    server = parser.add_argument_group('server check')
    server.add_argument('--server', metavar='URL',
                        help='REST base URL to test against, e.g. https://api.backpack.exchange or the simulator')
    server.add_argument('--ca-file', type=Path, metavar='PATH', help='extra CA bundle (PEM) to trust for --server')
    server.add_argument('--timeout', type=float, default=10.0, metavar='SECONDS',
                        help='per-request timeout for --server (default 10)')
    parser.add_argument('--json', action='store_true', help='print one JSON object instead of text')
    return parser


# ------------------------------------------------------------------------------ key sources

def _read_key_file(path: Path) -> Dict[str, str]:
    """Keys found in a YAML/JSON key file; errors never quote the file's content."""
    try:
        text = path.expanduser().read_text()
    except OSError as exc:
        raise _UsageError(f'cannot read key file {path}: {exc.strerror or type(exc).__name__}') from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' near line {mark.line + 1}' if mark is not None else ''
        raise _UsageError(f'key file {path} is not valid YAML or JSON{where}') from None
    if not isinstance(doc, Mapping):
        raise _UsageError(f'key file {path} must hold a mapping (api_key/private_key or backpack: ...)')
    section = doc.get('backpack', doc)
    if not isinstance(section, Mapping):
        raise _UsageError(f'key file {path}: backpack: must be a mapping')
    places: List[Mapping[str, Any]] = [section]
    if isinstance(section.get('auth'), Mapping):
        places.append(section['auth'])
    found: Dict[str, str] = {}
    for ours, names in _FILE_NAMES.items():
        for place in places:
            for name in names:
                value = place.get(name)
                if value is None or value == '':
                    continue
                if not isinstance(value, str):
                    raise _UsageError(f'key file {path}: {name} must be text; quote it '
                                      f'(YAML reads an unquoted all-digit key as a number)')
                found.setdefault(ours, value)
    return found


def _collect_keys(args: argparse.Namespace, environ: Mapping[str, str]) -> Dict[str, Tuple[str, str]]:
    """``{name: (value, source)}`` for api_key, public_key and private_key, by precedence."""
    from_file = _read_key_file(args.key_file) if args.key_file is not None else {}
    keys: Dict[str, Tuple[str, str]] = {}
    for name in ('api_key', 'public_key', 'private_key'):
        flag = getattr(args, name)
        if flag:
            keys[name] = (flag, '--' + name.replace('_', '-'))
        elif name in from_file:
            keys[name] = (from_file[name], f'key file {args.key_file}')
        elif environ.get(_ENV[name], '').strip():
            keys[name] = (environ[_ENV[name]], _ENV[name])
    return keys


def _secret_forms(text: str) -> List[str]:
    """Every spelling of the private key that must never reach the output."""
    forms = {text, text.strip()}
    try:
        seed, _ = parse_private_key(text)
    except BackpackConfigError:
        return [form for form in forms if form]
    full = seed + public_key_from_seed(seed)
    for raw in (seed, full):
        forms.update({raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(),
                      base64.b64encode(raw).decode().rstrip('=')})
    return [form for form in forms if form]


# ------------------------------------------------------------------------------ checks

def _check_offline(keys: Dict[str, Tuple[str, str]], args: argparse.Namespace,
                   now_ms: int) -> Tuple[Dict[str, Any], Optional[BackpackSigner]]:
    report: Dict[str, Any] = {'ok': False, 'problems': []}
    problems: List[str] = report['problems']
    value, source = keys['private_key']
    try:
        seed, fmt = parse_private_key(value)
    except BackpackConfigError as exc:
        report['private_key'] = {'source': source, 'format': None, 'valid': False}
        problems.append(str(exc))
        return report, None
    derived = public_key_from_seed(seed)
    derived_b64 = base64.b64encode(derived).decode()
    report['private_key'] = {'source': source, 'format': fmt, 'valid': True}
    report['derived_public_key'] = derived_b64
    for name in ('api_key', 'public_key'):
        if name not in keys:
            report[name] = None
            continue
        given_text, given_source = keys[name]
        entry: Dict[str, Any] = {'source': given_source, 'format': None, 'matches': False}
        report[name] = entry
        try:
            given, given_fmt = parse_public_key(given_text, name)
        except BackpackConfigError as exc:
            problems.append(f'{exc}; on Backpack the API key is the base64 public key')
            continue
        entry['format'] = given_fmt
        if given == derived:
            entry['matches'] = True
        elif public_key_from_seed(given) == seed:
            problems.append(f'{name} and the private key look swapped: {name} holds a private key whose '
                            f'public key is the given private key; give the secret as the private key')
        else:
            problems.append(f'{name} does not match the public key derived from the private key '
                            f'({derived_b64}); both must come from the same key pair')
    signer = BackpackSigner(seed, window_ms=args.window)
    params = dict(args.param)
    timestamp = args.timestamp if args.timestamp is not None else now_ms
    message = signing_string(args.instruction, params, timestamp, args.window)
    headers = signer.rest_headers(args.instruction, params, timestamp_ms=timestamp, window_ms=args.window)
    report['signing'] = {
        'instruction': args.instruction, 'params': params, 'timestamp': timestamp, 'window': args.window,
        'string': message, 'signature': headers['X-Signature'], 'headers': headers,
    }
    report['ok'] = not problems
    return report, signer


def _proxy_settings(proxy: Optional[str], ssl_context: Any) -> Tuple[Any, Optional[str]]:
    """(connector, per-request proxy URL) for aiohttp: SOCKS via aiohttp-socks, HTTP CONNECT natively."""
    if proxy is None:
        return None, None
    parts = urlsplit(proxy)
    scheme = parts.scheme.lower()
    if scheme in ('http', 'https'):
        return None, proxy
    from aiohttp_socks import ProxyConnector, ProxyType

    connector = ProxyConnector(
        proxy_type=ProxyType.SOCKS5, host=parts.hostname, port=parts.port or 1080,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        rdns=scheme == 'socks5h', ssl=ssl_context if ssl_context is not None else True)
    return connector, None


def _server_message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:_MAX_SERVER_MESSAGE]
    if isinstance(data, Mapping):
        text = ' '.join(str(data[k]) for k in ('code', 'message') if data.get(k))
        return text[:_MAX_SERVER_MESSAGE]
    return body.strip()[:_MAX_SERVER_MESSAGE]


async def _check_server(rest_url: str, ssl_context: Any, proxy: Optional[str], signer: BackpackSigner,
                        timeout: float) -> Dict[str, Any]:
    import aiohttp

    result: Dict[str, Any] = {'url': rest_url, 'clock_drift_ms': None, 'status': None, 'accepted': None,
                              'message': None, 'error': None}
    connector, request_proxy = _proxy_settings(proxy, ssl_context)
    ssl_arg: Any = ssl_context if ssl_context is not None else True
    try:
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            before = time.time()
            async with session.get(f'{rest_url}/api/v1/time', proxy=request_proxy, ssl=ssl_arg) as resp:
                body = await resp.text()
                time_status = resp.status
            after = time.time()
            drift = 0
            if time_status == 200 and body.strip().isdigit():
                drift = int(body.strip()) - round((before + after) * 500)
                result['clock_drift_ms'] = drift
            else:
                result['error'] = f'/api/v1/time answered status {time_status}; clock drift unknown'
            headers = signer.rest_headers('balanceQuery', None, timestamp_ms=signer.now_ms() + drift)
            async with session.get(f'{rest_url}/api/v1/capital', headers=headers, proxy=request_proxy,
                                   ssl=ssl_arg) as resp:
                body = await resp.text()
                result['status'] = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        result['error'] = f'request failed: {type(exc).__name__}: {exc}'.rstrip(': ')
        return result
    status = result['status']
    if status == 200:
        result['accepted'] = True
    elif status in (401, 403):
        result['accepted'] = False
        result['message'] = _server_message(body)
    else:
        result['message'] = _server_message(body)
    return result


# ------------------------------------------------------------------------------ output

def _render_text(report: Mapping[str, Any]) -> str:
    lines = ['Backpack credential check']
    private = report.get('private_key')
    if private is not None:
        fmt = private['format'] or 'unreadable'
        lines.append(f'  private key       {fmt}, from {private["source"]} (never shown)')
    if report.get('derived_public_key'):
        lines.append(f'  derived public    {report["derived_public_key"]}  (= the Backpack API key)')
    for name, title in (('api_key', 'api key'), ('public_key', 'public key')):
        entry = report.get(name)
        if entry is None:
            if 'derived_public_key' in report:
                lines.append(f'  {title:<17} not given')
            continue
        verdict = 'matches' if entry['matches'] else 'DOES NOT MATCH'
        lines.append(f'  {title:<17} {entry["format"] or "unreadable"}, from {entry["source"]}: {verdict}')
    signing = report.get('signing')
    if signing is not None:
        params = ' '.join(f'{k}={v}' for k, v in sorted(signing['params'].items())) or '(none)'
        lines += [
            f'  instruction       {signing["instruction"]}',
            f'  params            {params}',
            f'  timestamp         {signing["timestamp"]} ms',
            f'  window            {signing["window"]} ms',
            f'  signing string    {signing["string"]}',
            f'  signature         {signing["signature"]}',
        ]
    server = report.get('server')
    if server is not None:
        lines.append(f'server {server["url"]}')
        drift = server['clock_drift_ms']
        if drift is not None:
            side = 'ahead of' if drift > 0 else 'behind' if drift < 0 else 'in step with'
            lines.append(f'  clock drift       {drift:+d} ms (server {side} this machine)')
        if server['status'] is not None:
            verdict = {True: 'credentials accepted', False: 'credentials REJECTED'}.get(
                server['accepted'], 'unexpected answer')
            detail = f' ({server["message"]})' if server['message'] else ''
            lines.append(f'  GET /api/v1/capital  status {server["status"]}: {verdict}{detail}')
        if server['error']:
            lines.append(f'  note              {server["error"]}')
    for warning in report.get('warnings', []):
        lines.append(f'warning: {warning}')
    for problem in report['problems']:
        lines.append(f'problem: {problem}')
    lines.append('result: VALID' if report['exit_code'] == EXIT_OK else
                 'result: INVALID CREDENTIALS' if report['exit_code'] == EXIT_INVALID else
                 'result: USAGE ERROR' if report['exit_code'] == EXIT_USAGE else
                 'result: SERVER CHECK NOT COMPLETED')
    return '\n'.join(lines)


class _Output:
    """Writes to stdout/stderr, removing any spelling of the private key as a last safeguard."""

    def __init__(self, stdout: TextIO, stderr: TextIO):
        self.stdout, self.stderr = stdout, stderr
        self.secrets: List[str] = []

    def _scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, '<redacted>')
        return text

    def out(self, text: str) -> None:
        print(self._scrub(text), file=self.stdout)

    def err(self, text: str) -> None:
        print(self._scrub(text), file=self.stderr)


def _argv_secrets(argv: Sequence[str]) -> List[str]:
    """Values given to --private-key, so that even argparse errors cannot echo them."""
    found = []
    for index, token in enumerate(argv):
        if token == '--private-key' and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif token.startswith('--private-key='):
            found.append(token.split('=', 1)[1])
    return [value for value in found if value]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the credential check; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    output = _Output(sys.stdout, sys.stderr)
    output.secrets = _argv_secrets(argv)
    parser = build_parser()
    want_json = '--json' in argv
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        keys = _collect_keys(args, os.environ)
        if 'private_key' not in keys:
            raise _UsageError('no private key: give --key-file, set BACKPACK_PRIVATE_KEY, or use --private-key')
        output.secrets += _secret_forms(keys['private_key'][0])
        server_settings = None
        if args.server is not None:
            from cryptofeed.exchanges.backpack.config import BackpackConfig

            try:
                server_config = BackpackConfig(rest_url=args.server, ca_file=args.ca_file)
                server_settings = (server_config.rest_url, server_config.ssl_context(), server_config.rest_proxy)
            except BackpackConfigError as exc:
                raise _UsageError(str(exc).replace('rest_url', '--server').replace('ca_file', '--ca-file')) from None
            if not args.timeout > 0:
                raise _UsageError('--timeout must be > 0')
    except _UsageError as exc:
        output.err(f'{PROG}: error: {exc}')
        output.err(f'run {PROG} --help for usage')
        if want_json:
            output.out(json.dumps({'ok': False, 'exit_code': EXIT_USAGE, 'problems': [str(exc)]}))
        return EXIT_USAGE

    if args.private_key:
        output.err('note: --private-key leaves the key in your shell history; '
                   'prefer BACKPACK_PRIVATE_KEY or --key-file')
    report, signer = _check_offline(keys, args, int(time.time() * 1000))
    report['warnings'] = []
    report['server'] = None
    if server_settings is not None:
        if signer is None or not report['ok']:
            report['warnings'].append('server check skipped: fix the key problems first')
        else:
            server = asyncio.run(_check_server(*server_settings, signer, args.timeout))
            report['server'] = server
            drift = server['clock_drift_ms']
            if drift is not None and abs(drift) > args.window // 2:
                report['warnings'].append(
                    f'this clock is {abs(drift)} ms off the server, more than half the {args.window} ms window: '
                    f'sync the clock or set clock_offset_ms={drift} in BackpackConfig')
            if server['accepted'] is False:
                report['problems'].append(f'the server rejected the credentials (status {server["status"]})')

    if report['problems']:
        code = EXIT_INVALID
    elif report['server'] is not None and report['server']['accepted'] is not True:
        code = EXIT_SERVER
    else:
        code = EXIT_OK
    report['ok'] = code == EXIT_OK
    report['exit_code'] = code
    output.out(json.dumps(report, indent=2) if args.json else _render_text(report))
    return code


if __name__ == '__main__':
    sys.exit(main())
