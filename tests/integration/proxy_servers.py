"""Real proxy servers on 127.0.0.1 for the proxy tests, each keeping a log of what it relayed.

* ``Socks5Server`` -- a small RFC 1928 SOCKS5 relay (no authentication, CONNECT only) running
  on the test's event loop. Each CONNECT is logged (logger ``tests.socks5``) and appended to
  ``connects`` as ``(host, port)`` exactly as the client asked for it: an IP address for
  ``socks5://`` (client-side resolution) or a host name for ``socks5h://``.
* ``ProxyPyProcess`` -- the proxy.py HTTP proxy (``python -m proxy``) as a separate process,
  with its access log in a file; ``wait_for_log`` waits for a line such as
  ``CONNECT 127.0.0.1:PORT``. proxy.py writes an access line when a proxied connection closes.
* ``Socks5Process`` -- ``Socks5Server`` in a separate process (``python -m
  tests.integration.proxy_servers``), logging ``CONNECT <host> <port>`` per tunnel as it opens.

(proxy.py's own SOCKS module is an unfinished SOCKS4 stub, hence the SOCKS5 relay here.)
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple

__all__ = ['Socks5Server', 'ProxyPyProcess', 'Socks5Process']

LOG = logging.getLogger('tests.socks5')

_VERSION = 5
_NO_AUTH = 0
_NO_ACCEPTABLE = 0xFF
_CMD_CONNECT = 1
_ATYP_IPV4, _ATYP_DOMAIN, _ATYP_IPV6 = 1, 3, 4
_REPLY_OK, _REPLY_FAILURE, _REPLY_REFUSED, _REPLY_BAD_COMMAND, _REPLY_BAD_ADDRESS = 0, 1, 5, 7, 8


class Socks5Server:
    """SOCKS5 CONNECT relay on ``host``:``port`` (0 = any free port). Start, use, ``await stop()``."""

    def __init__(self, host: str = '127.0.0.1', port: int = 0):
        self.host = host
        self.port = port
        self.connects: List[Tuple[str, int]] = []
        self._server: Optional[asyncio.base_events.Server] = None
        self._tasks: Set[asyncio.Task] = set()
        self._writers: Set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f'socks5://{self.host}:{self.port}'

    async def start(self) -> 'Socks5Server':
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening, close every relayed connection and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()   # both pumps of a relay then see end-of-file and finish
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> 'Socks5Server':
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            upstream = await self._handshake(reader, writer)
            if upstream is not None:
                up_reader, up_writer = upstream
                await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # only stop() cancels, as a last resort; this task is the connection's top level
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _handshake(self, reader, writer):
        version, n_methods = await reader.readexactly(2)
        methods = await reader.readexactly(n_methods)
        if version != _VERSION or _NO_AUTH not in methods:
            writer.write(bytes([_VERSION, _NO_ACCEPTABLE]))
            await writer.drain()
            return None
        writer.write(bytes([_VERSION, _NO_AUTH]))
        await writer.drain()

        version, command, _reserved, address_type = await reader.readexactly(4)
        if address_type == _ATYP_IPV4:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif address_type == _ATYP_IPV6:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif address_type == _ATYP_DOMAIN:
            length = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(length)).decode('idna')
        else:
            await self._reply(writer, _REPLY_BAD_ADDRESS)
            return None
        (port,) = struct.unpack('!H', await reader.readexactly(2))
        if version != _VERSION or command != _CMD_CONNECT:
            await self._reply(writer, _REPLY_BAD_COMMAND)
            return None

        LOG.info('SOCKS5 CONNECT %s:%d', host, port)
        self.connects.append((host, port))
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            await self._reply(writer, _REPLY_REFUSED)
            return None
        self._writers.add(up_writer)
        await self._reply(writer, _REPLY_OK)
        return up_reader, up_writer

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
        writer.write(bytes([_VERSION, code, 0, _ATYP_IPV4]) + socket.inet_aton('0.0.0.0') + struct.pack('!H', 0))
        await writer.drain()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                chunk = await src.read(65536)
                if not chunk:
                    break
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()
            self._writers.discard(dst)


class ProxyPyProcess:
    """``python -m proxy`` on 127.0.0.1 with a free port, its log written to ``workdir``.

    ``extra_args`` go to proxy.py as they are (e.g. ``['--basic-auth', 'user:pass']``).
    """

    def __init__(self, workdir: Path, extra_args: Sequence[str] = ()):
        self.workdir = Path(workdir)
        self.extra_args = list(extra_args)
        self.port_file = self.workdir / 'proxy.port'
        self.log_file = self.workdir / 'proxy.log'
        self.port: Optional[int] = None
        self._process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def _command(self) -> List[str]:
        return [sys.executable, '-m', 'proxy', '--hostname', '127.0.0.1', '--port', '0',
                '--port-file', str(self.port_file), '--num-workers', '1', '--num-acceptors', '1',
                '--log-file', str(self.log_file), '--log-level', 'INFO',
                '--data-dir', str(self.workdir / 'data'), '--pid-file', str(self.workdir / 'proxy.pid'),
                *self.extra_args]

    def start(self, ready_timeout_s: float = 15.0) -> 'ProxyPyProcess':
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if 'proxy' not in k.lower()}
        self._process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=env, cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f'{self._command()[2]} exited with code {self._process.returncode}: {self.log_text()[-2000:]}')
            if self.port is None and self.port_file.exists():
                text = self.port_file.read_text().strip()
                if text.isdigit():
                    self.port = int(text)
            if self.port is not None:
                try:
                    with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError('proxy.py did not start listening in time')

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None

    def log_text(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ''

    def access_lines(self) -> List[str]:
        return [line for line in self.log_text().splitlines() if 'access_log' in line]

    async def wait_for_log(self, needle: str, timeout_s: float = 10.0) -> str:
        """The first access-log line containing ``needle``; AssertionError if none shows up in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.access_lines():
                if needle in line:
                    return line
            await asyncio.sleep(0.05)
        raise AssertionError(f'proxy.py logged no line with {needle!r}; access log: {self.access_lines()}')


class Socks5Process(ProxyPyProcess):
    """``Socks5Server`` as its own process; ``connects`` reads the tunnels it logged."""

    @property
    def url(self) -> str:
        return f'socks5://127.0.0.1:{self.port}'

    def _command(self) -> List[str]:
        return [sys.executable, '-m', 'tests.integration.proxy_servers', '--port-file', str(self.port_file),
                '--log-file', str(self.log_file)]

    @property
    def connects(self) -> List[Tuple[str, int]]:
        out = []
        for line in self.log_text().splitlines():
            word, host, port = line.split()
            if word == 'CONNECT':
                out.append((host, int(port)))
        return out


def _serve_forever(port_file: Path, log_file: Path) -> None:
    import signal

    class _LoggedConnects(list):
        def append(self, item):
            super().append(item)
            with log_file.open('a') as log:
                log.write(f'CONNECT {item[0]} {item[1]}\n')

    async def run():
        server = await Socks5Server().start()
        server.connects = _LoggedConnects()
        port_file.write_text(str(server.port))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(run())


if __name__ == '__main__':
    import argparse

    parser = argparse.ArgumentParser(description='SOCKS5 CONNECT relay on 127.0.0.1 for tests')
    parser.add_argument('--port-file', type=Path, required=True)
    parser.add_argument('--log-file', type=Path, required=True)
    options = parser.parse_args()
    _serve_forever(options.port_file, options.log_file)
