"""Real Redis and PostgreSQL servers for tests: started on 127.0.0.1, on a free port, and killed after.

Fixtures (import them into a test module, or a ``conftest.py``)::

    from tests.integration.services import postgres_server, redis_server  # noqa: F401

    async def test_something(redis_server, postgres_server):
        redis_server      # 'redis://127.0.0.1:PORT' : an empty Redis, database 0
        postgres_server   # 'postgresql://postgres@127.0.0.1:PORT/postgres' : an empty cluster, trust auth

Each test gets servers of its own, so nothing is shared between tests or pytest-xdist workers:
no fixed port (a free one is picked, and another tried if it was taken meanwhile), every file in
a private temporary directory. Redis keeps nothing on disk (no RDB snapshots, no AOF).
PostgreSQL runs with ``fsync=off``; it refuses to run as root, so as root the cluster directory is
handed to the ``postgres`` system user and ``initdb``/``postgres`` run as that user (the child
process switches user before it starts them, so the process the test stops is the server itself).

More than one server in a test (a sharded deployment): the context managers behind the
fixtures take the directory to use and yield the URL::

    with running_redis(tmp_path / 'shard-a') as a, running_redis(tmp_path / 'shard-b') as b:
        ...

The binaries come from the machine (``make services`` installs them): ``redis-server`` on PATH,
PostgreSQL's ``initdb`` and ``postgres`` on PATH or in ``/usr/lib/postgresql/<version>/bin``.
A missing one fails the test with the package to install.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

__all__ = ['redis_server', 'postgres_server', 'running_redis', 'running_postgres', 'free_port']

START_TIMEOUT_S = 60.0     # a loaded machine (2 cores, several xdist workers) can be slow to start a server
PORT_ATTEMPTS = 5          # a free port can be taken by another process between picking and binding it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _need(binary: Optional[str], what: str) -> str:
    if binary is None:
        pytest.fail(f'{what} is not installed: run `make services` (as root it installs it; Debian: '
                    f'apt-get install redis-server postgresql)')
    return binary


# -- Redis -------------------------------------------------------------------------------------

def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as conn:
            conn.sendall(b'PING\r\n')
            return conn.recv(64).startswith(b'+PONG')
    except OSError:
        return False


@contextmanager
def running_redis(directory: Path) -> Iterator[str]:
    """A ``redis-server`` on 127.0.0.1, working in ``directory`` (created), without persistence;
    yields ``redis://127.0.0.1:PORT``; terminates the server on exit."""
    binary = _need(shutil.which('redis-server') or next(iter(glob.glob('/usr/bin/redis-server')), None),
                   'redis-server')
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / 'redis.log'
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            [binary, '--port', str(port), '--bind', '127.0.0.1', '--dir', str(directory), '--save', '',
             '--appendonly', 'no', '--daemonize', 'no', '--logfile', str(log), '--protected-mode', 'yes'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while process.poll() is None and not _redis_ping(port):
                if time.monotonic() > deadline:
                    pytest.fail(f'redis-server did not answer on port {port} within {START_TIMEOUT_S} s: '
                                f'{log.read_text()[-2000:] if log.exists() else "no log"}')
                time.sleep(0.02)
            if process.poll() is None:
                yield f'redis://127.0.0.1:{port}'
                return
            text = log.read_text() if log.exists() else ''
            if 'Address already in use' not in text:
                pytest.fail(f'redis-server exited with status {process.returncode}: {text[-2000:]}')
        finally:
            _stop(process)
    pytest.fail(f'redis-server found no free port in {PORT_ATTEMPTS} attempts')


@pytest.fixture
def redis_server(tmp_path) -> Iterator[str]:
    """An empty Redis server of this test's own: its URL, ``redis://127.0.0.1:PORT``."""
    with running_redis(tmp_path / 'redis') as url:
        yield url


# -- PostgreSQL ----------------------------------------------------------------------------------

def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f'/usr/lib/postgresql/*/bin/{name}'),
                      key=lambda path: int(path.split('/')[4]) if path.split('/')[4].isdigit() else 0)
    return _need(versions[-1] if versions else None, f"PostgreSQL's {name}")


def _postgres_user() -> dict:
    """Popen arguments that run a command as the ``postgres`` system user when this is root
    (PostgreSQL refuses to run as root), else nothing."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam('postgres')
    except KeyError:
        pytest.fail('running as root, PostgreSQL needs the `postgres` system user: install the postgresql '
                    'package (make services), or run the tests as another user')
    return {'user': user.pw_uid, 'group': user.pw_gid, 'extra_groups': []}


def _postgres_ready(data: Path) -> bool:
    """postmaster.pid's last line says ``ready`` once the server accepts connections."""
    try:
        lines = (data / 'postmaster.pid').read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == 'ready'


@contextmanager
def running_postgres(directory: Optional[Path] = None) -> Iterator[str]:
    """A fresh PostgreSQL cluster (``initdb``) and its server on 127.0.0.1, with the Unix socket
    in the same private directory; yields ``postgresql://postgres@127.0.0.1:PORT/postgres``
    (superuser ``postgres``, trust authentication); stops the server and removes the directory.

    ``directory`` defaults to a new one under the system's temporary directory: the socket path
    must stay under the kernel's 107 characters, and as root the directory must belong to the
    ``postgres`` user, which cannot enter pytest's root-only ``tmp_path``."""
    initdb, postgres = _postgres_bin('initdb'), _postgres_bin('postgres')
    base = Path(tempfile.mkdtemp(prefix='pg-', dir=directory))
    try:
        as_user = _postgres_user()
        if as_user:
            os.chown(base, as_user['user'], as_user['group'])
        data = base / 'data'
        init = subprocess.run([initdb, '-D', str(data), '-U', 'postgres', '--auth=trust', '--encoding=UTF8',
                               '--no-sync', '--no-instructions'],
                              capture_output=True, text=True, timeout=START_TIMEOUT_S * 2, cwd=base, **as_user)
        if init.returncode != 0:
            pytest.fail(f'initdb failed ({init.returncode}): {init.stderr[-2000:]}')
        log = base / 'postgres.log'
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            with open(log, 'w') as log_file:
                process = subprocess.Popen(
                    [postgres, '-D', str(data), '-p', str(port), '-h', '127.0.0.1', '-k', str(base),
                     '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
                     '-c', 'max_connections=20', '-c', 'shared_buffers=16MB'],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=base, **as_user)
            try:
                deadline = time.monotonic() + START_TIMEOUT_S
                while process.poll() is None and not _postgres_ready(data):
                    if time.monotonic() > deadline:
                        pytest.fail(f'postgres did not start on port {port} within {START_TIMEOUT_S} s: '
                                    f'{log.read_text()[-2000:]}')
                    time.sleep(0.05)
                if process.poll() is None:
                    yield f'postgresql://postgres@127.0.0.1:{port}/postgres'
                    return
                text = log.read_text()
                if 'could not bind' not in text and 'Address already in use' not in text:
                    pytest.fail(f'postgres exited with status {process.returncode}: {text[-2000:]}')
            finally:
                _stop(process)
        pytest.fail(f'postgres found no free port in {PORT_ATTEMPTS} attempts')
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_server() -> Iterator[str]:
    """An empty PostgreSQL cluster of this test's own: its DSN,
    ``postgresql://postgres@127.0.0.1:PORT/postgres``."""
    with running_postgres() as dsn:
        yield dsn
