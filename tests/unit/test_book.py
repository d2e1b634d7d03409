"""BookSync: snapshot/depth synchronisation rules of backpack-api.md section 9 (pure, no loop)."""
from __future__ import annotations

from decimal import Decimal
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cryptofeed.exchanges.backpack.core import log as package_log
from cryptofeed.exchanges.backpack.core.defines import ASK, BID
from cryptofeed.exchanges.backpack.core.records import OrderBook

from cryptofeed.exchanges.backpack.core.sync.book import BUFFERING, PRIMED, SYNCED, BookSync, Emission

D = Decimal
Side = Dict[Decimal, Decimal]


def lv(*pairs: Tuple[str, str]) -> List[Tuple[Decimal, Decimal]]:
    return [(D(price), D(qty)) for price, qty in pairs]


def side(sorted_dict) -> Side:
    """Every level held by one side of an emitted book (iteration is not depth-limited)."""
    return {price: sorted_dict[price] for price in sorted_dict}


def sides(book: OrderBook) -> Tuple[Side, Side]:
    return side(book.book.bids), side(book.book.asks)


def synced_book(max_depth: int = 0, last_id: int = 10, **kwargs) -> BookSync:
    """A BookSync synced at ``last_id`` on bids 97..99 and asks 101..103 (qty 1, 2, 3 from the touch)."""
    sync = BookSync('SOL-USDC', max_depth=max_depth, **kwargs)
    sync.on_depth(last_id, last_id, [], [], 1.0)
    emission = sync.apply_snapshot(last_id - 1, lv(('97', '3'), ('98', '2'), ('99', '1')),
                                   lv(('101', '1'), ('102', '2'), ('103', '3')), 0.5)
    assert emission is not None and sync.synced
    return sync


# ---------------------------------------------------------------------------- buffering


def test_needs_snapshot_only_after_a_frame_and_while_no_request_is_pending():
    sync = BookSync('SOL-USDC')
    assert sync.state == BUFFERING and not sync.needs_snapshot and not sync.synced
    assert sync.on_depth(5, 5, lv(('99', '1')), [], 1.0) is None
    assert sync.needs_snapshot and sync.buffered == 1
    sync.snapshot_requested()
    assert not sync.needs_snapshot
    assert sync.on_depth(6, 6, [], lv(('101', '1')), 1.1) is None
    assert not sync.needs_snapshot and sync.buffered == 2
    sync.snapshot_failed()
    assert sync.needs_snapshot
    assert sync.book is None and sync.last_update_id is None


def test_snapshot_bridges_buffer_and_first_emission_is_the_full_book():
    sync = BookSync('SOL-USDC')
    sync.on_depth(5, 5, lv(('99', '5')), [], 1.05)   # covered by the snapshot (u <= L)
    sync.on_depth(6, 6, lv(('98', '0')), [], 1.06)   # first to apply: U <= L+1 <= u
    sync.on_depth(7, 7, [], lv(('101', '7')), 1.07)
    sync.snapshot_requested()
    emission = sync.apply_snapshot('5', lv(('97', '3'), ('98', '2'), ('99', '5')),
                                   lv(('101', '1'), ('102', '2')), 1.0)
    assert isinstance(emission, Emission)
    assert emission.delta is None
    assert emission.sequence_number == 7 and emission.timestamp == 1.07
    assert isinstance(emission.book, OrderBook)
    assert emission.book.exchange == 'BACKPACK' and emission.book.symbol == 'SOL-USDC'
    assert sides(emission.book) == ({D('99'): D('5'), D('97'): D('3')}, {D('101'): D('7'), D('102'): D('2')})
    # REST bids come ascending: the emitted book is still best-first.
    assert emission.book.book.bids.index(0) == (D('99'), D('5'))
    assert emission.book.book.asks.index(0) == (D('101'), D('7'))
    assert list(emission.book.book.bids) == [D('99'), D('97')]
    assert sync.synced and sync.state == SYNCED and sync.last_update_id == 7
    assert sync.stale_dropped == 1 and sync.applied == 2
    assert not sync.needs_snapshot and sync.book is emission.book


@pytest.mark.parametrize('last_update_id', ['41', 41])
def test_snapshot_id_may_be_string_or_int(last_update_id):
    sync = BookSync('SOL-USDC')
    sync.on_depth(42, 42, [], lv(('101', '2')), 2.0)
    emission = sync.apply_snapshot(last_update_id, lv(('99', '1')), lv(('101', '1')))
    assert emission.sequence_number == 42 and sync.last_update_id == 42
    assert sides(emission.book) == ({D('99'): D('1')}, {D('101'): D('2')})


