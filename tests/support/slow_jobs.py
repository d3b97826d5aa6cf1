"""A job slow enough to be caught running: its output, a noisy source, submit, wait until running."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import numpy as np
from PIL import Image

# Long enough (seconds on these cores) that the kill lands mid-output.
# Seconds of work on a 6 MP noisy source with pillow-simd as with Pillow (lossless WebP of
# sharpened noise: the encoder's time, which no SIMD build of the filters shortens).
SLOW_OUTPUT = {
    "name": "slow",
    "steps": [
        {"op": "sharpen", "amount": 10, "radius": 10},
        {"op": "convert", "format": "webp", "lossless": True},
    ],
}


def noisy_jpeg(w: int, h: int, seed: int = 1) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


async def submit(client: httpx.AsyncClient, spec: dict[str, Any], data: bytes) -> str:
    resp = await client.post(
        "/api/v1/jobs", files={"file": ("big.jpg", data)}, data={"spec": json.dumps(spec)}
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


async def until_running(client: httpx.AsyncClient, jid: str) -> None:
    for _ in range(600):
        job = (await client.get(f"/api/v1/jobs/{jid}")).json()
        if any(o["status"] == "running" for o in job["outputs"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {jid} never started: {job}")
