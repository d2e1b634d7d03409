"""Pure account helpers: the fill ledger (exactly once, in order), the clock offset, auth causes."""
from __future__ import annotations

import pytest

from cryptofeed.exchanges.backpack.core.sync.account import (
    EXPIRED, INVALID_SIGNATURE, KEY_REJECTED, WS_REJECTED, FillLedger, classify_auth_failure, estimate_offset_ms,
    fill_key, history_ms,
)
from tests.conftest import load_fixture


def row(trade_id, order_id, ts):
    return {'tradeId': trade_id, 'orderId': order_id, 'timestamp': ts}


def test_a_live_fill_is_delivered_once():
    ledger = FillLedger()
    assert ledger.record(fill_key(7, '1'), 1000) is True
    assert ledger.record(fill_key(7, '1'), 1000) is False
    assert (len(ledger), ledger.duplicates, ledger.last_ms) == (1, 1, 1000)


def test_same_trade_id_on_two_orders_are_two_fills():
    ledger = FillLedger()
    assert ledger.record(fill_key(7, '1'), 1000) and ledger.record(fill_key(7, '2'), 1000)


def entries(rows):
    return [(fill_key(r['tradeId'], r['orderId']), history_ms(r['timestamp']), r) for r in rows]


def test_pending_returns_only_new_fills_oldest_first_and_records_nothing():
    ledger = FillLedger()
    ledger.record(fill_key(10, 'a'), 1_788_000_000_000)
    rows = [row(13, 'c', '2026-09-02T16:46:33.000'), row(10, 'a', '2026-09-02T16:46:31.000'),
            row(12, 'b', '2026-09-02T16:46:32.000'), row(11, 'b', '2026-09-02T16:46:32.000'),
            row(12, 'b', '2026-09-02T16:46:32.000')]
    new = ledger.pending(entries(rows))
    assert [item['tradeId'] for _, _, item in new] == [11, 12, 13]
    assert len(ledger) == 1 and ledger.last_ms == 1_788_000_000_000     # nothing recorded before delivery
    for key, time_ms, _ in new[:2]:                                     # 11 and 12 delivered, 13 not
        ledger.record(key, time_ms)
    assert [item['tradeId'] for _, _, item in ledger.pending(entries(rows))] == [13]
    assert ledger.last_ms == 1_788_367_592_000


def test_pending_of_documented_rows():
    rows = load_fixture('rest_account.json')['fill_history']
    assert [item['tradeId'] for _, _, item in FillLedger().pending(entries(reversed(rows)))] == [9748827, 77120]


def test_ledger_memory_is_bounded():
    ledger = FillLedger(capacity=2)
    for i in range(3):
        ledger.record(fill_key(i, 'o'), i)
    assert len(ledger) == 2 and fill_key(0, 'o') not in ledger and fill_key(2, 'o') in ledger
    with pytest.raises(ValueError):
        FillLedger(capacity=0)


def test_offset_estimate_takes_the_middle_of_the_round_trip():
    assert estimate_offset_ms(100.0, 120_050, 100.1) == 20_000
    assert estimate_offset_ms(100.0, 99_500, 100.0) == -500


@pytest.mark.parametrize('code,message,cause', [
    ('UNAUTHORIZED', 'Request has expired: timestamp 1 is 20000 ms old, window 5000 ms', EXPIRED),
    ('UNAUTHORIZED', 'Request timestamp 5 is 9000 ms in the future', EXPIRED),
    ('INVALID_SIGNATURE', 'Invalid signature', INVALID_SIGNATURE),
    ('UNAUTHORIZED', 'API key is not registered', KEY_REJECTED),
    (None, None, KEY_REJECTED),
    (4003, 'Invalid signature', WS_REJECTED),
])
def test_auth_failure_causes(code, message, cause):
    assert classify_auth_failure(code, message) == cause