def test_snapshot_levels_in_any_order_and_zero_levels_in_a_snapshot_are_ignored():
    sync = BookSync('SOL-USDC')
    sync.on_depth(3, 3, [], [], 1.0)
    emission = sync.apply_snapshot(2, lv(('98', '1'), ('99.5', '0'), ('97', '2'), ('99', '3')),
                                   lv(('103', '1'), ('101', '2'), ('102', '0.00')))
    assert list(emission.book.book.bids) == [D('99'), D('98'), D('97')]
    assert list(emission.book.book.asks) == [D('101'), D('103')]


def test_snapshot_too_old_keeps_the_buffer_and_asks_for_another():
    sync = BookSync('SOL-USDC')
    sync.on_depth(10, 10, lv(('99', '1')), [], 1.0)
    sync.on_depth(11, 11, lv(('99', '2')), [], 1.1)
    sync.snapshot_requested()
    assert sync.apply_snapshot(8, lv(('99', '9')), lv(('101', '1'))) is None   # 10 > 8 + 1
    assert sync.snapshots_too_old == 1 and sync.state == BUFFERING
    assert sync.needs_snapshot and sync.buffered == 2 and sync.book is None
    sync.snapshot_requested()
    emission = sync.apply_snapshot(9, lv(('99', '9')), lv(('101', '1')))
    assert emission.sequence_number == 11 and emission.delta is None
    assert sides(emission.book) == ({D('99'): D('2')}, {D('101'): D('1')})


def test_snapshot_newer_than_every_buffered_frame_waits_for_the_bridging_frame():
    sync = BookSync('SOL-USDC')
    sync.on_depth(3, 3, lv(('99', '1')), [], 1.0)
    sync.on_depth(4, 4, lv(('99', '2')), [], 1.1)
    sync.snapshot_requested()
    assert sync.apply_snapshot(8, lv(('99', '8')), lv(('101', '1')), 1.2) is None
    assert sync.state == PRIMED and not sync.synced and not sync.needs_snapshot
    assert sync.book is None and sync.last_update_id == 8 and sync.stale_dropped == 2
    assert sync.on_depth(7, 8, lv(('99', '7')), [], 1.3) is None            # stale
    assert sync.stale_dropped == 3 and sync.state == PRIMED
    emission = sync.on_depth(9, 9, [], lv(('101', '9')), 1.4)
    assert emission.delta is None and emission.sequence_number == 9 and emission.timestamp == 1.4
    assert sides(emission.book) == ({D('99'): D('8')}, {D('101'): D('9')})


def test_primed_snapshot_found_too_old_by_a_live_frame():
    sync = BookSync('SOL-USDC')
    sync.on_depth(3, 3, [], [], 1.0)
    sync.snapshot_requested()
    assert sync.apply_snapshot(5, lv(('99', '1')), lv(('101', '1'))) is None
    assert sync.on_depth(7, 7, lv(('99', '2')), [], 1.1) is None            # 7 > 5 + 1
    assert sync.snapshots_too_old == 1 and sync.state == BUFFERING
    assert sync.needs_snapshot and sync.buffered == 1 and sync.gaps == 0


def test_aggregated_frame_spanning_the_snapshot_id_bridges_it():
    sync = BookSync('SOL-USDC')
    sync.on_depth(8, 12, lv(('99', '4')), lv(('101', '0')), 1.0)
    emission = sync.apply_snapshot(10, lv(('99', '1')), lv(('101', '1'), ('102', '2')))
    assert emission.sequence_number == 12
    assert sides(emission.book) == ({D('99'): D('4')}, {D('102'): D('2')})


def test_buffered_frames_are_replayed_in_update_id_order():
    sync = BookSync('SOL-USDC')
    sync.on_depth(7, 7, lv(('99', '7')), [], 1.7)
    sync.on_depth(6, 6, lv(('99', '6')), [], 1.6)
    emission = sync.apply_snapshot(5, lv(('99', '5')), lv(('101', '1')))
    assert emission.sequence_number == 7 and emission.timestamp == 1.7
    assert sides(emission.book)[0] == {D('99'): D('7')}


def test_buffer_overflow_drops_the_oldest_and_an_older_snapshot_is_then_too_old():
    sync = BookSync('SOL-USDC', buffer_limit=3)
    for n in range(1, 6):
        sync.on_depth(n, n, lv(('99', str(n))), [], float(n))
    assert sync.buffered == 3 and sync.buffer_overflows == 2
    sync.snapshot_requested()
    assert sync.apply_snapshot(1, lv(('99', '1')), lv(('101', '1'))) is None   # frame 2 is gone
    assert sync.snapshots_too_old == 1 and sync.needs_snapshot
    emission = sync.apply_snapshot(2, lv(('99', '2')), lv(('101', '1')))
    assert emission.sequence_number == 5 and sides(emission.book)[0] == {D('99'): D('5')}


# ---------------------------------------------------------------------------- synced


