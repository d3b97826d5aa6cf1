"""The worker's memory of sources shared by reference: bounded, least recently used out."""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from pixtools.jobs import fetch
from pixtools.jobs.fetch import SharedSources, load_source
from pixtools.store.objects import LocalObjectStore


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 40)), max_size=60))
def test_the_cache_never_holds_more_than_its_limit(puts: list[tuple[int, int]]) -> None:
    cache = SharedSources(limit=100)
    for key, size in puts:
        cache.put(f"k{key}", bytes(size))
        assert cache.size == sum(len(cache.get(k) or b"") for k in list(cache._items))
        assert cache.size <= 100


def test_least_recently_used_goes_first() -> None:
    cache = SharedSources(limit=100)
    cache.put("a", bytes(20))
    cache.put("b", bytes(20))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", bytes(25))
    cache.put("d", bytes(25))
    cache.put("e", bytes(25))  # over 100: b, the least recent, goes first
    assert cache.get("b") is None and cache.get("a") is not None
    cache.put("huge", bytes(26))  # over a quarter of the limit: never kept
    assert cache.get("huge") is None


async def test_a_shared_source_is_read_from_the_store_once(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(fetch, "_shared", SharedSources())
    store = LocalObjectStore(tmp_path)
    svc = cast(Any, types.SimpleNamespace(objects=store))
    owner_job, other_job = uuid.uuid4(), uuid.uuid4()
    key = f"raw/{owner_job}/source.jpg"
    await store.put(key, b"the photo", "image/jpeg")
    assert await load_source(svc, owner_job, key, None) == b"the photo"  # its own: not kept
    assert fetch._shared.get(key) is None
    assert await load_source(svc, other_job, key, None) == b"the photo"  # by reference
    await store.delete(key)
    assert await load_source(svc, uuid.uuid4(), key, None) == b"the photo"  # from memory
