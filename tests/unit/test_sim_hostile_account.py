"""The simulator's controls for hostile account data: ``hostile_account`` and ``malformed_history_row``."""
from __future__ import annotations

import pytest

from cryptofeed.exchanges.backpack.simulator.faults import (
    FaultError, FaultState, corrupt_middle_row, parse_fault,
)

SYMBOLS = ['SOL_USDC', 'SOL_USDC_PERP']


def test_hostile_account_is_normalised_with_defaults_and_echoes_a_null_value():
    fault = parse_fault({'fault': 'hostile_account', 'event': 'positionUpdate', 'field': 'q', 'value': None}, SYMBOLS)
    assert fault.as_dict() == {'fault': 'hostile_account', 'event': 'positionUpdate', 'symbol': 'SOL_USDC_PERP',
                               'field': 'q', 'value': None}
    fill = parse_fault({'fault': 'hostile_account', 'event': 'orderFill', 'field': 'T', 'value': 10 ** 20}, SYMBOLS)
    assert (fill.symbol, fill.value) == ('SOL_USDC', 10 ** 20)
    balance = parse_fault({'fault': 'hostile_account', 'event': 'balanceUpdate', 'field': 'A', 'value': 'NaN'})
    assert balance.symbol is None and balance.as_dict()['value'] == 'NaN'


@pytest.mark.parametrize('body,message', [
    ({'event': 'orderCancel', 'field': 'p', 'value': '1'}, 'event must be one of'),
    ({'event': 'orderFill', 'value': '1'}, 'field must be'),
    ({'event': 'orderFill', 'field': '', 'value': '1'}, 'field must be'),
    ({'event': 'orderFill', 'field': 'p'}, 'value is required'),
    ({'event': 'orderFill', 'field': 'p', 'value': float('nan')}, 'finite number'),
    ({'event': 'orderFill', 'field': 'p', 'value': {'a': 1}}, 'value must be'),
    ({'event': 'balanceUpdate', 'field': 'A', 'value': '1', 'symbol': 'SOL_USDC'}, 'takes no symbol'),
    ({'event': 'orderFill', 'field': 'p', 'value': '1', 'symbol': 'NOPE_USDC'}, 'unknown symbol'),
])
def test_hostile_account_refuses_with_a_reason(body, message):
    with pytest.raises(FaultError, match=message):
        parse_fault({'fault': 'hostile_account', **body}, SYMBOLS)


def test_malformed_history_row_takes_a_known_path_and_a_count():
    fault = parse_fault({'fault': 'malformed_history_row', 'path': '/wapi/v1/history/fills', 'field': 'quantity',
                         'value': 'abc', 'count': 2})
    assert fault.as_dict() == {'fault': 'malformed_history_row', 'path': '/wapi/v1/history/fills',
                               'field': 'quantity', 'value': 'abc', 'count': 2}
    with pytest.raises(FaultError, match='path must be one of'):
        parse_fault({'fault': 'malformed_history_row', 'path': '/api/v1/depth', 'field': 'x', 'value': 1})
    with pytest.raises(FaultError, match='count'):
        parse_fault({'fault': 'malformed_history_row', 'path': '/api/v1/capital', 'field': 'x', 'value': 1,
                     'count': 0})


def test_the_middle_row_of_a_list_or_of_an_asset_map_is_damaged():
    rows = [{'n': i} for i in range(5)]
    assert corrupt_middle_row(rows, 'n', None) and [r['n'] for r in rows] == [0, 1, None, 3, 4]
    capital = {'USDC': {'available': '1'}, 'BTC': {'available': '2'}, 'SOL': {'available': '3'}}
    assert corrupt_middle_row(capital, 'available', 'NaN') and capital['SOL'] == {'available': 'NaN'}
    assert not corrupt_middle_row([], 'n', 1) and not corrupt_middle_row({}, 'n', 1)
    assert not corrupt_middle_row(['text'], 'n', 1)


def test_the_count_is_used_up_only_by_answers_that_have_rows():
    state = FaultState(lambda: 0.0)
    state.apply(parse_fault({'fault': 'malformed_history_row', 'path': '/api/v1/orders', 'field': 'id',
                             'value': None, 'count': 2}))
    assert state.damages('/api/v1/orders') and not state.damages('/api/v1/position')
    assert not state.damage_answer('/api/v1/orders', [])
    for _ in range(2):
        rows = [{'id': '1'}]
        assert state.damage_answer('/api/v1/orders', rows) and rows == [{'id': None}]
    assert not state.damages('/api/v1/orders') and not state.damage_answer('/api/v1/orders', [{'id': '1'}])