def test_delta_is_cryptofeed_format_with_sequence_and_timestamp():
    sync = synced_book()
    emission = sync.on_depth(11, 11, lv(('99', '4'), ('96', '1')), lv(('101', '0')), 2.5)
    assert emission.delta == {BID: [(D('99'), D('4')), (D('96'), D('1'))], ASK: [(D('101'), D('0'))]}
    assert all(type(level) is tuple for level in emission.delta[BID] + emission.delta[ASK])
    assert emission.sequence_number == 11 and emission.timestamp == 2.5
    assert sides(emission.book) == ({D('99'): D('4'), D('98'): D('2'), D('97'): D('3'), D('96'): D('1')},
                                    {D('102'): D('2'), D('103'): D('3')})
    assert sync.last_update_id == 11


def test_deltas_update_the_same_book_object_in_place():
    sync = synced_book()
    first = sync.on_depth(11, 11, lv(('99', '4')), [], 2.0)
    second = sync.on_depth(12, 12, lv(('99', '5')), [], 2.1)
    assert first.book is second.book is sync.book


@pytest.mark.parametrize('zero', ['0', '0.00', '0.000', '0E-8', '-0'])
def test_any_numeric_zero_deletes_the_level(zero):
    sync = synced_book()
    emission = sync.on_depth(11, 11, lv(('98', zero)), [], 2.0)
    assert emission.delta == {BID: [(D('98'), D('0'))], ASK: []}
    assert D('98') not in sides(emission.book)[0]


def test_deleting_an_unknown_level_is_not_reported():
    sync = synced_book()
    assert sync.on_depth(11, 11, lv(('50', '0')), lv(('150', '0.00')), 2.0) is None
    assert sync.last_update_id == 11 and sync.applied == 2
    emission = sync.on_depth(12, 12, lv(('50', '0'), ('99', '2')), [], 2.1)
    assert emission.delta == {BID: [(D('99'), D('2'))], ASK: []}


def test_same_price_in_another_spelling_is_the_same_level():
    sync = synced_book()
    sync.on_depth(11, 11, lv(('99.00', '4')), [], 2.0)
    emission = sync.on_depth(12, 12, lv(('99.0', '0')), [], 2.1)
    assert sides(emission.book)[0] == {D('98'): D('2'), D('97'): D('3')}


def test_stale_duplicates_are_ignored_and_counted():
    sync = synced_book()
    sync.on_depth(11, 11, lv(('99', '4')), [], 2.0)
    before = sides(sync.book)
    assert sync.on_depth(11, 11, lv(('99', '8')), [], 2.0) is None
    assert sync.on_depth(9, 10, lv(('99', '9')), [], 1.9) is None
    assert sync.stale_dropped == 2 and sync.synced and sides(sync.book) == before
    assert sync.last_update_id == 11


def test_overlapping_frame_is_applied_from_the_last_id():
    sync = synced_book()
    sync.on_depth(11, 11, lv(('99', '4')), [], 2.0)
    sync.on_depth(12, 12, [], lv(('101', '5')), 2.1)
    # U=11..u=14: ids 11 and 12 were seen; the frame carries final quantities at 14.
    emission = sync.on_depth(11, 14, lv(('99', '6')), lv(('101', '5'), ('104', '1')), 2.2)
    assert emission.sequence_number == 14 and sync.last_update_id == 14
    assert emission.delta == {BID: [(D('99'), D('6'))], ASK: [(D('101'), D('5')), (D('104'), D('1'))]}
    assert sides(emission.book)[1] == {D('101'): D('5'), D('102'): D('2'), D('103'): D('3'), D('104'): D('1')}
    assert sync.gaps == 0


def test_gap_discards_the_book_requests_a_snapshot_and_recovers():
    sync = synced_book()
    old_book = sync.book
    sync.on_depth(11, 11, lv(('99', '4')), [], 2.0)
    assert sync.on_depth(13, 13, lv(('99', '6')), [], 2.2) is None          # 12 is missing
    assert sync.gaps == 1 and sync.resyncs == 1
    assert not sync.synced and sync.state == BUFFERING and sync.book is None
    assert sync.needs_snapshot and sync.buffered == 1 and sync.last_update_id is None
    assert sync.on_depth(14, 14, [], lv(('101', '9')), 2.3) is None         # no emission while out of sync
    sync.snapshot_requested()
    emission = sync.apply_snapshot(12, lv(('99', '5'), ('98', '2')), lv(('101', '1')), 2.25)
    assert emission.delta is None and emission.sequence_number == 14 and emission.timestamp == 2.3
    assert emission.book is not old_book
    assert sides(emission.book) == ({D('99'): D('6'), D('98'): D('2')}, {D('101'): D('9')})
    follow = sync.on_depth(15, 15, lv(('98', '0')), [], 2.4)
    assert follow.delta == {BID: [(D('98'), D('0'))], ASK: []} and follow.sequence_number == 15


