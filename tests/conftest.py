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
