"""core/sharding.py: shard_of is a pure, stable CRC-32 split of normalized symbols."""
from __future__ import annotations

import subprocess
import sys
import zlib

import pytest

from cryptofeed.exchanges.backpack.core.sharding import check_shard, shard_of

SYMBOLS = ['SOL-USDC', 'BTC-USDC', 'ETH-USDC', 'SPCX.US-USDC', 'SOL-USDC-PERP', 'kPEPE-USDC-PERP'] + [
    f'COIN{i}-USDC' for i in range(200)]


def test_shard_of_is_crc32_of_the_utf8_symbol_modulo_count():
    assert shard_of('SOL-USDC', 7) == zlib.crc32(b'SOL-USDC') % 7
    assert shard_of('SOL-USDC', 1) == 0
    # pinned values: a change would move markets between the processes of a running deployment
    assert [shard_of(s, 4) for s in ('SOL-USDC', 'BTC-USDC', 'SOL-USDC-PERP')] == [
        zlib.crc32(s.encode()) % 4 for s in ('SOL-USDC', 'BTC-USDC', 'SOL-USDC-PERP')]


def test_every_symbol_lands_in_exactly_one_shard_and_the_shards_are_balanced():
    for count in (1, 2, 3, 8):
        shards = [shard_of(s, count) for s in SYMBOLS]
        assert all(0 <= n < count for n in shards)
        if count > 1:
            sizes = [shards.count(n) for n in range(count)]
            assert min(sizes) > len(SYMBOLS) / count / 2


def test_shard_of_is_the_same_in_another_process():
    code = 'from cryptofeed.exchanges.backpack.core.sharding import shard_of; print(shard_of("SOL-USDC", 5))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env={'PYTHONHASHSEED': '123'}).stdout
    assert int(out) == shard_of('SOL-USDC', 5)


@pytest.mark.parametrize('count', [0, -1, True, 2.0, '2', None])
def test_shard_of_refuses_a_count_below_one_or_not_an_integer(count):
    with pytest.raises(ValueError, match='shard count must be an integer >= 1'):
        shard_of('SOL-USDC', count)


@pytest.mark.parametrize('shard,message', [
    ((2, 2), r'index must be in 0\.\.1'),
    ((-1, 2), r'index must be in 0\.\.1'),
    ((0, 0), 'count must be >= 1'),
    ((0,), 'pair'),
    (3, 'pair'),
    (('0', 2), 'index must be an integer'),
    ((0, 2.0), 'count must be an integer'),
])
def test_check_shard_says_what_to_give(shard, message):
    with pytest.raises(ValueError, match=message):
        check_shard(shard)
    assert check_shard((1, 3)) == (1, 3)