def test_snapshot_while_synced_is_ignored():
    sync = synced_book()
    before = sides(sync.book)
    sync.snapshot_requested()
    assert sync.apply_snapshot(50, lv(('1', '1')), lv(('2', '1'))) is None
    assert sync.snapshots_ignored == 1 and sync.synced and sync.last_update_id == 10
    assert sides(sync.book) == before and not sync.needs_snapshot


def test_crossed_book_is_treated_as_corruption():
    sync = synced_book()
    assert sync.on_depth(11, 11, lv(('101', '1')), [], 2.0) is None
    assert sync.crossed == 1 and sync.resyncs == 1 and not sync.synced
    assert sync.needs_snapshot and sync.buffered == 0
    sync.snapshot_requested()
    assert sync.apply_snapshot(11, lv(('99', '1')), lv(('101', '1'))) is None
    emission = sync.on_depth(12, 12, lv(('100', '1')), [], 2.1)
    assert emission.delta is None and emission.book.book.bids.index(0) == (D('100'), D('1'))


def test_deleted_best_levels_do_not_count_as_crossing():
    sync = synced_book()
    sync.on_depth(11, 11, lv(('99', '0')), lv(('101', '0')), 2.0)
    # The market moves: an ask where the best bid was, a bid where the best ask was... not at once.
    emission = sync.on_depth(12, 12, [], lv(('99', '1')), 2.1)
    assert emission is not None and sync.crossed == 0
    sync.on_depth(13, 13, [], lv(('99', '0'), ('101', '1')), 2.2)
    emission = sync.on_depth(14, 14, lv(('100', '1')), [], 2.3)
    assert emission is not None and sync.synced and sync.crossed == 0
    assert emission.book.book.bids.index(0)[0] == D('100') and emission.book.book.asks.index(0)[0] == D('101')


def test_crossed_check_can_be_disabled():
    sync = synced_book(check_crossed=False)
    emission = sync.on_depth(11, 11, lv(('101', '1')), [], 2.0)
    assert emission is not None and sync.synced and sync.crossed == 0


def test_reset_returns_to_buffering_and_keeps_counters():
    sync = synced_book()
    sync.on_depth(11, 11, lv(('99', '4')), [], 2.0)
    sync.on_depth(11, 11, lv(('99', '4')), [], 2.0)
    sync.snapshot_requested()
    sync.reset()
    assert sync.state == BUFFERING and sync.book is None and sync.last_update_id is None
    assert sync.buffered == 0 and not sync.needs_snapshot
    assert sync.counters()['stale_dropped'] == 1 and sync.counters()['applied'] == 2
    sync.on_depth(30, 30, [], [], 3.0)
    assert sync.needs_snapshot


def test_counters_names():
    assert set(BookSync('X').counters()) == {
        'applied', 'stale_dropped', 'gaps', 'resyncs', 'snapshots_too_old', 'buffer_overflows',
        'crossed', 'snapshots_ignored', 'invalid_levels', 'implausible_ids'}


@pytest.mark.parametrize('kwargs', [{'max_depth': -1}, {'max_depth': 1.5}, {'buffer_limit': 0}])
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        BookSync('SOL-USDC', **kwargs)


# ---------------------------------------------------------------------------- max_depth


def test_max_depth_truncates_the_full_emission():
    sync = synced_book(max_depth=2)
    book = sync.book
    assert sides(book) == ({D('99'): D('1'), D('98'): D('2')}, {D('101'): D('1'), D('102'): D('2')})
    assert book.book.max_depth == 2


def test_max_depth_changes_below_the_window_emit_nothing():
    sync = synced_book(max_depth=2)
    assert sync.on_depth(11, 11, lv(('97', '9'), ('90', '1')), lv(('103', '0')), 2.0) is None
    assert sync.last_update_id == 11 and sync.applied == 2


def test_max_depth_update_inside_the_window():
    sync = synced_book(max_depth=2)
    emission = sync.on_depth(11, 11, lv(('98', '5')), [], 2.0)
    assert emission.delta == {BID: [(D('98'), D('5'))], ASK: []}


def test_max_depth_insert_pushes_the_last_visible_level_out():
    sync = synced_book(max_depth=2)
    emission = sync.on_depth(11, 11, lv(('99.5', '1')), lv(('100.5', '4')), 2.0)
    assert emission.delta == {BID: [(D('99.5'), D('1')), (D('98'), D('0'))],
                              ASK: [(D('100.5'), D('4')), (D('102'), D('0'))]}
    assert sides(emission.book) == ({D('99.5'): D('1'), D('99'): D('1')},
                                    {D('100.5'): D('4'), D('101'): D('1')})


