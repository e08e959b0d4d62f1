from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from functions.cache.codec import Entry
from functions.cache.memory import ENTRY_OVERHEAD, MemoryCache, cost

FAR = 2**40


def _entry(dims: int = 4, *, expires_at: int = FAR, fill: float = 0.0) -> Entry:
    return Entry(vector=np.full(dims, fill, np.float32), tokens=3, expires_at=expires_at)


def _key(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()


def test_least_recently_used_goes_first_when_the_bytes_run_out() -> None:
    one = cost(_entry())
    cache = MemoryCache(3 * one)
    for i in range(3):
        cache.put(_key(i), _entry(fill=i))
    cache.get_many([_key(0)], now=0)  # 0 is now the most recent
    cache.put(_key(3), _entry(fill=3))
    got = cache.get_many([_key(i) for i in range(4)], now=0)
    assert [e is not None for e in got] == [True, False, True, True]
    assert cache.used_bytes == 3 * one and len(cache) == 3


def test_expired_entries_are_misses_and_free_their_bytes() -> None:
    cache = MemoryCache(1 << 20)
    cache.put(_key(1), _entry(expires_at=100))
    assert cache.get_many([_key(1)], now=99)[0] is not None
    assert cache.get_many([_key(1)], now=100) == [None]
    assert cache.used_bytes == 0 and len(cache) == 0


def test_an_entry_larger_than_the_cache_is_not_kept() -> None:
    cache = MemoryCache(1000)
    assert not cache.put(_key(1), _entry(dims=1000))
    assert cache.get_many([_key(1)], now=0) == [None] and cache.used_bytes == 0


def test_cached_vectors_are_read_only() -> None:
    cache = MemoryCache(1 << 20)
    cache.put(_key(1), _entry())
    entry = cache.get_many([_key(1)], now=0)[0]
    assert entry is not None and not entry.vector.flags.writeable


def test_replacing_a_key_does_not_count_it_twice() -> None:
    cache = MemoryCache(1 << 20)
    cache.put(_key(1), _entry())
    cache.put(_key(1), _entry(fill=1))
    assert cache.used_bytes == cost(_entry()) and len(cache) == 1
    assert cost(_entry(dims=384)) == 384 * 4 + ENTRY_OVERHEAD


@given(
    capacity=st.integers(min_value=0, max_value=20_000),
    ops=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 300)), max_size=60),
)
def test_the_byte_bound_always_holds(capacity: int, ops: list[tuple[int, int]]) -> None:
    cache = MemoryCache(capacity)
    for key, dims in ops:
        cache.put(_key(key), _entry(dims))
        assert cache.used_bytes <= capacity
    keys = list(dict.fromkeys(_key(k) for k, _ in ops))
    total = sum(cost(e) for e in cache.get_many(keys, now=0) if e is not None)
    assert total <= capacity
