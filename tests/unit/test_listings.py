"""core/listings.py and core/subscriptions.py: which markets 'all' means, what changed between two
market tables, "did you mean", and how streams are spread over connections (pure)."""
from __future__ import annotations

import pytest

from cryptofeed.exchanges.backpack.core.listings import (
    ListingChange, Selection, close_matches, diff_listings, parse_market_types, unlisted_message,
)
from cryptofeed.exchanges.backpack.core.sharding import shard_of
from cryptofeed.exchanges.backpack.core.subscriptions import Stream, place, stream_prefixes, streams_for
from cryptofeed.exchanges.backpack.core.symbols import SymbolTable
from cryptofeed.exchanges.backpack.simulator.markets import market_objects

LISTED = ['BTC-USDC', 'BTC-USDC-PERP', 'ETH-USDC', 'ETH-USDC-PERP', 'SOL-USDC', 'SOL-USDC-PERP', 'SPCX.US-USDC',
          'USDT-USDC', 'kPEPE-USDC-PERP']


def table(states=None, drop=()):
    """A SymbolTable of the simulator's markets, with some orderBookStates changed / markets left out."""
    objects = [m for m in market_objects() if m['symbol'] not in drop]
    for market in objects:
        market['orderBookState'] = (states or {}).get(market['symbol'], 'Open')
    return SymbolTable.from_markets(objects)


@pytest.mark.parametrize('value,expected', [
    (None, {'SPOT', 'PERP'}), ('spot', {'SPOT'}), ('PERP', {'PERP'}), (['spot', 'perp'], {'SPOT', 'PERP'}),
    (('Perp',), {'PERP'}),
])
def test_market_types_are_read_in_any_case(value, expected):
    assert parse_market_types(value) == expected


@pytest.mark.parametrize('value,message', [
    ('futures', "'futures' is not a market type; choose from 'spot', 'perp'"),
    (['spot', 'iperp'], "'iperp' is not a market type"),
    ([], 'market_types is empty'),
    (3, '3 is not a market type'),
])
def test_bad_market_types_name_the_choices(value, message):
    with pytest.raises(ValueError, match=message):
        parse_market_types(value)


def test_selection_keeps_open_markets_of_the_types_in_the_shard():
    t = table({'ETH_USDC': 'CancelOnly', 'BTC_USDC_PERP': 'Closed'})
    assert Selection().select(t) == sorted(set(LISTED) - {'ETH-USDC', 'BTC-USDC-PERP'})
    assert Selection(parse_market_types('perp')).select(t) == ['ETH-USDC-PERP', 'SOL-USDC-PERP', 'kPEPE-USDC-PERP']
    assert Selection(parse_market_types('spot')).select(t) == ['BTC-USDC', 'SOL-USDC', 'SPCX.US-USDC', 'USDT-USDC']
    shards = [Selection(shard=(i, 3)).select(t) for i in range(3)]
    assert sorted(s for part in shards for s in part) == Selection().select(t)  # each market in exactly one shard
    assert all(shard_of(s, 3) == i for i, part in enumerate(shards) for s in part)
    assert Selection(parse_market_types('perp'), (1, 3)).describe() == 'open perp markets in shard 1 of 3'


def test_diff_adds_new_open_markets_and_removes_delisted_or_closed_ones():
    followed = ['SOL-USDC', 'BTC-USDC', 'ETH-USDC', 'SOL-USDC-PERP']
    t = table({'BTC_USDC': 'Closed', 'kPEPE_USDC_PERP': 'PostOnly'}, drop=('ETH_USDC',))
    change = diff_listings(followed, t, Selection(parse_market_types('spot')))
    # new: the open spot markets not followed; gone: ETH (delisted), BTC (closed); SOL-PERP is kept
    # (followed, listed and open even though outside the type filter: added by hand)
    assert change == ListingChange(added=('SPCX.US-USDC', 'USDT-USDC'), removed=('BTC-USDC', 'ETH-USDC'))
    assert diff_listings(Selection().select(table()), table(), Selection()) == ListingChange()
    assert not ListingChange()


def test_diff_keeps_pinned_markets_while_listed_and_never_re_adds_excluded_ones():
    t = table({'BTC_USDC': 'CancelOnly'}, drop=('ETH_USDC',))
    change = diff_listings(['BTC-USDC', 'ETH-USDC'], t, Selection(), pinned=['BTC-USDC', 'ETH-USDC'],
                           excluded=['SOL-USDC'])
    assert change.removed == ('ETH-USDC',)           # pinned but delisted: dropped
    assert 'BTC-USDC' not in change.removed          # pinned, listed, not open: kept
    assert 'SOL-USDC' not in change.added            # removed by hand: stays removed


def test_close_matches_put_the_same_base_first():
    assert close_matches('SOL-USD', LISTED)[0] == 'SOL-USDC'
    assert set(close_matches('SOL-USD', LISTED)) <= {'SOL-USDC', 'SOL-USDC-PERP', 'USDT-USDC'}
    assert close_matches('sol-usdc', LISTED)[0] == 'SOL-USDC'
    assert close_matches('ETH-USDC-PER', LISTED)[0] == 'ETH-USDC-PERP'
    assert close_matches('DOGE-USDC', LISTED) == []
    assert unlisted_message('SOL-USD', LISTED).startswith(
        'SOL-USD is not listed by Backpack (/api/v1/markets): did you mean SOL-USDC or ')
    assert unlisted_message('DOGE-USDC', LISTED) == 'DOGE-USDC is not listed by Backpack (/api/v1/markets)'


def test_streams_of_one_market_skip_perp_only_kinds_on_spot():
    prefixes = stream_prefixes('200ms', '1month')
    kinds = ['trade', 'depth', 'kline', 'markPrice', 'openInterest', 'liquidation', 'account.orderUpdate']
    assert [s.name for s in streams_for('SPCX.US-USDC', kinds, prefixes)] == [
        'depth.200ms.SPCX.US_USDC', 'kline.1month.SPCX.US_USDC', 'trade.SPCX.US_USDC']
    assert [s.name for s in streams_for('SOL-USDC-PERP', kinds, prefixes)] == [
        'depth.200ms.SOL_USDC_PERP', 'kline.1month.SOL_USDC_PERP', 'markPrice.SOL_USDC_PERP',
        'openInterest.SOL_USDC_PERP', 'trade.SOL_USDC_PERP']
    assert streams_for('SOL-USDC', ['depth'], stream_prefixes(None, '1m')) == [
        Stream('depth.SOL_USDC', 'depth', 'SOL-USDC')]


def test_new_streams_fill_connections_with_room_before_opening_new_ones():
    streams = [Stream(f's{i}', 'trade', f'S{i}-USDC') for i in range(7)]
    placed = place(streams, [3, 4, 1], 4)
    assert [(i, [s.name for s in chunk]) for i, chunk in placed] == [
        (0, ['s0']), (2, ['s1', 's2', 's3']), (3, ['s4', 's5', 's6'])]
    assert [(i, len(chunk)) for i, chunk in place(streams, [], 3)] == [(0, 3), (1, 3), (2, 1)]
    assert place([], [1], 2) == []
    with pytest.raises(ValueError):
        place(streams, [], 0)