def test_max_depth_delete_pulls_the_next_level_in():
    sync = synced_book(max_depth=2)
    emission = sync.on_depth(11, 11, lv(('99', '0')), lv(('102', '0')), 2.0)
    assert emission.delta == {BID: [(D('99'), D('0')), (D('97'), D('3'))],
                              ASK: [(D('102'), D('0')), (D('103'), D('3'))]}
    assert sides(emission.book) == ({D('98'): D('2'), D('97'): D('3')}, {D('101'): D('1'), D('103'): D('3')})


def test_max_depth_window_not_full_shows_new_deep_levels():
    sync = synced_book(max_depth=5)
    emission = sync.on_depth(11, 11, lv(('90', '1')), lv(('110', '1')), 2.0)
    assert emission.delta == {BID: [(D('90'), D('1'))], ASK: [(D('110'), D('1'))]}
    emission = sync.on_depth(12, 12, lv(('91', '1')), [], 2.1)              # fills the window
    assert emission.delta == {BID: [(D('91'), D('1'))], ASK: []}
    emission = sync.on_depth(13, 13, lv(('92', '1')), [], 2.2)              # pushes 90 out
    assert emission.delta == {BID: [(D('92'), D('1')), (D('90'), D('0'))], ASK: []}
    assert list(emission.book.book.bids) == [D('99'), D('98'), D('97'), D('92'), D('91')]


def test_max_depth_level_entering_and_leaving_in_one_frame_is_reported_once():
    sync = synced_book(max_depth=2)
    # 99.5 enters (98 out), then 99 is deleted (98 back in), then 99.5 is deleted (97 in).
    emission = sync.on_depth(11, 13, lv(('99.5', '1'), ('99', '0'), ('99.5', '0')), [], 2.0)
    bids = emission.delta[BID]
    assert len({price for price, _ in bids}) == len(bids)
    assert dict(bids) == {D('99'): D('0'), D('98'): D('2'), D('97'): D('3')}
    assert D('99.5') not in dict(bids)                                      # never held by the consumer
    assert sides(emission.book)[0] == {D('98'): D('2'), D('97'): D('3')}


# ---------------------------------------------------------------------------- property test

# Overlapping ranges: the touch moves. Truth drops any change that would cross its own book.
BID_TICKS = range(1, 17)
ASK_TICKS = range(9, 25)
ZEROS = (D('0'), D('0.00'), D('0E-8'))


def price_of(tick: int, spelling: int) -> Decimal:
    """The same price in one of two spellings (``10.5`` / ``10.50``): equal as Decimals."""
    return D(f'{tick}.5') if spelling == 0 else D(f'{tick}.50')


@st.composite
def mutation(draw):
    """One engine update: 1-2 levels set to an absolute quantity (zero deletes)."""
    changes = []
    for _ in range(draw(st.integers(1, 2))):
        is_bid = draw(st.booleans())
        tick = draw(st.sampled_from(BID_TICKS if is_bid else ASK_TICKS))
        qty = draw(st.one_of(st.sampled_from(ZEROS), st.integers(1, 9).map(D)))
        changes.append((is_bid, price_of(tick, draw(st.integers(0, 1))), qty))
    return changes


@st.composite
def initial_book(draw):
    bids = {price_of(t, 0): D(draw(st.integers(1, 9))) for t in draw(st.sets(st.sampled_from(range(1, 13))))}
    asks = {price_of(t, 0): D(draw(st.integers(1, 9))) for t in draw(st.sets(st.sampled_from(range(13, 25))))}
    return bids, asks


ACTIONS = ('next',) * 6 + ('snapshot',) * 3 + ('drop', 'dup', 'swap', 'overlap', 'fail')


class Truth:
    """The book at every update id: ``states[n]`` is the book after update n (0 = initial)."""

    def __init__(self, initial, mutations):
        self.mutations: list = [None]
        bids, asks = dict(initial[0]), dict(initial[1])
        self.states = [(dict(bids), dict(asks))]
        for changes in mutations:
            kept = []
            for is_bid, price, qty in changes:
                if qty and (price >= min(asks, default=price + 1) if is_bid else price <= max(bids, default=price - 1)):
                    continue                 # the exchange never publishes a crossed book
                kept.append((is_bid, price, qty))
                target = bids if is_bid else asks
                if qty:
                    target[price] = qty
                else:
                    target.pop(price, None)
            self.mutations.append(kept)
            self.states.append((dict(bids), dict(asks)))

    @property
    def last(self) -> int:
        return len(self.states) - 1

    def frame(self, first: int, last: int, timestamp: float):
        """The depth frame for updates first..last: final quantity of every touched price."""
        final: Dict[Tuple[bool, Decimal], Decimal] = {}
        for n in range(first, last + 1):
            for is_bid, price, qty in self.mutations[n]:
                final[(is_bid, price)] = qty
        bids = [(price, qty) for (is_bid, price), qty in final.items() if is_bid]
        asks = [(price, qty) for (is_bid, price), qty in final.items() if not is_bid]
        return first, last, bids, asks, timestamp

    def snapshot(self, n: int):
        """REST-shaped snapshot at update n: both sides ascending."""
        bids, asks = self.states[n]
        return n, sorted(bids.items()), sorted(asks.items())

    def visible(self, n: int, max_depth: int) -> Tuple[Side, Side]:
        bids, asks = self.states[n]
        if not max_depth:
            return dict(bids), dict(asks)
        top_bids = sorted(bids, reverse=True)[:max_depth]
        top_asks = sorted(asks)[:max_depth]
        return {p: bids[p] for p in top_bids}, {p: asks[p] for p in top_asks}


