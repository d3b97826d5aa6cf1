"""Submitting jobs over HTTP and looking at what they stored on S3."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx

from tests.support.images import jpeg_bytes
from tests.support.processes import Stack

THUMB = {
    "name": "thumb",
    "steps": [{"op": "resize", "width": 320}, {"op": "convert", "format": "webp", "quality": 80}],
}


PNG = {
    "name": "square",
    "steps": [
        {"op": "resize", "width": 100, "height": 100, "fit": "cover"},
        {"op": "convert", "format": "png"},
    ],
}


def form(spec: dict[str, Any] | str, data: bytes, filename: str = "photo.jpg") -> dict[str, Any]:
    text = spec if isinstance(spec, str) else json.dumps(spec)
    return {"files": {"file": (filename, data, "application/octet-stream")}, "data": {"spec": text}}


def s3_keys(stack: Stack, prefix: str) -> list[str]:
    s3 = boto3.client(
        "s3", endpoint_url=stack.env["PIXTOOLS_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    resp = s3.list_objects_v2(Bucket=stack.env["PIXTOOLS_S3_BUCKET"], Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


async def submit(
    client: httpx.AsyncClient, spec: dict[str, Any], data: bytes | None = None, **kw: Any
) -> httpx.Response:
    return await client.post("/api/v1/jobs", **form(spec, data or jpeg_bytes()), **kw)
