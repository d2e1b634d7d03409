"""paging.py without a network or an event loop: the pacer on a fake clock, and trade paging
against an in-memory ``/api/v1/trades/history`` whose newest trades keep arriving."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from cryptofeed.exchanges.backpack.core.rest.paging import RequestPacer, kline_windows, trade_pages


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drive(coro):
    """Run a coroutine that never really suspends (fetch is synchronous underneath)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError('the coroutine suspended')


def collect(agen) -> list:
    pages = []
    while True:
        try:
            pages.append(drive(agen.__anext__()))
        except StopAsyncIteration:
            return pages


class History:
    """``/api/v1/trades/history``: newest first, ``offset`` counted from the newest trade.
    ``arrivals`` new trades print before each request (the market does not wait for us)."""

    def __init__(self, count: int, arrivals: int = 0, id_step=lambda rng: 1, seed: int = 0):
        self.rng = random.Random(seed)
        self.id_step = id_step
        self.trades = []
        self.arrivals = arrivals
        self.requests = 0
        self._next_id = 100
        for _ in range(count):
            self.print()

    def print(self) -> None:
        ts = 1_000_000 + len(self.trades) // 3          # three trades per millisecond
        self.trades.append({'id': self._next_id, 'timestamp': ts, 'price': '1', 'quantity': '1',
                            'isBuyerMaker': False})
        self._next_id += self.id_step(self.rng)

    async def fetch(self, limit: int, offset: int) -> list:
        self.requests += 1
        for _ in range(self.arrivals):
            self.print()
        end = max(0, len(self.trades) - offset)
        return self.trades[max(0, end - limit):end][::-1]


def bounds(history: History, first: int, last: int) -> tuple:
    return history.trades[first]['timestamp'], history.trades[last]['timestamp']


def in_window(history: History, lo: int, hi: int) -> list:
    """Ids in [lo, hi] now: trades printed during the download can share the last millisecond."""
    return [t['id'] for t in history.trades if lo <= t['timestamp'] <= hi]


# ---------------------------------------------------------------------------------------- pacer

def test_pacer_allows_a_window_full_then_waits_for_the_oldest_slot():
    clock = Clock()
    pacer = RequestPacer(3, 10.0, clock=clock)
    slots = [pacer.take() for _ in range(3)]
    assert all(slots) and pacer.take() is None
    assert pacer.delay() == pytest.approx(10.0)
    clock.now += 4
    pacer.release(slots[0])          # this request took 4 s: its window starts when it ended
    pacer.release(slots[1])
    pacer.release(slots[2])
    assert pacer.delay() == pytest.approx(10.0)
    clock.now += 9.5
    assert pacer.take() is None and pacer.delay() == pytest.approx(0.5)
    clock.now += 0.5
    assert pacer.delay() == 0 and pacer.take() is not None


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=60), st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_pacer_never_lets_more_than_the_limit_into_any_window(gaps, limit):
    """Requests are sent as soon as the pacer allows; within every period there are never more
    than ``limit`` request completions."""
    clock = Clock()
    pacer = RequestPacer(limit, 10.0, clock=clock)
    done = []
    for gap in gaps:
        clock.now += gap
        slot = pacer.take()
        while slot is None:           # as RequestPacer.slot() does, without sleeping
            clock.now += max(pacer.delay(), 1e-6)
            slot = pacer.take()
        clock.now += 0.25             # the request's latency
        pacer.release(slot)
        done.append(clock.now)
    for t in done:
        assert sum(1 for u in done if t - 10.0 < u <= t) <= limit


def test_pacer_rejects_nonsense():
    with pytest.raises(ValueError):
        RequestPacer(0, 1.0)
    with pytest.raises(ValueError):
        RequestPacer(1, 0)


# ---------------------------------------------------------------------------------------- trade paging

@pytest.mark.parametrize('arrivals', [0, 1, 7, 40, 300, 1500])
def test_every_trade_of_the_window_once_in_id_order_while_trades_arrive(arrivals):
    """Even a market printing more than a page per request (1500) costs requests, not trades."""
    history = History(12_000, arrivals=arrivals)
    lo, hi = bounds(history, 2_500, 9_000)
    pages = collect(trade_pages(history.fetch, lo, hi, limit=1000))
    got = [row['id'] for page in pages for row in page]
    assert got == in_window(history, lo, hi)
    assert all(len(page) <= 1000 for page in pages)
    if arrivals <= 40:
        # locate: 1 + 5 doublings + 4 halvings; then 7 pages of ~1000 (the window is 6500 trades)
        assert history.requests <= 18


@given(st.integers(0, 4000), st.integers(0, 4000), st.integers(0, 50), st.integers(4, 300),
       st.booleans(), st.integers(0, 10_000))
@settings(max_examples=150, deadline=None)
def test_paging_is_exact_for_any_window_page_size_drift_and_id_holes(a, b, arrivals_pct, limit, holes, seed):
    """Up to half a page of new trades per request (more is exact too, only slower: see the
    1500-per-request case above)."""
    step = (lambda rng: rng.choice((1, 1, 2, 5))) if holes else (lambda rng: 1)
    history = History(4001, arrivals=limit * arrivals_pct // 100, id_step=step, seed=seed)
    first, last = sorted((a, b))
    lo, hi = bounds(history, first, last)
    got = [row['id'] for page in collect(trade_pages(history.fetch, lo, hi, limit=limit)) for row in page]
    assert got == in_window(history, lo, hi)


def test_a_window_older_than_history_starts_at_the_first_trade():
    history = History(2500)
    got = [r['id'] for p in collect(trade_pages(history.fetch, 0, 10**12)) for r in p]
    assert got == [t['id'] for t in history.trades]


def test_a_window_after_the_last_trade_is_empty_after_one_request():
    history = History(2500)
    assert collect(trade_pages(history.fetch, 10**12, 10**12 + 5)) == []
    assert history.requests == 1


def test_locating_an_old_start_costs_logarithmic_requests():
    history = History(200_000)
    lo, hi = bounds(history, 1000, 3000)
    got = [r['id'] for p in collect(trade_pages(history.fetch, lo, hi)) for r in p]
    assert got == in_window(history, lo, hi)
    # 200 pages back: 8 doublings, 8 halvings, then the ~3 pages of the window.
    assert history.requests <= 22


def test_empty_history():
    history = History(0)
    assert collect(trade_pages(history.fetch, 0, 10)) == []


# ---------------------------------------------------------------------------------------- kline windows

def test_kline_windows_are_aligned_contiguous_and_at_most_max_rows_long():
    windows = list(kline_windows(1_000_030, 1_250_000, 60, max_rows=1000))
    assert windows[0][0] == 1_000_020 and windows[-1][1] == 1_250_000
    assert all(b - a <= 60_000 for a, b in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))


def test_kline_windows_of_months_and_empty_ranges():
    assert list(kline_windows(10, 5_000_000, None)) == [(10, 5_000_000)]
    assert list(kline_windows(10, 10, 60)) == []
