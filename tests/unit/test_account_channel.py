"""AccountChannel without a network: settings checks, stream plan, auth-failure bookkeeping."""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from types import SimpleNamespace

import pytest
from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import BALANCES, FILLS, ORDER_INFO, POSITIONS

from cryptofeed.exchanges.backpack.core.wire import messages as bp
from cryptofeed.exchanges.backpack.core.auth import BackpackSigner
from cryptofeed.exchanges.backpack.core.channels.account import (
    CLOSED_AFTER_SUBSCRIBE, AccountChannel, private_channels_asked,
)
from cryptofeed.exchanges.backpack.core.channels.context import ChannelContext
from cryptofeed.exchanges.backpack.core.errors import BackpackAuthError, BackpackConfigError
from cryptofeed.exchanges.backpack.core.ops.metrics import FeedMetrics

SECRET = base64.b64encode(bytes([5]) * 32).decode()


def channel(wanted=None):
    ctx = ChannelContext('BACKPACK', {}, FeedMetrics())
    return AccountChannel(ctx, wanted or {ORDER_INFO: set(), FILLS: {'SOL-USDC'}}, signer=BackpackSigner(SECRET))


def test_streams_are_the_all_market_ones_and_filters_follow_the_symbols():
    ch = channel({ORDER_INFO: set(), FILLS: {'SOL-USDC'}, POSITIONS: set(), BALANCES: {'X'}})
    assert ch.streams == ['account.balanceUpdate', 'account.orderUpdate', 'account.positionUpdate']
    assert ch._wants(ORDER_INFO, 'ANY-USDC') and ch._wants(FILLS, 'SOL-USDC') and not ch._wants(FILLS, 'BTC-USDC')
    assert channel({FILLS: set()}).streams == ['account.orderUpdate']


@pytest.mark.parametrize('cfg,message', [
    (SimpleNamespace(enable_private_channels=False, auth=None), 'add enable_private_channels=True and auth='),
    (SimpleNamespace(enable_private_channels=False, auth=object()), 'add enable_private_channels=True to'),
])
def test_asking_without_the_settings_names_them(cfg, message):
    with pytest.raises(BackpackConfigError, match=message):
        private_channels_asked({FILLS: [], 'trades': ['SOL-USDC']}, cfg)
    assert private_channels_asked({'trades': ['SOL-USDC']}, cfg) == {}


def test_error_frame_4003_counts_logs_once_and_fails_the_connection(caplog):
    ch = channel()
    frame = bp.ErrorFrame(error=bp.ErrorBody(code=4003, message='Invalid signature'))
    with caplog.at_level(logging.DEBUG, logger=package_log.root()):
        for _ in range(3):
            with pytest.raises(BackpackAuthError, match='refused the private subscribe'):
                asyncio.run(ch.on_error_frame(frame, 0.0))
    metrics = ch.ctx.metrics
    assert metrics.auth_failures == 3 and metrics.auth_error.startswith('ws_rejected')
    assert sum(r.levelno == logging.ERROR for r in caplog.records) == 1
    assert ch.on_error_frame(bp.ErrorFrame(error=bp.ErrorBody(code=4006, message='Invalid stream')), 0.0) is None
    assert metrics.auth_failures == 3 and metrics.server_errors == 4


def test_a_close_by_the_exchange_right_after_subscribe_is_an_auth_failure_a_dropped_socket_is_not():
    ch = channel()
    ch._subscribed_at = time.monotonic()
    ch.on_close(False)                                   # TCP drop, no Close frame
    assert ch.ctx.metrics.auth_failures == 0
    ch.on_close(True)
    assert ch.ctx.metrics.auth_failures == 1 and ch.ctx.metrics.auth_error.startswith(CLOSED_AFTER_SUBSCRIBE)
    late = channel()
    late._subscribed_at = time.monotonic() - 60           # long after subscribing: a normal close
    late.on_close(True)
    stopping = channel()
    stopping._subscribed_at, stopping.stopping = time.monotonic(), True
    stopping.on_close(True)
    assert late.ctx.metrics.auth_failures == stopping.ctx.metrics.auth_failures == 0


def test_a_private_frame_clears_the_failure():
    ch = channel()
    ch._auth_failed('key_rejected', 'HTTP 401')
    assert ch._failed and ch.ctx.metrics.auth_error
    ch._seen_frame(ORDER_INFO, 1.0)
    assert not ch._failed and ch.ctx.metrics.auth_error is None and ch._reported == set()
    assert ch.ctx.metrics.last_private_message_time == 1.0


def test_reconcile_interval_must_be_positive():
    with pytest.raises(ValueError, match='reconcile_interval_s'):
        AccountChannel(ChannelContext('BACKPACK', {}, FeedMetrics()), {BALANCES: set()},
                       signer=BackpackSigner(SECRET), reconcile_interval_s=0)
