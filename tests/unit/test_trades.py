"""Trade continuity: the pure sequencer and the REST id-range pager."""
from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings, strategies as st

from cryptofeed.exchanges.backpack.core.sync.trades import TradeGap, TradeSequencer, fetch_trade_range


def test_in_order_trades_pass_straight_through_and_duplicates_are_dropped():
    seq = TradeSequencer()
    assert seq.on_live(10, 'a') == (['a'], None)
    assert seq.on_live(11, 'b') == (['b'], None)
    assert seq.on_live(11, 'b again') == ([], None)
    assert seq.on_live(9, 'old') == ([], None)
    assert (seq.last_id, seq.duplicates) == (11, 2)


def test_a_gap_holds_live_trades_until_the_backfill_arrives():
    seq = TradeSequencer()
    seq.on_live(1, 't1')
    out, gap = seq.on_live(4, 't4')
    assert out == [] and gap == TradeGap(2, 3) and gap.size == 2
    assert seq.on_live(5, 't5') == ([], None)
    assert seq.on_live(4, 't4 dup') == ([], None)
    released = seq.on_backfill([(3, 't3'), (2, 't2'), (1, 't1 again')])
    assert released == ['t2', 't3', 't4', 't5']
    assert (seq.last_id, seq.backfilled, seq.unrecovered, seq.gaps) == (5, 2, 0, 1)
    assert seq.on_live(6, 't6') == (['t6'], None)


def test_a_gap_larger_than_max_gap_is_reported_and_skipped():
    seq = TradeSequencer(max_gap=5)
    seq.on_live(1, 't1')
    out, gap = seq.on_live(100, 't100')
    assert out == ['t100'] and gap == TradeGap(2, 99)
    assert seq.unrecovered == 98 and not seq.backfilling


def test_reconnect_opens_an_unbounded_gap_and_failed_backfill_counts_the_loss():
    seq = TradeSequencer()
    assert seq.on_reconnect() is None  # nothing seen yet: nothing can be missing
    seq.on_live(7, 't7')
    assert seq.on_reconnect() == TradeGap(8, None)
    seq.on_live(10, 't10')
    seq.on_live(11, 't11')
    assert seq.abandon_backfill() == ['t10', 't11']
    assert seq.unrecovered == 2 and seq.last_id == 11


def test_holding_too_many_live_trades_abandons_the_backfill():
    seq = TradeSequencer(hold_limit=3)
    seq.on_live(1, 1)
    seq.on_live(3, 3)
    seq.on_live(4, 4)
    seq.on_live(5, 5)
    out, _ = seq.on_live(6, 6)
    assert out == [3, 4, 5, 6] and seq.unrecovered == 1 and not seq.backfilling


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_any_loss_duplication_or_reconnect_pattern_delivers_each_id_once_in_order(n, seed):
    rng = random.Random(seed)
    seq = TradeSequencer(max_gap=10_000)
    delivered: list[int] = []
    ids = list(range(1, n + 1))
    for trade_id in ids:
        if rng.random() < 0.1:
            gap = seq.on_reconnect()
            if gap and rng.random() < 0.5:
                delivered += seq.on_backfill([(i, i) for i in ids if i >= gap.first and i < trade_id])
        if rng.random() < 0.2:
            continue  # frame lost
        for _ in range(2 if rng.random() < 0.1 else 1):
            out, gap = seq.on_live(trade_id, trade_id)
            delivered += out
        if seq.backfilling and rng.random() < 0.5:
            delivered += seq.on_backfill([(i, i) for i in ids if i <= trade_id])
    if seq.backfilling:
        delivered += seq.on_backfill([(i, i) for i in ids])
    if delivered:
        assert delivered == list(range(delivered[0], delivered[-1] + 1))
        assert seq.unrecovered == 0


class FakeTradeRest:
    """A trade log served like /trades (newest first) and /trades/history (offset from newest)."""

    def __init__(self, count: int):
        self.rows = [{'id': i, 'price': '1', 'quantity': '1', 'isBuyerMaker': False, 'timestamp': i}
                     for i in range(1, count + 1)]
        self.calls: list[tuple] = []

    async def recent(self, limit):
        self.calls.append(('recent', limit))
        return list(reversed(self.rows[-limit:]))

    async def history(self, limit, offset):
        self.calls.append(('history', limit, offset))
        end = len(self.rows) - offset
        return list(reversed(self.rows[max(0, end - limit):max(0, end)]))


def test_fetch_trade_range_pages_back_through_history():
    rest = FakeTradeRest(3500)
    rows = asyncio.run(fetch_trade_range(rest.recent, rest.history, 1200, 3400, max_count=10_000))
    assert [r['id'] for r in rows] == list(range(1200, 3401))
    assert rest.calls[0] == ('recent', 1000)
    assert all(call[0] == 'history' for call in rest.calls[1:])


