"""The API additions the browser UI stands on, over HTTP with `pixtools api` and the workers
as real processes (PostgreSQL, RabbitMQ, Redis, moto S3): preview renditions, DELETE of a
job and its objects, list filters (`q`), `proxy=true` downloads, `GET /api/v1/config`, and
the progress long poll (`?wait=N&since=`)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.api import THUMB, s3_keys
from tests.support.images import jpeg_bytes
from tests.support.processes import Stack, frozen_workers, wait_job
from tests.support.slow_jobs import SLOW_OUTPUT, noisy_jpeg, until_running

pytestmark = pytest.mark.services

LARGE = {"name": "large", "steps": [{"op": "resize", "width": 1400}]}


async def post(
    client: httpx.AsyncClient, spec: dict[str, Any], data: bytes, filename: str = "photo.jpg"
) -> str:
    resp = await client.post(
        "/api/v1/jobs",
        files={"file": (filename, data, "image/jpeg")},
        data={"spec": json.dumps(spec)},
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


async def test_image_outputs_get_small_webp_previews_made_by_the_worker(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    jid = await post(stack_client, {"outputs": [LARGE, THUMB]}, jpeg_bytes(1600, 1000))
    job = await wait_job(stack_client, jid)
    assert job["status"] == "succeeded", job
    for out in job["outputs"]:
        assert out["preview_url"] == f"/api/v1/jobs/{jid}/outputs/{out['name']}/preview"
        assert out["started_at"] and out["finished_at"]
        resp = await stack_client.get(out["preview_url"])
        assert resp.status_code == 200, resp.text  # bytes from the API, never a redirect
        assert resp.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(resp.content)) as im:
            assert im.format == "WEBP"
            assert max(im.size) <= 320
            # The output's aspect ratio (1400x875 and 320x200), within a pixel of rounding.
            assert abs(im.size[0] / im.size[1] - out["width"] / out["height"]) < 0.02
        assert len(resp.content) < out["bytes"]
    src = await stack_client.get(f"/api/v1/jobs/{jid}/source/preview")
    assert src.status_code == 200
    with Image.open(io.BytesIO(src.content)) as im:
        assert im.size == (320, 200)
    keys = s3_keys(services_stack, f"processed/{jid}/")
    assert f"processed/{jid}/large.preview.webp" in keys
    assert f"processed/{jid}/thumb.preview.webp" in keys


async def test_preview_errors_name_the_problem(stack_client: httpx.AsyncClient) -> None:
    jid = await post(stack_client, {"outputs": [THUMB]}, jpeg_bytes(400, 300))
    await wait_job(stack_client, jid)
    missing = await stack_client.get(f"/api/v1/jobs/{jid}/outputs/nope/preview")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    unknown = await stack_client.get(f"/api/v1/jobs/{uuid.uuid4()}/source/preview")
    assert unknown.status_code == 404


async def test_proxy_true_serves_the_bytes_instead_of_a_storage_redirect(
    stack_client: httpx.AsyncClient,
) -> None:
    jid = await post(stack_client, {"outputs": [THUMB], "archive": True}, jpeg_bytes(640, 480))
    job = await wait_job(stack_client, jid)
    url = job["outputs"][0]["url"]
    redirect = await stack_client.get(url)
    assert redirect.status_code == 307  # S3: presigned
    direct = await stack_client.get(url, params={"proxy": "true"})
    assert direct.status_code == 200
    assert direct.headers["content-type"] == "image/webp"
    assert len(direct.content) == job["outputs"][0]["bytes"]
    archive = await stack_client.get(job["archive"]["url"], params={"proxy": "true"})
    assert archive.status_code == 200
    assert archive.content[:2] == b"PK"


async def test_delete_removes_the_job_its_rows_and_every_object(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    jid = await post(stack_client, {"outputs": [THUMB, LARGE], "archive": True}, jpeg_bytes())
    job = await wait_job(stack_client, jid)
    assert job["status"] == "succeeded"
    before = s3_keys(services_stack, f"processed/{jid}/") + s3_keys(services_stack, f"raw/{jid}/")
    assert sorted(before) == sorted(
        [
            f"processed/{jid}/thumb.webp",
            f"processed/{jid}/thumb.preview.webp",
            f"processed/{jid}/large.jpg",
            f"processed/{jid}/large.preview.webp",
            f"raw/{jid}/source.jpg",
            f"raw/{jid}/source.preview.webp",
        ]
    )
    assert s3_keys(services_stack, f"archives/{jid}")

    resp = await stack_client.delete(f"/api/v1/jobs/{jid}")
    assert resp.status_code == 204, resp.text
    assert (await stack_client.get(f"/api/v1/jobs/{jid}")).status_code == 404
    for prefix in (f"processed/{jid}/", f"raw/{jid}/", f"archives/{jid}"):
        assert s3_keys(services_stack, prefix) == [], prefix
    listed = (await stack_client.get("/api/v1/jobs", params={"limit": 100})).json()
    assert jid not in {j["id"] for j in listed["items"]}
    again = await stack_client.delete(f"/api/v1/jobs/{jid}")
    assert again.status_code == 404


async def test_delete_refuses_a_running_job_until_it_is_canceled(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    jid = await post(stack_client, {"outputs": [SLOW_OUTPUT]}, noisy_jpeg(2400, 1600))
    await until_running(stack_client, jid)
    refused = await stack_client.delete(f"/api/v1/jobs/{jid}")
    assert refused.status_code == 409
    assert "cancel" in refused.json()["detail"]
    assert (await stack_client.get(f"/api/v1/jobs/{jid}")).status_code == 200
    assert s3_keys(services_stack, f"raw/{jid}/")  # nothing removed

    assert (await stack_client.post(f"/api/v1/jobs/{jid}/cancel")).status_code == 200
    assert (await stack_client.delete(f"/api/v1/jobs/{jid}")).status_code == 204
    assert s3_keys(services_stack, f"raw/{jid}/") == []


async def test_list_filters_by_name_and_status_and_pages_with_the_filter(
    stack_client: httpx.AsyncClient,
) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"Holiday-{tag}-{i}.jpg" for i in range(3)] + [f"other_{tag}%.jpg"]
    ids = [await post(stack_client, {"outputs": [THUMB]}, jpeg_bytes(200, 150), n) for n in names]
    for jid in ids:
        await wait_job(stack_client, jid)

    async def listed(**params: Any) -> dict[str, Any]:
        resp = await stack_client.get("/api/v1/jobs", params=params)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    found = await listed(q=f"holiday-{tag}")  # case-insensitive substring
    assert [j["source"]["filename"] for j in found["items"]] == names[2::-1]  # newest first
    # % and _ are literal: "_{tag}%" matches only the file that has them.
    literal = await listed(q=f"_{tag}%")
    assert [j["id"] for j in literal["items"]] == [ids[3]]
    assert (await listed(q=f"%{tag}"))["items"] == []
    assert [j["id"] for j in (await listed(q=tag, status="succeeded"))["items"]] == ids[::-1]
    assert (await listed(q=tag, status="failed"))["items"] == []

    first = await listed(q=tag, limit=3)
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = await listed(q=tag, limit=3, cursor=first["next_cursor"])
    assert [j["id"] for j in rest["items"]] == [ids[0]]
    assert rest["next_cursor"] is None

    too_long = await stack_client.get("/api/v1/jobs", params={"q": "x" * 256})
    assert too_long.status_code == 400
    assert "q" in too_long.text


async def test_config_tells_a_client_the_stale_window(stack_client: httpx.AsyncClient) -> None:
    resp = await stack_client.get("/api/v1/config")
    assert resp.status_code == 200
    config = resp.json()
    assert config["stale_after_seconds"] == 6  # PIXTOOLS_STALE_AFTER_SECONDS of the stack
    assert config["heartbeat_seconds"] == 1
    assert config["webhooks_enabled"] is True
    assert config["auth"] == "off"


STATE = "pixtools-job-state"


async def test_a_progress_long_poll_answers_when_an_output_moves(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    quick = {"name": "quick", "steps": [{"op": "grayscale"}]}
    slow = httpx.AsyncClient(base_url=services_stack.base_url, timeout=90)  # two long polls
    with frozen_workers(services_stack):  # nothing moves until they continue
        jid = await post(stack_client, {"outputs": [quick, SLOW_OUTPUT]}, noisy_jpeg(2400, 1600))
        now = await stack_client.get(f"/api/v1/jobs/{jid}")
        queued = now.headers[STATE]
        assert now.json()["status"] == "queued"
        again = await stack_client.get(f"/api/v1/jobs/{jid}?since={queued}")
        assert again.headers[STATE] == queued  # nothing moved: the same token
        # A token that is not the job's state: the answer comes at once, not at the end or
        # after the wait (the client's 30 s timeout is shorter than the 60 s asked for).
        other = await stack_client.get(f"/api/v1/jobs/{jid}?wait=60&since=0123456789abcdef")
        assert other.json()["status"] == "queued"
        assert other.headers[STATE] == queued

        # Both polls wait from the same state: with `since`, the first move answers it;
        # without, only the job's end does.
        moved = asyncio.create_task(slow.get(f"/api/v1/jobs/{jid}?wait=60&since={queued}"))
        ended = asyncio.create_task(slow.get(f"/api/v1/jobs/{jid}?wait=60"))
        await asyncio.sleep(0.5)  # both requests sent (an order, not a timing assert)
        assert not moved.done() and not ended.done()  # nothing moved yet
    try:
        first = await moved
        job = first.json()
        assert first.headers[STATE] != queued
        assert job["status"] == "running", job  # answered before the job ended
        assert any(o["status"] != "pending" for o in job["outputs"]), job
        last = await ended
    finally:
        await slow.aclose()
    assert last.json()["status"] == "succeeded", last.json()
    assert last.headers[STATE] not in {queued, first.headers[STATE]}
    # An ended job answers at once, whatever the token.
    done = await stack_client.get(f"/api/v1/jobs/{jid}?wait=60&since={last.headers[STATE]}")
    assert done.json()["status"] == "succeeded"
