"""Object storage: S3 (any S3 API, through aioboto3) or a local folder, one interface.

Keys follow docs/api.md, "Storage layout": ``raw/{job}/source.{ext}``,
``processed/{job}/{output}.{ext}``, ``archives/{job}.zip``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote


def source_key(job_id: str, ext: str) -> str:
    """Where a job's source is stored."""
    return f"raw/{job_id}/source.{ext}"


def output_key(job_id: str, name: str, ext: str) -> str:
    """Where a job's rendered output is stored."""
    return f"processed/{job_id}/{name}.{ext}"


def archive_key(job_id: str) -> str:
    """Where a job's zip of its outputs is stored."""
    return f"archives/{job_id}.zip"


class ObjectNotFound(KeyError):
    """No object under that key."""


class ObjectStore(Protocol):
    """What the service needs from an object store."""

    kind: str

    async def put(
        self, key: str, data: bytes | bytearray, content_type: str, *, if_absent: bool = False
    ) -> bool:
        """Store ``data`` at ``key`` (atomically: readers see the old object or the new one).
        With ``if_absent``, an object already at ``key`` is kept and nothing is written.
        True if this call wrote the object."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; ``ObjectNotFound`` when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; an absent one is no error."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    async def presigned_url(self, key: str, filename: str, content_type: str) -> str | None:
        """A time-limited download URL, or None when the API must serve the bytes itself."""
        ...

    async def read_head(self, key: str, size: int) -> tuple[int, bytes]:
        """The object's length and its first ``size`` bytes (a ranged read)."""
        ...

    async def presigned_upload(self, key: str, max_bytes: int) -> dict[str, Any] | None:
        """A time-limited browser-style POST (``url``, form ``fields``) that stores one file
        of at most ``max_bytes`` under ``key``; None when this store cannot take one."""
        ...

    async def ping(self) -> None:
        """Raise when the store cannot be used (the readiness check)."""
        ...

    async def close(self) -> None:
        """Release its connections."""
        ...


class LocalObjectStore:
    """A folder; writes are atomic (temp file + rename), so readers never see half a file."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key escapes the store: {key!r}")
        return path

    def _put(self, key: str, data: bytes | bytearray, if_absent: bool) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            if not if_absent:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)  # fails if the name exists: the first complete write wins
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    async def put(
        self,
        key: str,
        data: bytes | bytearray,
        content_type: str,  # noqa: ARG002  a file keeps no content type
        *,
        if_absent: bool = False,
    ) -> bool:
        """In a thread; with ``if_absent`` through a hard link, which fails on a taken name."""
        return await asyncio.to_thread(self._put, key, data, if_absent)

    async def get(self, key: str) -> bytes:
        """Read in a thread."""
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def delete(self, key: str) -> None:
        """Unlink the file, and its folder once that is empty."""
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only succeeds when empty

    async def exists(self, key: str) -> bool:
        """Whether the file is there."""
        return await asyncio.to_thread(self._path(key).is_file)

    async def presigned_url(self, key: str, filename: str, content_type: str) -> str | None:  # noqa: ARG002  a folder has no URL
        """None: the API serves the file itself."""
        return None

    def _read_head(self, key: str, size: int) -> tuple[int, bytes]:
        try:
            with self._path(key).open("rb") as fh:
                return os.fstat(fh.fileno()).st_size, fh.read(size)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def read_head(self, key: str, size: int) -> tuple[int, bytes]:
        """Read in a thread."""
        return await asyncio.to_thread(self._read_head, key, size)

    async def presigned_upload(self, key: str, max_bytes: int) -> dict[str, Any] | None:  # noqa: ARG002  a folder has no URL
        """None: a folder has no URL to upload to, the file comes with the job."""
        return None

    async def ping(self) -> None:
        """Raise when the folder is not writable."""
        ok = await asyncio.to_thread(os.access, self.root, os.W_OK)
        if not ok:
            raise OSError(f"{self.root} is not writable")

    async def close(self) -> None:
        """Nothing to release."""


#: S3's answers to a conditional PUT (``If-None-Match: *``) when the key is taken.
_ALREADY_WRITTEN = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class S3ObjectStore:
    """S3 through aioboto3; one client per event loop, opened lazily and kept."""

    kind = "s3"

    def __init__(
        self, bucket: str, *, endpoint_url: str | None, region: str, presign_seconds: int
    ) -> None:
        import aioboto3

        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.region = region
        self.presign_seconds = presign_seconds
        self._session = aioboto3.Session()
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from botocore.config import Config

                    stack = contextlib.AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        self._session.client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            config=Config(
                                retries={"max_attempts": 3, "mode": "standard"},
                                connect_timeout=5,
                                read_timeout=30,
                                max_pool_connections=20,
                            ),
                        )
                    )
                    self._stack = stack
        return self._client

    async def put(
        self, key: str, data: bytes | bytearray, content_type: str, *, if_absent: bool = False
    ) -> bool:
        """PUT, with ``If-None-Match: *`` when ``if_absent``."""
        s3 = await self._s3()
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            await s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **condition
            )
        except s3.exceptions.ClientError as exc:
            # 412: the object exists; 409: a conditional write of the same key is under way.
            if if_absent and exc.response.get("Error", {}).get("Code") in _ALREADY_WRITTEN:
                return False
            raise
        return True

    async def get(self, key: str) -> bytes:
        """GET of the whole object."""
        s3 = await self._s3()
        try:
            resp = await s3.get_object(Bucket=self.bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            raise ObjectNotFound(key) from None
        async with resp["Body"] as body:
            data: bytes = await body.read()
        return data

    async def delete(self, key: str) -> None:
        """DELETE (S3 answers the same whether or not the key existed)."""
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        """HEAD of the key."""
        s3 = await self._s3()
        try:
            await s3.head_object(Bucket=self.bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def presigned_url(self, key: str, filename: str, content_type: str) -> str | None:
        """A GET URL, valid ``presign_seconds``, naming the download and its content type."""
        s3 = await self._s3()
        url: str = await s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                "ResponseContentType": content_type,
            },
            ExpiresIn=self.presign_seconds,
        )
        return url

    async def read_head(self, key: str, size: int) -> tuple[int, bytes]:
        """A ranged GET; the length comes from its Content-Range."""
        s3 = await self._s3()
        try:
            resp = await s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}")
        except s3.exceptions.NoSuchKey:
            raise ObjectNotFound(key) from None
        except s3.exceptions.ClientError as exc:  # an empty object: the range is unsatisfiable
            if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                raise
            return 0, b""
        # "bytes 0-65535/4000000": the length after the slash (no Content-Range: all of it).
        total = resp.get("ContentRange", "").rpartition("/")[2]
        async with resp["Body"] as body:
            head: bytes = await body.read()
        return (int(total) if total.isdigit() else len(head)), head

    async def presigned_upload(self, key: str, max_bytes: int) -> dict[str, Any] | None:
        """A presigned POST of 1 to ``max_bytes`` bytes, valid ``presign_seconds``."""
        s3 = await self._s3()
        # A POST policy, not a PUT: S3 enforces the size range itself (a PUT can't cap it).
        post: dict[str, Any] = await s3.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=self.presign_seconds,
        )
        return post

    async def ping(self) -> None:
        """HEAD of the bucket."""
        s3 = await self._s3()
        await s3.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        """Close the client; the next call opens a new one."""
        if self._stack is not None:
            await self._stack.aclose()
        self._client = None
        self._stack = None