class Consumer:
    """What a downstream user sees: checks every emission against the truth and the deltas."""

    def __init__(self, truth: Truth, max_depth: int):
        self.truth = truth
        self.max_depth = max_depth
        self.held: Optional[Tuple[Side, Side]] = None
        self.last_sequence = -1
        self.emissions = 0

    def receive(self, emission: Optional[Emission]) -> None:
        if emission is None:
            return
        self.emissions += 1
        seen = sides(emission.book)
        assert emission.sequence_number > self.last_sequence
        self.last_sequence = emission.sequence_number
        assert seen == self.truth.visible(emission.sequence_number, self.max_depth)
        assert list(seen[0]) == sorted(seen[0], reverse=True) and list(seen[1]) == sorted(seen[1])
        if emission.delta is not None:
            assert self.held is not None
            bids, asks = dict(self.held[0]), dict(self.held[1])
            for target, changes in ((bids, emission.delta[BID]), (asks, emission.delta[ASK])):
                assert len({price for price, _ in changes}) == len(changes)
                for price, qty in changes:
                    if qty == 0:
                        del target[price]          # a delete always names a held level
                    else:
                        target[price] = qty
            assert (bids, asks) == seen
        self.held = seen


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=initial_book(),
       mutations=st.lists(mutation(), min_size=20, max_size=80),
       tail=st.lists(mutation(), min_size=2, max_size=4),
       actions=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(1, 3), st.integers(-4, 3)),
                        min_size=30, max_size=120),
       max_depth=st.sampled_from([0, 1, 3]),
       buffer_limit=st.sampled_from([2, 5, 10000]))
def test_random_delivery_never_emits_a_wrong_book_and_converges(
        initial, mutations, tail, actions, max_depth, buffer_limit):
    truth = Truth(initial, mutations + tail)
    end = len(mutations)                     # ids end+1.. are kept for the final, clean phase
    sync = BookSync('SOL-USDC', max_depth=max_depth, buffer_limit=buffer_limit)
    consumer = Consumer(truth, max_depth)
    cursor = 1                               # next update id the exchange will publish
    last_frame = None
    pending = False

    def deliver(frame):
        consumer.receive(sync.on_depth(*frame))

    for action, span, offset in actions:
        if sync.needs_snapshot:
            sync.snapshot_requested()
            pending = True
        if action == 'next' and cursor <= end:
            last_frame = truth.frame(cursor, min(cursor + span - 1, end), float(cursor))
            cursor = last_frame[1] + 1
            deliver(last_frame)
        elif action == 'drop' and cursor <= end:
            cursor = min(cursor + span, end + 1)
        elif action == 'dup' and last_frame is not None:
            deliver(last_frame)
        elif action == 'swap' and cursor + 1 <= end:
            later = truth.frame(cursor + 1, cursor + 1, float(cursor + 1))
            earlier = truth.frame(cursor, cursor, float(cursor))
            cursor += 2
            deliver(later)
            deliver(earlier)
            last_frame = earlier
        elif action == 'overlap' and 1 < cursor <= end:
            first = max(1, cursor - span)
            last_frame = truth.frame(first, min(cursor + span - 1, end), float(cursor))
            cursor = last_frame[1] + 1
            deliver(last_frame)
        elif action == 'snapshot' and (pending or offset == 3):
            # The exchange is at cursor - 1; the snapshot may lag it or run ahead of what was delivered.
            at = min(max(cursor - 1 + offset, 0), end)
            pending = False
            consumer.receive(sync.apply_snapshot(str(at), *truth.snapshot(at)[1:], float(at)))
        elif action == 'fail' and pending:
            sync.snapshot_failed()
            pending = False

    # Clean ending: the rest of the stream in order and one more frame (it reveals a gap left
    # by frames dropped at the very end); if out of sync, a fresh snapshot at the exchange's
    # position, then the remaining frames, which must bridge it.
    while cursor <= end:
        deliver(truth.frame(cursor, cursor, float(cursor)))
        cursor += 1
    deliver(truth.frame(end + 1, end + 1, float(end + 1)))
    if not sync.synced:
        consumer.receive(sync.apply_snapshot(end + 1, *truth.snapshot(end + 1)[1:], float(end + 1)))
    for n in range(end + 2, truth.last + 1):
        deliver(truth.frame(n, n, float(n)))

    assert sync.synced and sync.last_update_id == truth.last
    assert sides(sync.book) == truth.visible(truth.last, max_depth)
    assert consumer.held == truth.visible(truth.last, max_depth)
    assert sync.crossed == 0
    for name, count in sync.counters().items():    # --hypothesis-show-statistics: paths reached
        if count:
            event(f'{name} > 0')
    event(f'emissions: {min(consumer.emissions, 10)}{"+" if consumer.emissions >= 10 else ""}')


