"""Shared test helpers: fixture loading. Tests never reach beyond 127.0.0.1."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Tuple

import aiohttp

import pytest

from cryptofeed.exchanges.backpack import CRYPTOFEED_LINE

FIXTURES = Path(__file__).parent / 'fixtures' / 'backpack'


def load_fixture(name: str):
    """Parsed JSON of ``tests/fixtures/backpack/<name>``."""
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def fixture_json():
    return load_fixture


@pytest.fixture
async def http():
    """One aiohttp session for the test, closed after it."""
    async with aiohttp.ClientSession() as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str, **params) -> Tuple[int, Any, Any]:
    """GET ``url``: (status, the body parsed as JSON whatever its content type, the headers)."""
    async with http.get(url, params=params) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


@pytest.fixture
def refused_port():
    """A loopback port where nothing listens, kept so for the whole test.

    The socket is bound but never listens: every connection to it is refused, and no other
    process (another xdist worker, a simulator on port 0) can take the port meanwhile, as it
    could between closing a probe socket and using its number.
    """
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        yield sock.getsockname()[1]


# Tests of one cryptofeed line's host end in _cf2.py or _cf3.py; each runs on its own line of the
# test matrix (make test-lines), the other line's are not collected.
collect_ignore_glob = [f'*_cf{line}.py' for line in (2, 3) if line != CRYPTOFEED_LINE]
