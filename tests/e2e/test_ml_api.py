"""The ML ops through the HTTP API, with the ML worker as a real process (queue `ml`)."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image

from pixtools.ml.faces import blur_region
from tests.support import samples
from tests.support.processes import wait_job

pytestmark = [pytest.mark.services, pytest.mark.ml]


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


async def run(
    client: httpx.AsyncClient, img: Image.Image, *outputs: dict[str, Any]
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/jobs",
        files={"file": ("photo.png", png(img))},
        data={"spec": json.dumps({"outputs": list(outputs)})},
    )
    assert r.status_code == 202, r.text
    return await wait_job(client, r.json()["id"], timeout=180)


async def fetch(client: httpx.AsyncClient, url: str) -> Image.Image:
    r = await client.get(url, follow_redirects=True)
    assert r.status_code == 200
    return Image.open(io.BytesIO(r.content))


async def test_faces_found_and_blurred_in_a_real_photograph(
    stack_client: httpx.AsyncClient,
) -> None:
    photo = samples.astronaut()
    job = await run(
        stack_client,
        photo,
        {"name": "faces", "steps": [{"op": "detect_faces"}]},
        {
            "name": "private",
            "steps": [{"op": "blur_faces", "shape": "box"}, {"op": "convert", "format": "png"}],
        },
    )
    assert job["status"] == "succeeded", job
    outs = {o["name"]: o for o in job["outputs"]}
    assert {o["queue"] for o in outs.values()} == {"ml"}
    faces = outs["faces"]["result"]["faces"]
    assert len(faces) == 1
    assert samples.box_within(faces[0]["box"], samples.ASTRONAUT_FACE_REGION)
    assert faces[0]["score"] > 0.5 and len(faces[0]["landmarks"]) == 5
    # An analysis-only output stores no image.
    assert outs["faces"]["url"] is None and outs["faces"]["bytes"] is None
    blurred = (await fetch(stack_client, outs["private"]["url"])).convert("RGB")
    inside, _ = samples.pixel_change(photo, blurred, faces[0]["box"])
    assert inside > 5  # the face is visibly different
    # Nothing outside the blurred region (the face box grown to cover hair and chin) changed.
    _, outside = samples.pixel_change(photo, blurred, blur_region(faces[0]["box"], photo.size))
    assert outside == 0


async def test_no_face_gives_an_empty_list(stack_client: httpx.AsyncClient) -> None:
    job = await run(
        stack_client, samples.cat(), {"name": "faces", "steps": [{"op": "detect_faces"}]}
    )
    assert job["outputs"][0]["result"] == {"faces": []}


async def test_ocr_reads_rendered_text(stack_client: httpx.AsyncClient) -> None:
    job = await run(
        stack_client,
        samples.text_image(["PixTools reads text", "Invoice 2026-11"]),
        {"name": "text", "steps": [{"op": "ocr"}]},
    )
    result = job["outputs"][0]["result"]
    assert [line["text"] for line in result["lines"]] == ["PixTools reads text", "Invoice 2026-11"]
    assert "PixTools reads text" in result["text"]


async def test_moderation_probabilities_sum_to_one(stack_client: httpx.AsyncClient) -> None:
    job = await run(stack_client, samples.coffee(), {"name": "m", "steps": [{"op": "moderate"}]})
    result = job["outputs"][0]["result"]
    assert abs(result["nsfw"] + result["sfw"] - 1) < 1e-6
    assert result["sfw"] > 0.5


async def test_ml_ops_compose_with_standard_steps_and_map_boxes_to_the_source(
    stack_client: httpx.AsyncClient,
) -> None:
    big = samples.scaled(samples.astronaut(), 1536)  # 3x the original
    job = await run(
        stack_client,
        big,
        {
            "name": "web",
            "steps": [
                {"op": "resize", "width": 400},
                {"op": "detect_faces"},
                {"op": "blur_faces"},
                {"op": "convert", "format": "webp", "quality": 80},
            ],
        },
    )
    out = job["outputs"][0]
    assert out["status"] == "succeeded" and out["queue"] == "ml"
    assert (out["width"], out["height"], out["format"]) == (400, 400, "webp")
    (face,) = out["result"]["faces"]
    region = [v * 3 for v in samples.ASTRONAUT_FACE_REGION]
    assert samples.box_within(face["box"], region)  # in source pixels, not the 400 px image's