# ---------------------------------------------------------------------------- corrupt input (issue 10, items 5 and 6)

BAD_SIZES = ['NaN', 'sNaN', 'Infinity', '-Infinity', '1E+400', '1E+20', '-5', '-0.01']


@pytest.mark.parametrize('bad', BAD_SIZES)
def test_a_frame_with_an_impossible_size_is_dropped_whole_and_counted(bad):
    calls = []
    sync = synced_book(on_invalid=lambda: calls.append(1))
    before = sides(sync.book)
    # The valid ask comes first on purpose: nothing of the frame may reach the book.
    assert sync.on_depth(11, 11, lv(('99', '4'), ('96', bad)), lv(('101', '5')), 2.0) is None
    assert sync.invalid_levels == 1 and calls == [1]
    assert sides(sync.book) == before and sync.synced and sync.last_update_id == 10
    # The dropped ids are a gap for the next frame: the usual resync follows.
    assert sync.on_depth(12, 12, lv(('99', '4')), [], 2.1) is None
    assert sync.gaps == 1 and sync.needs_snapshot


@pytest.mark.parametrize('bad', BAD_SIZES)
def test_a_buffered_frame_with_an_impossible_size_is_not_kept(bad):
    sync = BookSync('SOL-USDC')
    assert sync.on_depth(5, 5, lv(('99', bad)), [], 1.0) is None
    assert sync.buffered == 0 and sync.invalid_levels == 1
    sync.on_depth(6, 6, lv(('99', '1')), [], 1.1)
    emission = sync.apply_snapshot(5, lv(('98', '1')), lv(('101', '1')))
    assert sides(emission.book) == ({D('99'): D('1'), D('98'): D('1')}, {D('101'): D('1')})


@pytest.mark.parametrize('bad', ['NaN', 'sNaN'])
def test_nan_prices_from_a_direct_caller_never_crash_nor_reach_a_delta(bad):
    """The decoder refuses impossible prices (levels.py); a synced BookSync called directly with a
    NaN price survives it: the frame is dropped and the book, which may hold part of it, resynced."""
    sync = synced_book()
    assert sync.on_depth(11, 11, lv(('99', '4')) + [(D(bad), D('1'))], [], 2.0) is None
    assert sync.invalid_levels == 1 and not sync.synced and sync.needs_snapshot


@pytest.mark.parametrize('bad', ['NaN', 'sNaN', 'Infinity', '-1', '0', '1E+400'])
def test_impossible_prices_are_not_buffered(bad):
    sync = BookSync('SOL-USDC')
    assert sync.on_depth(5, 5, [], [(D(bad), D('1'))], 1.0) is None
    assert sync.buffered == 0 and sync.invalid_levels == 1


def test_a_frame_reaching_implausibly_far_ahead_resyncs_instead_of_freezing_the_book(caplog):
    sync = synced_book()
    with caplog.at_level('WARNING', logger=package_log.root() + '.backpack.book'):
        assert sync.on_depth(11, 10 + 10 ** 9, lv(('99', '4')), [], 2.0) is None
    assert sync.implausible_ids == 1 and sync.resyncs == 1 and not sync.synced
    assert sync.needs_snapshot and sync.buffered == 0          # a frame spanning 1e9 ids is not kept
    assert any('implausible' in r.getMessage() and 'SOL-USDC' in r.getMessage() for r in caplog.records)
    sync.on_depth(11, 11, lv(('99', '4')), [], 2.1)
    sync.snapshot_requested()
    emission = sync.apply_snapshot(10, lv(('99', '1')), lv(('101', '1')))
    assert emission is not None and sync.synced and sync.last_update_id == 11
    assert sync.on_depth(12, 12, lv(('98', '1')), [], 2.2).sequence_number == 12


