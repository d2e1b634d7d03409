"""The error tree and the pure retry classifier."""
from __future__ import annotations

import asyncio

import pytest

from cryptofeed.exchanges.backpack.core.errors import (
    BackpackAuthError, BackpackConfigError, BackpackError, BackpackMaintenanceError, BackpackProtocolError,
    BackpackRateLimitedError, BackpackRegionRestrictedError, BackpackRequestError, is_retryable,
)


def test_every_error_is_a_backpack_error():
    for cls in (BackpackAuthError, BackpackConfigError, BackpackProtocolError, BackpackRequestError,
                BackpackRateLimitedError, BackpackRegionRestrictedError, BackpackMaintenanceError):
        assert issubclass(cls, BackpackError)
    assert issubclass(BackpackConfigError, ValueError)


def test_request_error_carries_status_code_body_and_truncates_the_body_in_its_message():
    err = BackpackRequestError('failed', status=400, code='INVALID_PRICE', body='x' * 1000, path='/api/v1/order')
    assert (err.status, err.code, err.path) == (400, 'INVALID_PRICE', '/api/v1/order')
    assert len(err.body) == 1000
    text = str(err)
    assert 'status=400' in text and 'code=INVALID_PRICE' in text and len(text) < 400


def test_rate_limited_error_keeps_retry_after():
    assert BackpackRateLimitedError('slow down', retry_after=2.5, status=429).retry_after == 2.5


@pytest.mark.parametrize('exc,expected', [
    (BackpackRateLimitedError('x', status=429), True),
    (BackpackMaintenanceError('x', status=503), True),
    (BackpackRequestError('x', status=500), True),
    (BackpackRequestError('x', status=None), True),
    (BackpackRequestError('x', status=400), False),
    (BackpackRequestError('x', status=404), False),
    (BackpackRegionRestrictedError('x', status=451), False),
    (BackpackAuthError('x'), False),
    (BackpackConfigError('x'), False),
    (BackpackProtocolError('x'), False),
    (ConnectionResetError(), True),
    (asyncio.TimeoutError(), True),
    (KeyError('x'), False),
])
def test_is_retryable(exc, expected):
    assert is_retryable(exc) is expected
