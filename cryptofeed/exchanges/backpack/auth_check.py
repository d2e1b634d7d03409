"""``backpack-auth-check``: verify Backpack API credentials without ever printing the secret.

    backpack-auth-check --key-file ~/.config/backpack.yaml --server https://api.backpack.exchange
    BACKPACK_PRIVATE_KEY=... python -m tools.backpack_auth_check --api-key <base64 public key> --json

It reports the key formats, the public key derived from the private key, whether the API / public key
match it, and the signing string and signature of one instruction. With ``--server`` a
``BackpackRestClient`` (TLS and proxy as ``BackpackConfig`` resolves them) measures the clock drift and
makes one signed, read-only ``balanceQuery``. Keys, per key: the flags, else ``--key-file`` (read by
config.py's loader), else the environment (``ENV_VARS``). Exit status: 0 valid, 1 invalid credentials
(malformed, mismatched or rejected by the server), 2 usage error, 3 server check not completed.
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
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple

from cryptofeed.exchanges.backpack.core.auth import (
    DEFAULT_WINDOW_MS, MAX_EXCHANGE_WINDOW_MS, BackpackSigner, match_public_key, parse_private_key,
    public_key_from_seed, signing_string,
)
from cryptofeed.exchanges.backpack.core.config import ENV_VARS, BackpackConfig, load_yaml_file, section_to_fields
from cryptofeed.exchanges.backpack.core.errors import BackpackAuthError, BackpackConfigError, BackpackError
from cryptofeed.exchanges.backpack.core.rest.client import BackpackRestClient

__all__ = ['EXIT_OK', 'EXIT_INVALID', 'EXIT_USAGE', 'EXIT_SERVER', 'build_parser', 'main']

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3
_VERDICTS = {EXIT_OK: 'VALID', EXIT_INVALID: 'INVALID CREDENTIALS', EXIT_SERVER: 'SERVER CHECK NOT COMPLETED'}
PROG = 'backpack-auth-check'
_KEYS = ('api_key', 'public_key', 'private_key')
_ENV = {path[len('auth.'):]: name for name, path in ENV_VARS.items() if path.startswith('auth.')}


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


def _ms(expected: str, high: Optional[int] = None) -> Callable[[str], int]:
    """Argument type: a whole number of ms, >= 1 (and <= ``high``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}') from None
        if value < 1 or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'must be within 1..{high} ms, got {value}' if high is not None
                                             else f'expected a positive {expected}, got {value}')
        return value
    return parse


_MIN_TIMESTAMP_MS = 1_420_070_400_000   # 2015-01-01 UTC
_MAX_TIMESTAMP_MS = 4_102_444_800_000   # 2100-01-01 UTC


def _timestamp_ms(text: str) -> int:
    """Argument type of ``--timestamp``: an integer number of ms between 2015 and 2100 (so neither
    seconds, nor microseconds, nor ``1e30``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected Unix time in ms, an integer such as 1614550000000, '
                                         f'got {text[:40]!r}') from None
    if not _MIN_TIMESTAMP_MS <= value < _MAX_TIMESTAMP_MS:
        raise argparse.ArgumentTypeError(
            f'must be a Unix time in ms between 2015-01-01 ({_MIN_TIMESTAMP_MS}) and 2100-01-01 '
            f'({_MAX_TIMESTAMP_MS}), got {text[:40]} (a time in seconds or microseconds?)')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``backpack-auth-check``."""
    parser = _Parser(
        prog=PROG, allow_abbrev=False,
        description='Check Backpack API credentials (ED25519) and preview a request signature. '
                    'The private key is never printed.',
        epilog='Key sources, highest precedence first: flags, --key-file, environment (BACKPACK_API_KEY, '
               'BACKPACK_PUBLIC_KEY, BACKPACK_PRIVATE_KEY). Exit status: 0 valid, 1 invalid credentials, '
               '2 usage error, 3 server check not completed.')
    keys, sign, server = map(parser.add_argument_group, ('keys', 'signature preview', 'server check'))
    keys.add_argument('--api-key', help='Backpack API key (the base64 ED25519 public key)')
    keys.add_argument('--public-key', help='ED25519 public key, hex or base64 (optional cross-check)')
    keys.add_argument('--private-key', help='ED25519 private key (32-byte seed), hex or base64; '
                                            'prefer BACKPACK_PRIVATE_KEY or --key-file')
    keys.add_argument('--key-file', type=Path, metavar='PATH',
                      help='YAML/JSON file with api_key/private_key, or backpack: {key_id, key_secret}')
    sign.add_argument('--instruction', default='balanceQuery', help='instruction name (default: balanceQuery)')
    sign.add_argument('--param', type=_param, action='append', default=[], metavar='KEY=VALUE',
                      help='request parameter to sign (repeatable)')
    sign.add_argument('--window', type=_ms('an integer number of ms', MAX_EXCHANGE_WINDOW_MS), metavar='MS',
                      default=DEFAULT_WINDOW_MS, help=f'signature window in ms (default {DEFAULT_WINDOW_MS})')
    sign.add_argument('--timestamp', type=_timestamp_ms, metavar='MS',
                      help='Unix time in ms, 2015..2100 (default: now)')
    server.add_argument('--server', metavar='URL',
                        help='REST base URL to test against, e.g. https://api.backpack.exchange or the simulator')
    server.add_argument('--ca-file', type=Path, metavar='PATH', help='extra CA bundle (PEM) to trust for --server')
    server.add_argument('--timeout', type=float, default=10.0, metavar='SECONDS',
                        help='per-request timeout for --server (default 10)')
    parser.add_argument('--json', action='store_true', help='print one JSON object instead of text')
    return parser


