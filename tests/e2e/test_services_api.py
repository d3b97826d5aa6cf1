"""End to end over HTTP in services mode: `pixtools api` and both workers as real processes
on the real PostgreSQL, RabbitMQ and Redis, with S3 served by a moto server."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import subprocess
import time
import zipfile
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.api import PNG, THUMB, form, s3_keys, submit
from tests.support.images import jpeg_bytes
from tests.support.processes import Stack, wait_for, wait_job
from tests.support.servers import rabbitmqctl

pytestmark = pytest.mark.services


async def test_job_runs_end_to_end_with_outputs_and_archive_on_s3(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    resp = await submit(stack_client, {"outputs": [THUMB, PNG]}, jpeg_bytes(1200, 800))
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["source"] == {
        "filename": "photo.jpg",
        "format": "jpeg",
        "content_type": "image/jpeg",
        "bytes": job["source"]["bytes"],
        "width": 1200,
        "height": 800,
    }
    done = await wait_job(stack_client, job["id"])
    assert done["status"] == "succeeded", done
    outs = {o["name"]: o for o in done["outputs"]}
    assert (outs["thumb"]["width"], outs["thumb"]["height"], outs["thumb"]["format"]) == (
        320,
        213,
        "webp",
    )
    assert (outs["square"]["width"], outs["square"]["height"], outs["square"]["content_type"]) == (
        100,
        100,
        "image/png",
    )
    assert all(o["attempts"] == 1 and o["error"] is None for o in outs.values())

    # Downloads redirect to presigned S3 URLs.
    r = await stack_client.get(outs["thumb"]["url"])
    assert r.status_code == 307
    async with httpx.AsyncClient() as raw:
        blob = (await raw.get(r.headers["location"])).content
    img = Image.open(io.BytesIO(blob))
    assert (img.format, img.size) == ("WEBP", (320, 213))
    assert len(blob) == outs["thumb"]["bytes"]

    r = await stack_client.get(done["archive"]["url"])
    assert r.status_code == 307
    async with httpx.AsyncClient() as raw:
        archive = zipfile.ZipFile(io.BytesIO((await raw.get(r.headers["location"])).content))
    assert sorted(archive.namelist()) == ["square.png", "thumb.webp"]

    jid = job["id"]
    assert sorted(s3_keys(services_stack, f"raw/{jid}/")) == [
        f"raw/{jid}/source.jpg",
        f"raw/{jid}/source.preview.webp",
    ]
    assert sorted(s3_keys(services_stack, f"processed/{jid}/")) == [
        f"processed/{jid}/square.png",
        f"processed/{jid}/square.preview.webp",
        f"processed/{jid}/thumb.preview.webp",
        f"processed/{jid}/thumb.webp",
    ]
    assert s3_keys(services_stack, f"archives/{jid}") == [f"archives/{jid}.zip"]


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photo.jpg", jpeg_bytes(32, 32))
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares the size; no pixel data follows (a decompression bomb's head)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        (form("{not json", jpeg_bytes()), 400, "spec"),
        (
            form({"outputs": [{"name": "a", "steps": [{"op": "explode"}]}]}, jpeg_bytes()),
            400,
            "outputs[0].steps[0].op",
        ),
        (
            form(
                {
                    "outputs": [
                        {
                            "name": "a",
                            "steps": [{"op": "convert", "format": "webp", "quality": 101}],
                        }
                    ]
                },
                jpeg_bytes(),
            ),
            400,
            "outputs[0].steps[0].quality",
        ),
        (form({"outputs": [THUMB, THUMB]}, jpeg_bytes()), 400, "outputs[1].name"),
        (
            form({"outputs": [dict(THUMB, name=f"o{i}") for i in range(11)]}, jpeg_bytes()),
            400,
            "outputs",
        ),
        (
            form({"outputs": [THUMB], "webhook_url": "http://127.0.0.1:9/hook"}, jpeg_bytes()),
            400,
            "webhook_url",
        ),
        ({"files": {"spec": (None, json.dumps({"outputs": [THUMB]}))}}, 400, "file"),
        ({"files": {"file": ("a.jpg", jpeg_bytes(), "image/jpeg")}}, 400, "spec"),
        (form({"outputs": [THUMB]}, b"%PDF-1.7\n" + b"x" * 200, "doc.jpg"), 415, "file"),
        (
            form({"outputs": [THUMB]}, b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "a.png"),
            415,
            "file",
        ),
        (
            form({"outputs": [THUMB]}, b"just some text, not an image at all" * 3, "a.jpg"),
            415,
            "file",
        ),
        (form({"outputs": [THUMB]}, png_header_only(100_000, 100_000)), 422, "file"),
        (form({"outputs": [THUMB]}, jpeg_bytes()[:40]), 422, "file"),
        (form({"outputs": [THUMB]}, zip_bytes(), "photos.jpg"), 415, "file"),
        (
            form(
                {
                    "outputs": [
                        {
                            "name": "c",
                            "steps": [
                                {"op": "crop", "left": 600, "top": 0, "width": 100, "height": 10}
                            ],
                        }
                    ]
                },
                jpeg_bytes(640, 480),
            ),
            400,
            "outputs[0].steps[0].width",
        ),
    ],
)
async def test_bad_submissions_are_refused_and_leave_nothing(
    stack_client: httpx.AsyncClient,
    services_stack: Stack,
    kwargs: dict[str, Any],
    status: int,
    field: str,
) -> None:
    before_jobs = (await stack_client.get("/api/v1/jobs?limit=100")).json()["items"]
    before_raw = s3_keys(services_stack, "raw/")
    resp = await stack_client.post("/api/v1/jobs", **kwargs)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status
    assert body["detail"].startswith(field), body
    assert "Traceback" not in resp.text
    assert (await stack_client.get("/api/v1/jobs?limit=100")).json()["items"] == before_jobs
    assert s3_keys(services_stack, "raw/") == before_raw


async def test_oversized_upload_is_413_before_it_is_read_whole(
    stack_client: httpx.AsyncClient,
) -> None:
    big = jpeg_bytes() + b"\0" * (25 * 1024 * 1024 + 10)
    resp = await stack_client.post("/api/v1/jobs", **form({"outputs": [THUMB]}, big))
    assert resp.status_code == 413
    # The body names the limit and the setting that raises it.
    assert resp.json()["detail"] == (
        "file: larger than the upload limit of 26,214,400 bytes (25 MiB, PIXTOOLS_MAX_UPLOAD_BYTES)"
    )


async def test_idempotency_key_replays_and_conflicts(stack_client: httpx.AsyncClient) -> None:
    data = jpeg_bytes(300, 200)
    headers = {"Idempotency-Key": "order-42"}
    first = await submit(stack_client, {"outputs": [THUMB]}, data, headers=headers)
    assert first.status_code == 202
    again = await submit(stack_client, {"outputs": [THUMB]}, data, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = await submit(stack_client, {"outputs": [PNG]}, data, headers=headers)
    assert other.status_code == 409
    assert other.json()["extra"]["job_id"] == first.json()["id"]


async def test_concurrent_twins_with_one_key_make_one_job(stack_client: httpx.AsyncClient) -> None:
    data = jpeg_bytes(200, 200)
    headers = {"Idempotency-Key": "twins-1"}
    responses = await asyncio.gather(
        *(submit(stack_client, {"outputs": [THUMB]}, data, headers=headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses).count(202) == 1
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}


async def test_list_with_cursor_paging(stack_client: httpx.AsyncClient) -> None:
    ids = [
        (await submit(stack_client, {"outputs": [THUMB]}, jpeg_bytes(64, 64))).json()["id"]
        for _ in range(3)
    ]
    page = (await stack_client.get("/api/v1/jobs?limit=2")).json()
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    rest = (await stack_client.get(f"/api/v1/jobs?limit=2&cursor={page['next_cursor']}")).json()
    assert rest["items"][0]["id"] == ids[0]
    assert (await stack_client.get("/api/v1/jobs?cursor=garbage")).status_code == 400
    assert (await stack_client.get("/api/v1/jobs?limit=0")).status_code == 400
    for jid in ids:
        await wait_job(stack_client, jid)


async def test_unknown_job_and_not_ready_output(stack_client: httpx.AsyncClient) -> None:
    assert (
        await stack_client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
    ).status_code == 404
    job = (await submit(stack_client, {"outputs": [THUMB]})).json()
    done = await wait_job(stack_client, job["id"])
    assert (await stack_client.get(f"/api/v1/jobs/{job['id']}/outputs/nope")).status_code == 404
    assert (
        await stack_client.get(f"/api/v1/jobs/{job['id']}/archive")
    ).status_code == 404  # one output: no archive
    assert done["archive"] is None


async def test_a_crop_outside_the_resized_image_is_refused_at_submit(
    stack_client: httpx.AsyncClient,
) -> None:
    # Every step's size is computed from the source's at submit (jobspec/sizes.py), so a crop
    # after a resize is judged there too, no longer failing its output when it runs.
    crop_outside = {
        "name": "bad",
        "steps": [
            {"op": "resize", "width": 200},
            {"op": "crop", "left": 5000, "top": 0, "width": 10, "height": 10},
        ],
    }
    resp = await submit(stack_client, {"outputs": [THUMB, crop_outside]}, jpeg_bytes(400, 300))
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "outputs[1].steps[1].width"
    assert "exceeds the image width 200" in resp.json()["detail"]


async def test_redelivered_message_does_not_redo_work(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    job = (await submit(stack_client, {"outputs": [THUMB]})).json()
    done = await wait_job(stack_client, job["id"])
    broker = RabbitmqBroker(url=services_stack.env["PIXTOOLS_RABBITMQ_URL"], confirm_delivery=True)
    try:
        for _ in range(2):
            broker.enqueue(
                dramatiq.Message(
                    queue_name="standard",
                    actor_name="process_output",
                    args=(job["id"], "thumb"),
                    kwargs={},
                    options={},
                )
            )
            broker.enqueue(
                dramatiq.Message(
                    queue_name="standard",
                    actor_name="finalize_job",
                    args=(job["id"],),
                    kwargs={},
                    options={},
                )
            )
    finally:
        broker.close()
    await asyncio.sleep(1.5)
    after = (await stack_client.get(f"/api/v1/jobs/{job['id']}")).json()
    assert after["outputs"][0]["attempts"] == 1
    assert after["finished_at"] == done["finished_at"]
    assert s3_keys(services_stack, f"processed/{job['id']}/") == [
        f"processed/{job['id']}/thumb.preview.webp",
        f"processed/{job['id']}/thumb.webp",
    ]


async def test_catalogue_health_and_docs(stack_client: httpx.AsyncClient) -> None:
    ops = (await stack_client.get("/api/v1/operations")).json()
    by_name = {o["op"]: o for o in ops}
    assert by_name["resize"]["queue"] == "standard" and by_name["blur_faces"]["queue"] == "ml"
    quality = next(p for p in by_name["convert"]["params"] if p["name"] == "quality")
    assert quality["constraints"]["ge"] == 1 and quality["constraints"]["le"] == 100
    assert (await stack_client.get("/livez")).json() == {"status": "ok"}
    ready = await stack_client.get("/readyz")
    assert ready.status_code == 200 and set(ready.json()["checks"]) == {
        "database",
        "broker",
        "cache",
    }
    health = (await stack_client.get("/health")).json()
    assert (
        health["checks"]["object_store"]["ok"]
        and health["object_store"] == "s3"
        and health["mode"] == "services"
    )
    assert "latency_ms" in health["checks"]["database"]
    schema = (await stack_client.get("/openapi.json")).json()
    assert "/api/v1/jobs" in schema["paths"]
    assert (await stack_client.get("/docs")).status_code in (200, 307)
    assert (await stack_client.get("/docs", follow_redirects=True)).status_code == 200
    assert (await stack_client.get("/redoc", follow_redirects=True)).status_code == 200
    metrics = (await stack_client.get("/metrics")).text
    assert "pixtools_jobs_submitted_total" in metrics and "pixtools_http_requests_total" in metrics
    pillow = health["pillow"]
    assert (
        f'pixtools_pillow_build_info{{simd="{str(pillow["is_simd"]).lower()}",version="{pillow["pillow_version"]}"}} 1.0'
        in metrics
    )
    index = await stack_client.get("/")
    assert index.status_code == 200 and "PixTools" in index.text
    assert index.headers["x-content-type-options"] == "nosniff"


async def test_broker_down_still_accepts_and_jobs_run_when_it_returns(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    rabbitmqctl("stop_app")
    try:
        wait_for(
            lambda: httpx.get(services_stack.base_url + "/readyz", timeout=5).status_code == 503,
            30,
            "readyz 503",
        )
        ready = (await stack_client.get("/readyz")).json()
        assert ready["down"] == ["broker"]
        ids = []
        for _ in range(3):
            resp = await submit(stack_client, {"outputs": [THUMB]}, jpeg_bytes(200, 150))
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        await asyncio.sleep(2)
        for jid in ids:
            assert (await stack_client.get(f"/api/v1/jobs/{jid}")).json()["status"] == "queued"
    finally:
        rabbitmqctl("start_app")
        subprocess.run(
            ["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=120
        )
    for jid in ids:
        done = await wait_job(stack_client, jid, timeout=120)
        assert done["status"] == "succeeded"


async def test_long_poll_answers_when_the_job_finishes(stack_client: httpx.AsyncClient) -> None:
    job = (await submit(stack_client, {"outputs": [THUMB, PNG]}, jpeg_bytes(800, 600))).json()
    started = time.monotonic()
    r = await stack_client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 30})
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert elapsed < 20  # woken by the job's NOTIFY, not by the timeout
    quick = await stack_client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 30})
    assert quick.json()["status"] == "succeeded"  # already finished: no wait at all
    assert (
        await stack_client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 61})
    ).status_code == 400
    assert (
        await stack_client.get(
            "/api/v1/jobs/00000000-0000-0000-0000-000000000000", params={"wait": 5}
        )
    ).status_code == 404


async def test_long_poll_times_out_with_the_job_as_it_is(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    services_stack.stop("worker-standard")
    try:
        job = (await submit(stack_client, {"outputs": [THUMB]})).json()
        started = time.monotonic()
        r = await stack_client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 1.5})
        assert 1.4 < time.monotonic() - started < 10
        assert r.json()["status"] == "queued"
    finally:
        services_stack.start(
            "worker-standard",
            "worker",
            "--queues",
            "standard",
            "--processes",
            "1",
            "--threads",
            "4",
        )
    assert (await wait_job(stack_client, job["id"]))["status"] == "succeeded"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field"),
    [
        (
            # JSON is a submission by reference (docs/api.md), which must name its source.
            {"content": b'{"outputs": []}', "headers": {"content-type": "application/json"}},
            400,
            "source",
        ),
        (
            {
                "files": {
                    "file": (None, "not a file part"),
                    "spec": (None, json.dumps({"outputs": [THUMB]})),
                }
            },
            400,
            "file",
        ),
        (
            {"files": {"file": ("a.jpg", b"x" * 10), "spec": (None, "x" * (256 * 1024 + 1))}},
            400,
            "spec",
        ),
        (
            {
                "content": b'--b\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{}',
                "headers": {"content-type": "multipart/form-data; boundary=b"},
            },
            400,
            "file",
        ),
    ],
)
async def test_malformed_forms_name_the_field(
    stack_client: httpx.AsyncClient, request_kwargs: dict[str, Any], status: int, field: str
) -> None:
    resp = await stack_client.post("/api/v1/jobs", **request_kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json()["extra"]["field"] == field


async def test_submission_is_documented_as_multipart(stack_client: httpx.AsyncClient) -> None:
    schema = (await stack_client.get("/openapi.json")).json()
    body = schema["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"
    ]
    assert body["required"] == ["file", "spec"] and body["properties"]["file"]["format"] == "binary"


async def test_a_good_header_over_a_cut_body_is_422_at_submit(
    stack_client: httpx.AsyncClient,
) -> None:
    broken = jpeg_bytes(640, 480)
    broken = broken[: len(broken) * 6 // 10]  # the header parses; the scan data ends early
    resp = await submit(stack_client, {"outputs": [THUMB]}, broken)
    assert resp.status_code == 422, resp.text  # the container check finds the missing end
    assert resp.json()["extra"]["field"] == "file"
    assert "truncated" in resp.json()["detail"]
