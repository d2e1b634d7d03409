"""Shared test helpers: fixture loading. Tests never reach beyond 127.0.0.1."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / 'fixtures' / 'backpack'


def load_fixture(name: str):
    """Parsed JSON of ``tests/fixtures/backpack/<name>``."""
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def fixture_json():
    return load_fixture


# Tests of one cryptofeed line's host end in _cf2.py or _cf3.py; each runs on its own line of the
# test matrix (make test-lines), the other line's are not collected.
from cryptofeed.exchanges.backpack import CRYPTOFEED_LINE  # noqa: E402

collect_ignore_glob = [f'*_cf{line}.py' for line in (2, 3) if line != CRYPTOFEED_LINE]
