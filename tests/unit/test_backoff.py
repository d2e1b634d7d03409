"""backoff.py: capped jittered delays and Retry-After parsing (pure, seeded randomness)."""
from __future__ import annotations

import itertools
import random
from email.utils import formatdate

import pytest

from cryptofeed.exchanges.backpack.core.transport.backoff import backoff_delays, parse_retry_after


def take(gen, n):
    return list(itertools.islice(gen, n))


def test_no_jitter_gives_the_capped_geometric_ceilings():
    assert take(backoff_delays(0.25, 10, jitter='none'), 9) == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_other_factor():
    assert take(backoff_delays(1, 100, factor=3, jitter='none'), 6) == [1, 3, 9, 27, 81, 100]


@pytest.mark.parametrize('jitter', ['full', 'equal'])
def test_delays_stay_within_zero_and_the_nth_ceiling(jitter):
    rng = random.Random(1234)
    delays = take(backoff_delays(0.1, 5.0, jitter=jitter, rng=rng), 2000)
    ceilings = take(backoff_delays(0.1, 5.0, jitter='none'), 2000)
    for delay, ceiling in zip(delays, ceilings):
        assert 0.0 <= delay <= ceiling <= 5.0
        if jitter == 'equal':
            assert delay >= ceiling / 2


def test_full_jitter_reaches_close_to_the_cap_and_never_above():
    delays = take(backoff_delays(0.01, 2.0, rng=random.Random(7)), 5000)
    assert max(delays) <= 2.0
    assert max(delays) > 1.9          # the cap is actually reached, not just approached slowly
    assert min(delays) >= 0.0
    assert min(delays[10:]) < 0.2     # full jitter really spreads over [0, cap]


def test_equal_jitter_keeps_at_least_half_the_cap_once_capped():
    delays = take(backoff_delays(0.5, 4.0, jitter='equal', rng=random.Random(3)), 500)
    assert all(2.0 <= d <= 4.0 for d in delays[3:])


def test_seeded_rng_is_reproducible_and_seeds_differ():
    a = take(backoff_delays(0.25, 10, rng=random.Random(42)), 20)
    b = take(backoff_delays(0.25, 10, rng=random.Random(42)), 20)
    c = take(backoff_delays(0.25, 10, rng=random.Random(43)), 20)
    assert a == b
    assert a != c


def test_generator_is_endless_and_does_not_overflow():
    gen = backoff_delays(1e-3, 30, factor=10, rng=random.Random(0))
    last = take(gen, 100_000)[-1]
    assert 0 <= last <= 30


def test_rng_only_needs_a_random_method():
    class Half:
        def random(self):
            return 0.5
    assert take(backoff_delays(1, 8, rng=Half()), 5) == [0.5, 1.0, 2.0, 4.0, 4.0]


@pytest.mark.parametrize('kwargs', [
    dict(base=0, cap=1), dict(base=-1, cap=1), dict(base=2, cap=1), dict(base=1, cap=float('inf')),
    dict(base=1, cap=2, factor=0.5), dict(base=1, cap=2, jitter='decorrelated'),
])
def test_invalid_arguments_are_rejected_up_front(kwargs):
    with pytest.raises(ValueError):
        backoff_delays(**kwargs)


@pytest.mark.parametrize('value, expected', [
    ('120', 120.0), (' 3 ', 3.0), ('0', 0.0), ('0.2', 0.2),
    (None, None), ('', None), ('soon', None), ('-5', None), ('nan', None), ('inf', None),
])
def test_retry_after_delta_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_is_measured_against_now():
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)
    assert parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT', now=1445412470.0) == pytest.approx(10.0)


def test_retry_after_http_date_in_the_past_means_now():
    assert parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT', now=1_700_000_000.0) == 0.0
