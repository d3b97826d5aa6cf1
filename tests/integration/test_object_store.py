"""Object stores: S3 over HTTP (moto server) and the local folder, one behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pixtools.store.objects import LocalObjectStore, ObjectNotFound, ObjectStore, S3ObjectStore

pytestmark = pytest.mark.services


@pytest.fixture(params=["s3", "local"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> AsyncIterator[ObjectStore]:
    s: ObjectStore
    if request.param == "s3":
        s = S3ObjectStore(
            s3_bucket, endpoint_url=s3_endpoint, region="us-east-1", presign_seconds=60
        )
    else:
        s = LocalObjectStore(tmp_path / "objects")
    yield s
    await s.close()


async def test_put_get_exists_delete(store: ObjectStore) -> None:
    await store.ping()
    await store.put("processed/j1/thumb.webp", b"RIFFxxxxWEBP", "image/webp")
    assert await store.exists("processed/j1/thumb.webp")
    assert await store.get("processed/j1/thumb.webp") == b"RIFFxxxxWEBP"
    await store.put("processed/j1/thumb.webp", b"second", "image/webp")  # overwrite, no duplicate
    assert await store.get("processed/j1/thumb.webp") == b"second"
    await store.delete("processed/j1/thumb.webp")
    assert not await store.exists("processed/j1/thumb.webp")
    with pytest.raises(ObjectNotFound):
        await store.get("processed/j1/thumb.webp")


async def test_a_write_if_absent_keeps_the_first_complete_object(store: ObjectStore) -> None:
    """A redo's write (``if_absent``) never replaces what an earlier attempt stored."""
    key = "processed/j3/thumb.webp"
    assert await store.put(key, b"first", "image/webp", if_absent=True) is True
    assert await store.put(key, b"redo", "image/webp", if_absent=True) is False
    assert await store.get(key) == b"first"
    assert await store.put(key, b"plain", "image/webp") is True  # unconditional: overwrites
    assert await store.get(key) == b"plain"


async def test_concurrent_writes_if_absent_store_one_object(store: ObjectStore) -> None:
    key = "previews/j4/source.webp"
    wrote = await asyncio.gather(
        *(store.put(key, f"w{i}".encode(), "image/webp", if_absent=True) for i in range(8))
    )
    assert wrote.count(True) == 1
    assert await store.get(key) == f"w{wrote.index(True)}".encode()


async def test_presigned_url_downloads_with_a_filename(store: ObjectStore) -> None:
    await store.put("archives/j2.zip", b"PK\x05\x06" + b"\0" * 18, "application/zip")
    url = await store.presigned_url("archives/j2.zip", "j2.zip", "application/zip")
    if store.kind == "local":
        assert url is None  # the API serves the bytes
        return
    assert url is not None
    async with httpx.AsyncClient() as c:
        r = await c.get(url)
    assert r.status_code == 200 and r.content.startswith(b"PK")
    assert "j2.zip" in r.headers["content-disposition"]


async def test_local_store_refuses_keys_escaping_its_folder(tmp_path: Path) -> None:
    s = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(ValueError, match="escapes"):
        await s.put("../outside", b"x", "text/plain")