def test_fetch_trade_range_up_to_the_newest_and_capped_by_max_count():
    rest = FakeTradeRest(50)
    assert [r['id'] for r in asyncio.run(fetch_trade_range(rest.recent, rest.history, 41, None, 100))] == \
        list(range(41, 51))
    assert [r['id'] for r in asyncio.run(fetch_trade_range(rest.recent, rest.history, 1, None, 5))] == \
        list(range(46, 51))
    assert asyncio.run(fetch_trade_range(FakeTradeRest(0).recent, rest.history, 1, None, 5)) == []


# -- implausible ids (issue 10 item 6) and rows without ids (item 11) ----------------------------

def test_one_corrupt_id_far_ahead_is_dropped_and_the_stream_carries_on():
    seq = TradeSequencer()
    seq.on_live(100, 't100')
    assert seq.on_live(100 + 10**9, 'bogus') == ([], None)   # held, not delivered, nothing fetched
    assert seq.suspect_id == 100 + 10**9
    assert seq.on_live(101, 't101') == (['t101'], None)       # the old sequence continues: it was corrupt
    assert seq.on_live(102, 't102') == (['t102'], None)
    assert (seq.last_id, seq.implausible, seq.unrecovered, seq.gaps, seq.suspect_id) == (102, 1, 0, 0, None)
    assert seq.accept_next(103)  # back on the fast path


def test_a_corrupt_id_followed_by_a_gap_still_backfills_the_gap():
    seq = TradeSequencer()
    seq.on_live(100, 't100')
    seq.on_live(10**12, 'bogus')
    out, gap = seq.on_live(103, 't103')
    assert out == [] and gap == TradeGap(101, 102) and seq.implausible == 1
    assert seq.on_backfill([(101, 't101'), (102, 't102')]) == ['t101', 't102', 't103']


def test_a_real_leap_is_followed_once_the_next_trade_confirms_it():
    seq = TradeSequencer(max_gap=10_000)
    seq.on_live(100, 't100')
    assert seq.on_live(5_000_000, 'far') == ([], None)
    out, gap = seq.on_live(5_000_001, 'far+1')
    assert out == ['far', 'far+1'] and gap == TradeGap(101, 4_999_999)
    assert (seq.last_id, seq.unrecovered, seq.implausible) == (5_000_001, 4_999_899, 0)


def test_a_confirmed_leap_within_the_backfill_limit_is_backfilled():
    seq = TradeSequencer(max_gap=10_000, max_jump=10)
    seq.on_live(100, 't100')
    assert seq.on_live(200, 't200') == ([], None)
    out, gap = seq.on_live(201, 't201')
    assert out == [] and gap == TradeGap(101, 199) and seq.backfilling
    released = seq.on_backfill([(i, f't{i}') for i in range(101, 200)])
    assert released == [f't{i}' for i in range(101, 202)] and seq.unrecovered == 0


def test_a_corrupt_first_id_does_not_freeze_the_stream():
    seq = TradeSequencer()
    assert seq.on_live(10**9, 'bogus first') == (['bogus first'], None)  # nothing to judge it against yet
    assert seq.on_live(500, 't500') == ([], None)                        # implausibly far behind: suspect
    out, _ = seq.on_live(501, 't501')                                   # ... confirmed by its successor
    assert out == ['t500', 't501'] and seq.last_id == 501 and seq.implausible == 1
    assert seq.on_live(502, 't502') == (['t502'], None)


def test_a_suspect_waits_for_no_more_than_the_next_trade_or_a_reconnect():
    seq = TradeSequencer()
    seq.on_live(100, 't100')
    seq.on_live(10**9, 'bogus')
    assert seq.on_live(10**9, 'bogus again') == ([], None) and seq.duplicates == 1
    assert seq.on_reconnect() == TradeGap(101, None) and seq.suspect_id is None
    assert seq.on_backfill([(101, 't101')]) == ['t101']


def test_reorders_and_small_gaps_are_not_suspects():
    seq = TradeSequencer()
    seq.on_live(1, 't1')
    out, gap = seq.on_live(3, 't3')
    assert gap == TradeGap(2, 2) and seq.suspect_id is None
    assert seq.on_backfill([]) == ['t3'] and seq.unrecovered == 1


def test_fetch_trade_range_skips_rows_without_a_usable_id():
    rest = FakeTradeRest(1500)
    for i in (1499, 1200, 700):
        del rest.rows[i]['id']            # a row without an id (ids 1500, 1201, 701)
    rest.rows[1300]['id'] = None
    rest.rows[1301]['id'] = 'not-an-id'
    rows = asyncio.run(fetch_trade_range(rest.recent, rest.history, 600, None, max_count=10_000))
    ids = [r['id'] for r in rows]
    assert ids == [i for i in range(600, 1500) if i not in (701, 1201, 1301, 1302)]


def test_fetch_trade_range_with_only_id_less_rows_returns_nothing():
    rest = FakeTradeRest(20)
    for row in rest.rows:
        del row['id']
    assert asyncio.run(fetch_trade_range(rest.recent, rest.history, 1, None, 100)) == []