def _read_key_file(path: Path) -> Dict[str, str]:
    """The keys of a key file, read with the configuration loader; errors never quote its content."""
    doc = load_yaml_file(path, 'key file', 'YAML or JSON')
    section = doc.get('backpack', doc) if isinstance(doc, Mapping) else None
    if not isinstance(section, Mapping):
        raise _UsageError(f'key file {path} must hold a mapping (api_key/private_key or backpack: ...)')
    fields = section_to_fields(section)
    place = fields['auth'] if isinstance(fields.get('auth'), Mapping) else fields
    found = {name: place[name] for name in _KEYS if place.get(name) not in (None, '')}
    for name, value in found.items():
        if not isinstance(value, str):
            raise _UsageError(f'key file {path}: {name} must be text; quote it '
                              f'(YAML reads an unquoted all-digit key as a number)')
    return found


def _collect_keys(args: argparse.Namespace, environ: Mapping[str, str]) -> Dict[str, Tuple[str, str]]:
    """``{name: (value, source)}`` for api_key, public_key and private_key, by precedence."""
    from_file = _read_key_file(args.key_file) if args.key_file is not None else {}
    keys: Dict[str, Tuple[str, str]] = {}
    for name in _KEYS:
        if getattr(args, name):
            keys[name] = (getattr(args, name), '--' + name.replace('_', '-'))
        elif name in from_file:
            keys[name] = (from_file[name], f'key file {args.key_file}')
        elif environ.get(_ENV[name], '').strip():
            keys[name] = (environ[_ENV[name]], _ENV[name])
    return keys


def _server_client(args: argparse.Namespace) -> BackpackRestClient:
    """The client of ``--server``: one attempt per request; TLS and proxy as ``BackpackConfig`` resolves them."""
    try:
        return BackpackRestClient.from_config(BackpackConfig(
            rest_url=args.server, ca_file=args.ca_file, request_timeout_s=args.timeout, max_retries=0))
    except BackpackConfigError as exc:
        message = str(exc)
        for option, flag in (('rest_url', '--server'), ('ca_file', '--ca-file'), ('request_timeout_s', '--timeout')):
            message = message.replace(option, flag)
        raise _UsageError(message) from None


def _check_offline(keys: Dict[str, Tuple[str, str]], args: argparse.Namespace,
                   now_ms: int) -> Tuple[Dict[str, Any], Optional[BackpackSigner]]:
    """The report of the keys and the signature preview, and the signer (None for an unreadable key)."""
    value, source = keys['private_key']
    private: Dict[str, Any] = {'source': source, 'format': None, 'valid': False}
    report: Dict[str, Any] = {'ok': False, 'problems': [], 'private_key': private}
    try:
        seed, private['format'] = parse_private_key(value)
    except BackpackConfigError as exc:
        report['problems'].append(str(exc))
        return report, None
    private['valid'] = True
    report['derived_public_key'] = base64.b64encode(public_key_from_seed(seed)).decode()
    for name in ('api_key', 'public_key'):
        report[name] = None
        if name in keys:
            fmt, problem = match_public_key(keys[name][0], seed, name, 'the private key')
            report[name] = {'source': keys[name][1], 'format': fmt, 'matches': problem is None}
            report['problems'] += [problem] if problem else []
    signer = BackpackSigner(seed, window_ms=args.window)
    params, timestamp = dict(args.param), args.timestamp or now_ms
    headers = signer.rest_headers(args.instruction, params, timestamp_ms=timestamp, window_ms=args.window)
    report['signing'] = {
        'instruction': args.instruction, 'params': params, 'timestamp': timestamp, 'window': args.window,
        'string': signing_string(args.instruction, params, timestamp, args.window),
        'signature': headers['X-Signature'], 'headers': headers,
    }
    return report, signer


def _server_message(body: Optional[str]) -> str:
    """Backpack's ``code message`` from an error body, else the start of the body."""
    try:
        data = json.loads(body or '')
    except ValueError:
        data = None
    words = [str(data[k]) for k in ('code', 'message') if data.get(k)] if isinstance(data, dict) else [body or '']
    return ' '.join(words).strip()[:200]


