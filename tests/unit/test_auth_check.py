"""The credential check CLI, offline and against a loopback HTTP(S) server.

Most tests call its ``main(argv)`` in this process (``tests/inprocess.py``: same exit status, stdout
and stderr, a controlled environment); the ones parametrized over real entry points run it as a
process of its own (``python -m tools.backpack_auth_check`` and the installed ``backpack-auth-check``
script) and between them cover every exit status and the no-secret checks across the process boundary.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import trustme
from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from cryptofeed.exchanges.backpack.auth_check import main as auth_check_main
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner, signing_string
from tests.inprocess import run_main

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which('backpack-auth-check', path=str(Path(sys.executable).parent))

# A distinctive key pair; the secret must never show up in any output.
SEED = bytes(range(200, 232))
KEY_HEX = SEED.hex()
KEY_B64 = base64.b64encode(SEED).decode()
SIGNER = BackpackSigner(SEED)
PUB_B64 = SIGNER.public_key
PUB_HEX = base64.b64decode(PUB_B64).hex()
OTHER_PUB_B64 = BackpackSigner(bytes(range(32))).public_key
SECRET_FORMS = [KEY_HEX, KEY_HEX.upper(), KEY_B64, KEY_B64.rstrip('=')]
TS = 1614550000000

ENTRY_POINTS = ['module', 'script']   # real processes; 'inprocess' calls main() here


def _clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('BACKPACK_') and k.lower() not in ('https_proxy', 'all_proxy', 'no_proxy',
                                                                   'http_proxy')}
    env.update(extra or {})
    return env


def _command(entry: str) -> List[str]:
    if entry == 'script':
        assert SCRIPT is not None, 'backpack-auth-check is not installed next to sys.executable'
        return [SCRIPT]
    return [sys.executable, '-m', 'tools.backpack_auth_check']


def run(*args: str, entry: str = 'inprocess', env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    if entry == 'inprocess':
        return run_main(auth_check_main, args, env=_clean_env(env), cwd=REPO_ROOT)
    return subprocess.run(_command(entry) + list(args), cwd=REPO_ROOT, env=_clean_env(env),
                          capture_output=True, text=True, timeout=60)


async def run_async(*args: str, entry: str = 'inprocess',
                    env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Like ``run`` but without blocking the event loop that serves the test server.

    In process the CLI runs in a thread: it calls ``asyncio.run`` and this loop serves the server."""
    if entry == 'inprocess':
        return await asyncio.to_thread(run, *args, entry=entry, env=env)
    command = _command(entry) + list(args)
    proc = await asyncio.create_subprocess_exec(*command, cwd=REPO_ROOT, env=_clean_env(env),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(command, proc.returncode, out.decode(), err.decode())


def assert_no_secret(result: subprocess.CompletedProcess) -> None:
    for form in SECRET_FORMS:
        assert form not in result.stdout, f'private key ({form[:6]}...) printed on stdout'
        assert form not in result.stderr, f'private key ({form[:6]}...) printed on stderr'


def expected_signature(instruction='balanceQuery', params=None, timestamp=TS, window=5000) -> str:
    return SIGNER.rest_headers(instruction, params, timestamp_ms=timestamp, window_ms=window)['X-Signature']


# ------------------------------------------------------------------------------ offline checks

def test_console_script_is_installed():
    assert SCRIPT is not None and os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize('entry, key, fmt', [('module', KEY_B64, 'base64'), ('script', KEY_HEX, 'hex'),
                                             ('inprocess', KEY_HEX, 'hex'), ('inprocess', KEY_B64, 'base64')])
def test_valid_key(entry, key, fmt):
    result = run('--private-key', key, '--api-key', PUB_B64, '--timestamp', str(TS), entry=entry)
    assert result.returncode == 0, result.stderr
    assert f'private key       {fmt}, from --private-key' in result.stdout
    assert f'derived public    {PUB_B64}' in result.stdout
    assert 'api key           base64, from --api-key: matches' in result.stdout
    assert f'signing string    instruction=balanceQuery&timestamp={TS}&window=5000' in result.stdout
    assert f'signature         {expected_signature()}' in result.stdout
    assert result.stdout.rstrip().endswith('result: VALID')
    assert 'shell history' in result.stderr  # the nudge towards env / key file
    assert_no_secret(result)


def test_golden_vector_from_the_api_notes():
    result = run('--private-key', 'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=', '--timestamp', '1614550000000',
                 '--json')
    report = json.loads(result.stdout)
    assert report['derived_public_key'] == 'iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w='
    assert report['signing']['signature'] == (
        'Z84gQTC7cBU2B7ntts0up1fqeLuPKUdNaYqZ8hMecImH8gBJzdntZ8AedhMlKMqLYysELwKES3SFW+k8i+JuDA==')


def test_instruction_params_and_window():
    result = run('--private-key', KEY_HEX, '--instruction', 'orderCancel', '--param', 'symbol=BTC_USDT',
                 '--param', 'orderId=28', '--window', '60000', '--timestamp', str(TS), '--json')
    assert result.returncode == 0, result.stderr
    signing = json.loads(result.stdout)['signing']
    params = {'symbol': 'BTC_USDT', 'orderId': '28'}
    assert signing['string'] == signing_string('orderCancel', params, TS, 60000)
    assert signing['string'] == f'instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp={TS}&window=60000'
    assert signing['signature'] == expected_signature('orderCancel', params, TS, 60000)
    assert signing['headers'] == {'X-API-Key': PUB_B64, 'X-Signature': signing['signature'],
                                  'X-Timestamp': str(TS), 'X-Window': '60000'}


def test_timestamp_defaults_to_now():
    before = int(time.time() * 1000)
    result = run('--private-key', KEY_B64, '--json')
    after = int(time.time() * 1000)
    signing = json.loads(result.stdout)['signing']
    assert before <= signing['timestamp'] <= after
    assert signing['signature'] == expected_signature(timestamp=signing['timestamp'])


@pytest.mark.parametrize('entry', ['script', 'inprocess'])
def test_mismatching_api_key(entry):
    result = run('--private-key', KEY_B64, '--api-key', OTHER_PUB_B64, entry=entry)
    assert result.returncode == 1
    assert 'api key           base64, from --api-key: DOES NOT MATCH' in result.stdout
    assert f'api_key does not match the public key derived from the private key ({PUB_B64})' in result.stdout
    assert 'result: INVALID CREDENTIALS' in result.stdout
    assert_no_secret(result)


def test_matching_hex_public_key_and_mismatching_one():
    ok = run('--private-key', KEY_B64, '--public-key', PUB_HEX, '--api-key', PUB_B64)
    assert ok.returncode == 0
    assert 'public key        hex, from --public-key: matches' in ok.stdout
    bad = run('--private-key', KEY_B64, '--public-key', base64.b64decode(OTHER_PUB_B64).hex())
    assert bad.returncode == 1
    assert 'public_key does not match' in bad.stdout


def test_swapped_keys_are_recognised():
    result = run('--private-key', PUB_B64, '--api-key', KEY_B64)
    assert result.returncode == 1
    assert 'look swapped' in result.stdout
    assert_no_secret(result)


@pytest.mark.parametrize('entry, bad', [
    ('inprocess', KEY_HEX[:-2]), ('script', '!' + KEY_B64[1:]), ('inprocess', base64.b64encode(SEED + b'x').decode()),
    ('inprocess', KEY_HEX + '00' * 32),
])
def test_malformed_private_key(entry, bad):
    result = run('--private-key', bad, '--json', entry=entry)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report['ok'] is False and report['exit_code'] == 1
    assert report['private_key']['valid'] is False
    assert report['problems'] and 'signing' not in report
    assert bad not in result.stdout + result.stderr
    assert_no_secret(result)


def test_malformed_api_key():
    result = run('--private-key', KEY_B64, '--api-key', 'not-a-key')
    assert result.returncode == 1
    assert 'API key is the base64 public key' in result.stdout


@pytest.mark.parametrize('entry', ['module', 'inprocess'])
def test_no_key_is_a_usage_error(entry):
    result = run('--api-key', PUB_B64, entry=entry)
    assert result.returncode == 2
    assert 'no private key' in result.stderr
    assert 'BACKPACK_PRIVATE_KEY' in result.stderr


def test_no_key_with_json_still_prints_json():
    result = run('--json')
    assert result.returncode == 2
    assert json.loads(result.stdout) == {'ok': False, 'exit_code': 2, 'problems': [
        'no private key: give --key-file, set BACKPACK_PRIVATE_KEY, or use --private-key']}


@pytest.mark.parametrize('args, expected', [
    (['--window', '0'], 'argument --window: must be within 1..60000 ms'),
    (['--window', 'x'], 'argument --window: expected an integer'),
    (['--param', 'novalue'], 'argument --param: expected KEY=VALUE'),
    (['--timestamp', 'yesterday'], 'argument --timestamp: expected Unix time in ms'),
    (['--frobnicate'], 'unrecognized arguments: --frobnicate'),
    (['--private'], 'unrecognized arguments: --private'),
    (['--server', 'http://example.com'], '--server uses http:// for example.com'),
    (['--server', 'ftp://127.0.0.1'], '--server must start with https://'),
    (['--server', 'https://127.0.0.1:1', '--ca-file', '/nonexistent/ca.pem'],
     '--ca-file /nonexistent/ca.pem does not exist'),
])
def test_usage_errors(args, expected):
    result = run('--private-key', KEY_B64, *args)
    assert result.returncode == 2, result.stdout
    assert expected in result.stderr
    assert_no_secret(result)


def test_argparse_error_with_the_key_in_argv_does_not_echo_it():
    result = run(f'--private-key={KEY_B64}', '--window', 'never')
    assert result.returncode == 2
    assert_no_secret(result)


def test_help():
    result = run('--help')
    assert result.returncode == 0
    assert '--key-file' in result.stdout and '--server' in result.stdout and 'Exit status' in result.stdout


# ------------------------------------------------------------------------------ key sources

@pytest.mark.parametrize('entry', ['script', 'inprocess'])
def test_keys_from_environment(entry):
    result = run('--timestamp', str(TS), entry=entry,
                 env={'BACKPACK_PRIVATE_KEY': KEY_HEX, 'BACKPACK_API_KEY': PUB_B64})
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'private key       hex, from BACKPACK_PRIVATE_KEY' in result.stdout
    assert 'api key           base64, from BACKPACK_API_KEY: matches' in result.stdout
    assert f'signature         {expected_signature()}' in result.stdout
    assert 'shell history' not in result.stderr
    assert_no_secret(result)


def test_mismatch_from_environment():
    result = run(env={'BACKPACK_PRIVATE_KEY': KEY_B64, 'BACKPACK_API_KEY': OTHER_PUB_B64})
    assert result.returncode == 1
    assert 'from BACKPACK_API_KEY: DOES NOT MATCH' in result.stdout


@pytest.mark.parametrize('entry, content', [
    ('inprocess', f'api_key: {PUB_B64}\nprivate_key: "{KEY_HEX}"\n'),
    ('inprocess', json.dumps({'api_key': PUB_B64, 'private_key': KEY_B64})),
    ('script', f'log:\n  level: INFO\nbackpack:\n  key_id: {PUB_B64}\n  key_secret: "{KEY_HEX}"\n'
               f'  native_enabled: true\n'),
    ('inprocess', f'backpack:\n  auth:\n    private_key: {KEY_B64}\n    api_key: {PUB_B64}\n'),
])
def test_keys_from_key_file(tmp_path, entry, content):
    path = tmp_path / 'keys.yaml'
    path.write_text(content)
    result = run('--key-file', str(path), '--timestamp', str(TS), entry=entry)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'from key file {path}' in result.stdout
    assert 'api key           base64, from key file' in result.stdout
    assert f'signature         {expected_signature()}' in result.stdout
    assert_no_secret(result)


def test_key_file_mismatch(tmp_path):
    path = tmp_path / 'keys.json'
    path.write_text(json.dumps({'backpack': {'key_id': OTHER_PUB_B64, 'key_secret': KEY_B64}}))
    result = run('--key-file', str(path))
    assert result.returncode == 1
    assert 'DOES NOT MATCH' in result.stdout
    assert_no_secret(result)


@pytest.mark.parametrize('content, expected', [
    (None, 'cannot read key file'),
    (f'private_key: "{KEY_B64}"\n  broken: [\n', 'is not valid YAML or JSON near line'),
    ('- a\n- b\n', 'must hold a mapping'),
    ('private_key: ' + '12' * 32 + '\n', 'must be text; quote it'),
    ('api_key: abc\n', 'no private key'),
])
def test_bad_key_files_are_usage_errors(tmp_path, content, expected):
    path = tmp_path / 'keys.yaml'
    if content is not None:
        path.write_text(content)
    result = run('--key-file', str(path))
    assert result.returncode == 2
    assert expected in result.stderr
    assert_no_secret(result)
    assert '12' * 32 not in result.stderr


def test_precedence_flag_then_file_then_env(tmp_path):
    path = tmp_path / 'keys.yaml'
    path.write_text(f'api_key: {OTHER_PUB_B64}\nprivate_key: {KEY_B64}\n')
    env = {'BACKPACK_PRIVATE_KEY': 'garbage', 'BACKPACK_API_KEY': OTHER_PUB_B64}
    # The file's private key beats the environment's; the flag's api key beats the file's.
    result = run('--key-file', str(path), '--api-key', PUB_B64, '--json', env=env)
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert report['private_key']['source'] == f'key file {path}'
    assert report['api_key'] == {'source': '--api-key', 'format': 'base64', 'matches': True}


# ------------------------------------------------------------------------------ --json

@pytest.mark.parametrize('entry', ['module', 'inprocess'])
def test_json_output(entry):
    result = run('--private-key', KEY_HEX, '--api-key', PUB_B64, '--public-key', PUB_HEX, '--timestamp', str(TS),
                 '--json', entry=entry)
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report['ok'] is True and report['exit_code'] == 0 and report['problems'] == []
    assert report['private_key'] == {'source': '--private-key', 'format': 'hex', 'valid': True}
    assert report['derived_public_key'] == PUB_B64
    assert report['api_key'] == {'source': '--api-key', 'format': 'base64', 'matches': True}
    assert report['public_key'] == {'source': '--public-key', 'format': 'hex', 'matches': True}
    assert report['signing']['signature'] == expected_signature()
    assert report['signing']['timestamp'] == TS and report['signing']['window'] == 5000
    assert report['server'] is None
    assert_no_secret(result)


def test_json_mismatch():
    result = run('--private-key', KEY_B64, '--api-key', OTHER_PUB_B64, '--json')
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report['ok'] is False and report['api_key']['matches'] is False
    assert any('does not match' in problem for problem in report['problems'])


# ------------------------------------------------------------------------------ --server
# A small aiohttp server written here, verifying signatures with PyNaCl the way Backpack documents
# them; it can skew its clock and fail on demand. The package simulator is used further down.

class FakeBackpack:
    """Serves /api/v1/time and a signed /api/v1/capital on 127.0.0.1."""

    def __init__(self, known_keys=(PUB_B64,), clock_skew_ms: int = 0, capital_status: Optional[int] = None,
                 ssl_context: Optional[ssl.SSLContext] = None):
        self.known_keys = set(known_keys)
        self.clock_skew_ms = clock_skew_ms
        self.capital_status = capital_status
        self.ssl_context = ssl_context
        self.capital_requests: List[Dict[str, str]] = []
        self.url = ''
        self._runner: Optional[web.AppRunner] = None

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_skew_ms

    async def _time(self, request: web.Request) -> web.Response:
        return web.Response(text=str(self.now_ms()))

    async def _capital(self, request: web.Request) -> web.Response:
        self.capital_requests.append(dict(request.headers))
        if self.capital_status is not None:
            return web.json_response({'code': 'SERVER_ERROR', 'message': 'boom'}, status=self.capital_status)
        try:
            key = request.headers['X-API-Key']
            timestamp = int(request.headers['X-Timestamp'])
            window = int(request.headers.get('X-Window', '5000'))
            signature = base64.b64decode(request.headers['X-Signature'])
        except (KeyError, ValueError):
            return web.json_response({'code': 'UNAUTHORIZED', 'message': 'missing auth headers'}, status=401)
        if key not in self.known_keys:
            return web.json_response({'code': 'UNAUTHORIZED', 'message': 'unknown API key'}, status=401)
        if window > 60000 or abs(self.now_ms() - timestamp) > window:
            return web.json_response({'code': 'INVALID_CLIENT_REQUEST', 'message': 'Request has expired'},
                                     status=400)
        message = f'instruction=balanceQuery&timestamp={timestamp}&window={window}'.encode()
        try:
            VerifyKey(base64.b64decode(key)).verify(message, signature)
        except BadSignatureError:
            return web.json_response({'code': 'INVALID_SIGNATURE', 'message': 'Invalid signature'}, status=401)
        return web.json_response({'USDC': {'available': '120', 'locked': '0', 'staked': '0'}})

    async def __aenter__(self) -> 'FakeBackpack':
        app = web.Application()
        app.router.add_get('/api/v1/time', self._time)
        app.router.add_get('/api/v1/capital', self._capital)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, '127.0.0.1', 0, ssl_context=self.ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f'{"https" if self.ssl_context else "http"}://127.0.0.1:{port}'
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


@pytest.mark.parametrize('entry', ['module', 'inprocess'])
async def test_server_accepts_valid_key(entry):
    async with FakeBackpack() as server:
        result = await run_async('--server', server.url + '/', '--timestamp', str(TS), entry=entry,
                                 env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'server {server.url}' in result.stdout
    assert 'GET /api/v1/capital  status 200: credentials accepted' in result.stdout
    assert 'clock drift' in result.stdout
    assert len(server.capital_requests) == 1
    assert server.capital_requests[0]['X-API-Key'] == PUB_B64
    assert_no_secret(result)


async def test_server_rejects_unknown_key():
    async with FakeBackpack(known_keys=[OTHER_PUB_B64]) as server:
        result = await run_async('--server', server.url, '--private-key', KEY_HEX, '--json')
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report['server']['status'] == 401 and report['server']['accepted'] is False
    assert report['server']['message'] == 'UNAUTHORIZED unknown API key'
    assert any('server rejected the credentials (status 401)' in p for p in report['problems'])
    assert_no_secret(result)


async def test_server_clock_drift_is_reported_and_corrected():
    async with FakeBackpack(clock_skew_ms=30000) as server:
        result = await run_async('--server', server.url, '--json', env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert 29000 <= report['server']['clock_drift_ms'] <= 31000
    assert report['server']['accepted'] is True
    sent = int(server.capital_requests[0]['X-Timestamp'])
    assert abs(sent - (int(time.time() * 1000) + 30000)) < 5000  # signed with the corrected clock
    assert any('clock_offset_ms=' in warning for warning in report['warnings'])


@pytest.mark.parametrize('entry', ['script', 'inprocess'])
async def test_server_unexpected_status_is_exit_3(entry):
    async with FakeBackpack(capital_status=500) as server:
        result = await run_async('--server', server.url, entry=entry, env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 3
    assert 'status 500: unexpected answer (SERVER_ERROR boom)' in result.stdout
    assert 'result: SERVER CHECK NOT COMPLETED' in result.stdout


async def test_unreachable_server_is_exit_3():
    async with FakeBackpack() as server:
        url = server.url
    result = await run_async('--server', url, '--json', env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report['server']['status'] is None and 'request failed' in report['server']['error']


async def test_server_check_skipped_when_the_keys_are_wrong():
    async with FakeBackpack() as server:
        result = await run_async('--server', server.url, '--api-key', OTHER_PUB_B64,
                                 env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 1
    assert 'server check skipped' in result.stdout
    assert server.capital_requests == []


@pytest.fixture(scope='module')
def tls_material(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1')
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    path = tmp_path_factory.mktemp('tls') / 'ca.pem'
    ca.cert_pem.write_to_path(str(path))
    return context, path


async def test_server_over_tls_honours_ca_file(tls_material):
    context, ca_file = tls_material
    async with FakeBackpack(ssl_context=context) as server:
        trusted = await run_async('--server', server.url, '--ca-file', str(ca_file), '--json',
                                  env={'BACKPACK_PRIVATE_KEY': KEY_B64})
        untrusted = await run_async('--server', server.url, '--json', '--timeout', '5',
                                    env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert json.loads(trusted.stdout)['server']['accepted'] is True
    assert untrusted.returncode == 3
    assert 'certificate' in json.loads(untrusted.stdout)['server']['error'].lower()


# ------------------------------------------------------------------------------ --server, the package simulator
# The same checks against the project's protocol-faithful simulator (TLS, with its own CA).

async def test_simulator_accepts_a_registered_key_over_tls():
    from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, tls=True, strict_keys=[PUB_B64]) as sim:
        result = await run_async('--server', sim.rest_url, '--ca-file', sim.ca_file, '--json', entry='script',
                                 env={'BACKPACK_PRIVATE_KEY': KEY_HEX, 'BACKPACK_API_KEY': PUB_B64})
    assert result.returncode == 0, result.stdout + result.stderr
    server = json.loads(result.stdout)['server']
    assert server['status'] == 200 and server['accepted'] is True
    assert abs(server['clock_drift_ms']) < 5000
    assert_no_secret(result)


async def test_simulator_rejects_an_unregistered_key():
    from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

    async with BackpackSimulator(markets=['SOL_USDC'], rate=0, strict_keys=[OTHER_PUB_B64]) as sim:
        result = await run_async('--server', sim.rest_url, env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 1
    assert 'GET /api/v1/capital  status 401: credentials REJECTED (UNAUTHORIZED' in result.stdout
    assert 'result: INVALID CREDENTIALS' in result.stdout
    assert_no_secret(result)


# ------------------------------------------------------------------------------ more server answers
# The --server check runs on BackpackRestClient: each of its error kinds maps onto a report field and
# an exit status. The simulator's fault injection supplies the odd answers.

async def test_a_failed_time_request_leaves_the_drift_unknown_but_still_checks_the_key():
    from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        sim.inject({'fault': 'http_status', 'status': 503, 'count': 1, 'path': '/api/v1/time'})
        result = await run_async('--server', sim.rest_url, env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'note              /api/v1/time answered status 503; clock drift unknown' in result.stdout
    assert 'clock drift  ' not in result.stdout
    assert 'GET /api/v1/capital  status 200: credentials accepted' in result.stdout


async def test_403_is_a_rejection_with_the_server_message():
    async with FakeBackpack(capital_status=403) as server:
        result = await run_async('--server', server.url, '--json', env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report['server']['status'] == 403 and report['server']['accepted'] is False
    assert report['server']['message'] == 'SERVER_ERROR boom'
    assert 'the server rejected the credentials (status 403)' in report['problems']


async def test_a_region_block_is_an_unexpected_answer_not_a_rejection():
    from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        sim.inject({'fault': 'http_status', 'status': 451, 'count': 1, 'path': '/api/v1/capital'})
        result = await run_async('--server', sim.rest_url, env={'BACKPACK_PRIVATE_KEY': KEY_B64})
    assert result.returncode == 3
    assert 'GET /api/v1/capital  status 451: unexpected answer (FORBIDDEN Unavailable' in result.stdout
    assert 'result: SERVER CHECK NOT COMPLETED' in result.stdout


async def test_a_slow_server_times_out_once_without_retrying():
    from cryptofeed.exchanges.backpack.simulator.server import BackpackSimulator

    async with BackpackSimulator(markets=['SOL_USDC'], rate=0) as sim:
        sim.inject({'fault': 'slow_rest', 'delay': 3.0, 'count': 5})
        result = await run_async('--server', sim.rest_url, '--timeout', '0.5', '--json',
                                 env={'BACKPACK_PRIVATE_KEY': KEY_B64})
        delayed = 5 - sum(entry[1] for entry in sim._faults._slow)
    assert result.returncode == 3
    server = json.loads(result.stdout)['server']
    assert server['status'] is None and 'request failed' in server['error'] and 'timed out' in server['error']
    assert delayed <= 2  # at most one attempt each for /api/v1/time and /api/v1/capital: no retries


@pytest.mark.parametrize('value', ['0', '-1', 'nan'])
def test_a_bad_timeout_is_a_usage_error_naming_the_flag(value):
    result = run('--private-key', KEY_B64, '--server', 'https://127.0.0.1:1', '--timeout', value)
    assert result.returncode == 2
    assert '--timeout' in result.stderr and 'request_timeout_s' not in result.stderr


@pytest.mark.parametrize('content, expected', [
    ('backpack: [a, b]\n', 'must hold a mapping'),
    (f'backpack:\n  key_secret: "{KEY_B64}"\n  auth:\n    private_key: "{KEY_B64}"\n', 'not both'),
    (f'backpack:\n  key_secret: "{KEY_B64}"\n  key_id: 12345\n', 'api_key must be text'),
])
def test_more_bad_key_files(tmp_path, content, expected):
    path = tmp_path / 'keys.yaml'
    path.write_text(content)
    result = run('--key-file', str(path))
    assert result.returncode == 2
    assert expected in result.stderr
    assert_no_secret(result)


def test_key_file_entries_that_are_empty_fall_back_to_the_environment(tmp_path):
    path = tmp_path / 'keys.yaml'
    path.write_text('backpack:\n  key_id: ""\n  key_secret:\n')
    result = run('--key-file', str(path), '--json', env={'BACKPACK_PRIVATE_KEY': KEY_B64, 'BACKPACK_API_KEY': PUB_B64})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report['private_key']['source'] == 'BACKPACK_PRIVATE_KEY'
    assert report['api_key']['source'] == 'BACKPACK_API_KEY'
