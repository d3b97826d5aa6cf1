"""What the API refuses at submit about the image and the spec's results (services mode, real
PostgreSQL, RabbitMQ, Redis and S3): truncated files, results over the pixel limit or over
the output format's size, watermark text that cannot be drawn; and what the worker does
with a tRNS PNG and with metadata it cannot keep."""

from __future__ import annotations

import io
import json
import struct
import uuid
import zlib
from typing import Any, cast

import httpx
import pytest
from PIL import Image, features

from pixtools.imaging.decode import avif_codec
from pixtools.services import build_services
from pixtools.settings import Settings
from pixtools.store.jobs import NewJob, NewOutput
from pixtools.store.objects import source_key
from tests.support.processes import wait_job


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiny_png() -> bytes:
    """The issue's 69-byte 1x1 PNG."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\x10\x20\x30")
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
    return png + _png_chunk(b"IEND", b"")


async def _submit(client: httpx.AsyncClient, spec: dict[str, Any], data: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/jobs",
        files={"file": ("upload", data, "application/octet-stream")},
        data={"spec": json.dumps(spec)},
    )


async def test_a_result_over_the_pixel_limit_is_422_naming_the_step(
    stack_client: httpx.AsyncClient,
) -> None:
    spec = {
        "outputs": [
            {"name": "ok", "steps": [{"op": "resize", "width": 100, "upscale": True}]},
            {
                "name": "huge",
                "steps": [
                    {"op": "grayscale"},
                    {"op": "resize", "width": 16384, "height": 16384, "upscale": True},
                    {"op": "rotate", "degrees": 45},
                    {"op": "convert", "format": "png"},
                ],
            },
        ]
    }
    resp = await _submit(stack_client, spec, tiny_png())
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["extra"]["field"] == "outputs[1].steps[1]"
    assert "16384x16384 = 268,435,456 pixels" in body["detail"]
    assert "the limit is 50,000,000" in body["detail"]


async def test_a_size_the_output_format_cannot_store_is_422(
    stack_client: httpx.AsyncClient,
) -> None:
    spec = {
        "outputs": [
            {
                "name": "wide",
                "steps": [
                    {"op": "resize", "width": 16384, "height": 100, "fit": "fill", "upscale": True},
                    {"op": "convert", "format": "webp"},
                ],
            }
        ]
    }
    resp = await _submit(stack_client, spec, tiny_png())
    assert resp.status_code == 422, resp.text
    assert resp.json()["extra"]["field"] == "outputs[0].steps[1].format"
    assert "WEBP images are at most 16,383 pixels a side" in resp.json()["detail"]
    # The same size in PNG is fine.
    spec["outputs"][0]["steps"][1] = {"op": "convert", "format": "png"}  # type: ignore[index]
    assert (await _submit(stack_client, spec, tiny_png())).status_code == 202


async def test_a_control_character_in_watermark_text_is_400(
    stack_client: httpx.AsyncClient,
) -> None:
    spec = {"outputs": [{"name": "w", "steps": [{"op": "watermark", "text": "(c) me\n2026"}]}]}
    resp = await _submit(stack_client, spec, tiny_png())
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "outputs[0].steps[0].text"


async def test_a_422_detail_leaks_no_object_repr(stack_client: httpx.AsyncClient) -> None:
    png = tiny_png()
    broken = png[:12] + b"IHDX" + png[16:]
    resp = await _submit(
        stack_client, {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}, broken
    )
    assert resp.status_code == 422, resp.text
    assert "0x" not in resp.json()["detail"] and "BytesIO" not in resp.json()["detail"]


async def test_a_png_key_colour_is_transparent_in_every_output(
    stack_client: httpx.AsyncClient,
) -> None:
    im = Image.new("RGB", (32, 32), (255, 0, 0))
    im.paste((0, 255, 0), (0, 0, 16, 32))
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=(0, 255, 0))
    outputs = [
        {"name": fmt, "steps": [{"op": "convert", "format": fmt}]} for fmt in ("webp", "gif")
    ]
    resp = await _submit(stack_client, {"outputs": outputs}, buf.getvalue())
    assert resp.status_code == 202, resp.text
    done = await wait_job(stack_client, resp.json()["id"])
    assert done["status"] == "succeeded", done
    for fmt in ("webp", "gif"):
        got = await stack_client.get(
            f"/api/v1/jobs/{done['id']}/outputs/{fmt}", follow_redirects=True
        )
        assert got.status_code == 200, got.text
        with Image.open(io.BytesIO(got.content)) as out:
            rgba = out.convert("RGBA")
            assert cast("tuple[int, ...]", rgba.getpixel((4, 4)))[3] == 0, (
                fmt
            )  # the key colour: transparent
            r, g, b, a = rgba.getpixel((28, 4))  # type: ignore[misc]
            assert a == 255 and r > 240 and g < 16 and b < 16, fmt


async def _stored_job(settings: Settings, steps: list[dict[str, Any]]) -> str:
    """A job written straight to the store, as an older version may have accepted it (its
    steps never went through today's submit checks); the outbox sends it to the workers."""
    svc = build_services(settings)
    try:
        job_id = uuid.uuid4()
        source = io.BytesIO()
        Image.new("RGB", (64, 48), (90, 120, 150)).save(source, format="PNG")
        key = source_key(str(job_id), "png")
        await svc.objects.put(key, source.getvalue(), "image/png")
        await svc.jobs.create(
            NewJob(
                id=job_id,
                owner="anonymous",
                spec={"outputs": [{"name": "o", "steps": steps}]},
                source={
                    "filename": "old.png",
                    "format": "png",
                    "content_type": "image/png",
                    "bytes": len(source.getvalue()),
                    "width": 64,
                    "height": 48,
                    "key": key,
                },
                webhook_url=None,
                archive=False,
                outputs=[NewOutput("o", 0, "standard", steps)],
            ),
            None,
        )
    finally:
        await svc.close()
    return str(job_id)


async def test_steps_no_longer_valid_fail_once_with_a_clear_message(
    stack_client: httpx.AsyncClient, services_settings: Settings
) -> None:
    job_id = await _stored_job(services_settings, [{"op": "resize", "fit": "cover"}])
    done = await wait_job(stack_client, job_id)
    out = done["outputs"][0]
    assert out["status"] == "failed" and out["attempts"] == 1, out
    assert out["error"].startswith("invalid steps:") and "width" in out["error"]


async def test_a_step_the_library_refuses_fails_once_naming_the_step(
    stack_client: httpx.AsyncClient, services_settings: Settings
) -> None:
    """A newline in watermark text, stored before the submit check: with raqm (Pillow's
    wheels) the layout fails, permanently, so once; Pillow's basic layout draws it."""
    job_id = await _stored_job(
        services_settings, [{"op": "watermark", "text": "two\nlines", "size": 0.2}]
    )
    done = await wait_job(stack_client, job_id)
    out = done["outputs"][0]
    assert out["attempts"] == 1, out
    if features.check("raqm"):
        assert out["status"] == "failed", out
        assert out["error"].startswith("step 0 (watermark) failed:"), out["error"]
    else:
        assert out["status"] == "succeeded", out


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF"])
async def test_a_truncated_upload_is_422_or_processed_never_5xx(
    stack_client: httpx.AsyncClient, fmt: str
) -> None:
    """Over HTTP: every cut of a valid file is refused at submit (422, or 415 when too little
    is left to tell the format) or, when what is left is whole, processed to the end."""
    avif_codec()
    whole = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 100, 50)).save(whole, format=fmt)
    data = whole.getvalue()
    spec = {"outputs": [{"name": "o", "steps": [{"op": "resize", "width": 20}]}]}
    for cut in sorted({1, 8, 20, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1}):
        resp = await _submit(stack_client, spec, data[:cut])
        assert resp.status_code in (202, 415, 422), (cut, resp.status_code, resp.text)
        if resp.status_code == 202:
            done = await wait_job(stack_client, resp.json()["id"])
            assert done["status"] == "succeeded", (cut, done)
        else:
            assert resp.json()["extra"]["field"] == "file"