async def _check_server(client: BackpackRestClient, signer: BackpackSigner) -> Dict[str, Any]:
    """Clock drift, then one ``balanceQuery`` signed with the drift-corrected clock."""
    result: Dict[str, Any] = {'url': client.base_url, 'clock_drift_ms': None, 'status': None, 'accepted': None,
                              'message': None, 'error': None}
    client.signer = signer
    async with client:
        try:
            before = time.time()
            try:
                drift = await client.server_time_ms() - round((before + time.time()) * 500)
                signer.clock_offset_ms = result['clock_drift_ms'] = drift
            except BackpackError:
                if client.stats.last_status is None:
                    raise  # no answer at all
                result['error'] = f'/api/v1/time answered status {client.stats.last_status}; clock drift unknown'
            await client.balances()
            result.update(status=client.stats.last_status, accepted=True)
        except BackpackError as exc:
            status = getattr(exc, 'status', None)
            if status is None:
                result['error'] = f'request failed: {exc}'
            else:
                result.update(status=status, accepted=False if isinstance(exc, BackpackAuthError) else None,
                              message=_server_message(getattr(exc, 'body', None)))
    return result


def _render_text(report: Mapping[str, Any]) -> str:
    """The report as the aligned text the CLI prints without ``--json``."""
    private, signing, server = report['private_key'], report.get('signing'), report['server']
    rows = [('private key', f'{private["format"] or "unreadable"}, from {private["source"]} (never shown)')]
    if 'derived_public_key' in report:
        rows.append(('derived public', f'{report["derived_public_key"]}  (= the Backpack API key)'))
        for name in ('api_key', 'public_key'):
            entry = report[name]
            rows.append((name.replace('_', ' '), 'not given' if entry is None else
                         f'{entry["format"] or "unreadable"}, from {entry["source"]}: '
                         f'{"matches" if entry["matches"] else "DOES NOT MATCH"}'))
    if signing is not None:
        params = ' '.join(f'{k}={v}' for k, v in sorted(signing['params'].items())) or '(none)'
        rows += [('instruction', signing['instruction']), ('params', params),
                 ('timestamp', f'{signing["timestamp"]} ms'), ('window', f'{signing["window"]} ms'),
                 ('signing string', signing['string']), ('signature', signing['signature'])]
    lines = ['Backpack credential check'] + [f'  {title:<17} {text}' for title, text in rows]
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
    lines += [f'warning: {warning}' for warning in report['warnings']]
    lines += [f'problem: {problem}' for problem in report['problems']]
    return '\n'.join(lines + [f'result: {_VERDICTS[report["exit_code"]]}'])


def _secret_forms(secrets: Sequence[str]) -> List[str]:
    """Every spelling of these private keys that must never reach the output, longest first."""
    forms = set()
    for text in secrets:
        forms.update((text, text.strip()))
        try:
            seed, _ = parse_private_key(text)
        except BackpackConfigError:
            continue
        for raw in (seed, seed + public_key_from_seed(seed)):
            b64 = base64.b64encode(raw).decode()
            forms.update((raw.hex(), raw.hex().upper(), b64, b64.rstrip('=')))
    return sorted(filter(None, forms), key=len, reverse=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the credential check; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Values of --private-key, so that even argparse errors cannot echo them.
    secrets = [value for flag, value in zip(argv, argv[1:]) if flag == '--private-key']
    secrets += [token.partition('=')[2] for token in argv if token.startswith('--private-key=')]

    def say(text: str, stream: Optional[TextIO] = None) -> None:
        for form in _secret_forms(secrets):
            text = text.replace(form, '<redacted>')
        print(text, file=stream or sys.stdout)

    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        keys = _collect_keys(args, os.environ)
        if 'private_key' not in keys:
            raise _UsageError('no private key: give --key-file, set BACKPACK_PRIVATE_KEY, or use --private-key')
        secrets.append(keys['private_key'][0])
        client = _server_client(args) if args.server is not None else None
    except (_UsageError, BackpackConfigError) as exc:
        say(f'{PROG}: error: {exc}\nrun {PROG} --help for usage', sys.stderr)
        if '--json' in argv:
            say(json.dumps({'ok': False, 'exit_code': EXIT_USAGE, 'problems': [str(exc)]}))
        return EXIT_USAGE

    if args.private_key:
        say('note: --private-key leaves the key in your shell history; prefer BACKPACK_PRIVATE_KEY or --key-file',
            sys.stderr)
    report, signer = _check_offline(keys, args, int(time.time() * 1000))
    report.update(warnings=[], server=None)
    if client is not None and (signer is None or report['problems']):
        report['warnings'].append('server check skipped: fix the key problems first')
    elif client is not None:
        server = report['server'] = asyncio.run(_check_server(client, signer))
        drift = server['clock_drift_ms']
        if drift is not None and abs(drift) > args.window // 2:
            report['warnings'].append(
                f'this clock is {abs(drift)} ms off the server, more than half the {args.window} ms window: '
                f'sync the clock or set clock_offset_ms={drift} in BackpackConfig')
        if server['accepted'] is False:
            report['problems'].append(f'the server rejected the credentials (status {server["status"]})')
    code = (EXIT_INVALID if report['problems'] else EXIT_OK if report['server'] is None
            or report['server']['accepted'] is True else EXIT_SERVER)
    report.update(ok=code == EXIT_OK, exit_code=code)
    say(json.dumps(report, indent=2) if args.json else _render_text(report))
    return code


if __name__ == '__main__':
    sys.exit(main())