def test_a_frame_implausibly_far_ahead_is_dropped_by_the_next_real_frame():
    sync = synced_book()
    assert sync.on_depth(10 ** 9, 10 ** 9, lv(('99', '4')), [], 2.0) is None
    assert sync.implausible_ids == 1 and not sync.synced and sync.buffered == 1
    sync.on_depth(11, 11, lv(('99', '5')), [], 2.1)             # the real stream goes on
    sync.on_depth(12, 12, lv(('98', '6')), [], 2.2)
    assert sync.buffered == 2 and sync.implausible_ids == 2    # the bogus frame left the buffer
    emission = sync.apply_snapshot(10, lv(('99', '1'), ('98', '2')), lv(('101', '1')))
    assert emission is not None and sync.synced and sync.last_update_id == 12
    assert sides(emission.book)[0] == {D('99'): D('5'), D('98'): D('6')}


def test_a_frame_implausibly_far_behind_a_synced_book_resyncs_it():
    """The exchange restarted its counter (or the book's id was bogus): never stale forever."""
    sync = synced_book(last_id=5_000_000)
    assert sync.on_depth(7, 7, lv(('99', '4')), [], 2.0) is None
    assert sync.implausible_ids == 1 and not sync.synced and sync.buffered == 1
    emission = sync.apply_snapshot(6, lv(('99', '1')), lv(('101', '1')))
    assert emission is not None and sync.synced and sync.last_update_id == 7


@pytest.mark.parametrize('last_update_id', [str(10 ** 30), 10 ** 30, 2 ** 64, -1])
def test_an_impossible_snapshot_id_is_refused_and_another_snapshot_wanted(last_update_id):
    sync = BookSync('SOL-USDC')
    sync.on_depth(5, 5, lv(('99', '1')), [], 1.0)
    sync.snapshot_requested()
    assert sync.apply_snapshot(last_update_id, lv(('98', '1')), lv(('101', '1'))) is None
    assert sync.state == BUFFERING and sync.implausible_ids == 1 and sync.needs_snapshot
    assert sync.buffered == 1
    emission = sync.apply_snapshot(4, lv(('98', '1')), lv(('101', '1')))
    assert emission is not None and sync.synced and sync.last_update_id == 5


def test_a_snapshot_implausibly_far_ahead_of_the_frames_is_refused():
    sync = BookSync('SOL-USDC')
    sync.on_depth(5, 5, lv(('99', '1')), [], 1.0)
    assert sync.apply_snapshot(10 ** 15, lv(('98', '1')), lv(('101', '1'))) is None
    assert sync.state == BUFFERING and sync.implausible_ids == 1 and sync.needs_snapshot


def test_a_primed_snapshot_implausibly_far_ahead_of_the_next_frame_is_discarded():
    sync = BookSync('SOL-USDC')
    sync.on_depth(5, 5, lv(('99', '1')), [], 1.0)
    sync.snapshot_requested()
    sync.reset()                                       # reconnect: buffer gone, answer still coming
    assert sync.apply_snapshot(10 ** 15, lv(('98', '1')), lv(('101', '1'))) is None
    assert sync.state == PRIMED
    assert sync.on_depth(6, 6, lv(('99', '2')), [], 1.1) is None
    assert sync.state == BUFFERING and sync.implausible_ids == 1 and sync.needs_snapshot and sync.buffered == 1


def test_a_plausible_jump_is_still_an_ordinary_gap():
    sync = synced_book(max_id_jump=100)
    assert sync.on_depth(110, 110, lv(('99', '4')), [], 2.0) is None
    assert sync.gaps == 1 and sync.implausible_ids == 0 and sync.buffered == 1
    assert sync.on_depth(111, 111, lv(('99', '5')), [], 2.1) is None
    assert sync.buffered == 2


@pytest.mark.parametrize('value', [0, -1, 1.5, True, None])
def test_max_id_jump_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match='max_id_jump'):
        BookSync('X', max_id_jump=value)


@pytest.mark.parametrize('first, last', [(10 ** 9, 10 ** 9), (3, 3)])
def test_a_frame_with_implausible_ids_and_impossible_sizes_is_not_buffered_either(first, last):
    sync = synced_book(last_id=5_000_000) if first < 10 else synced_book()
    assert sync.on_depth(first, last, lv(('99', 'NaN')), [], 2.0) is None
    assert not sync.synced and sync.buffered == 0 and sync.invalid_levels == 1 and sync.implausible_ids == 1


def test_a_gap_frame_with_a_signalling_nan_price_is_not_buffered():
    sync = synced_book()
    assert sync.on_depth(13, 13, [(D('sNaN'), D('1'))], [], 2.0) is None
    assert sync.gaps == 1 and sync.buffered == 0 and sync.invalid_levels == 1
    assert sync.apply_snapshot(12, lv(('99', '1')), lv(('101', '1'))) is None   # nothing to bridge yet
