"""Sources by reference in the embedded mode: SQLite and the local-folder store."""

from __future__ import annotations

import httpx

from tests.support.api import PNG, THUMB, form
from tests.support.images import jpeg_bytes
from tests.support.processes import wait_job


async def test_a_job_on_a_stored_source_in_the_local_store(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/jobs", **form({"outputs": [THUMB]}, jpeg_bytes(900, 600)))
    assert resp.status_code == 202, resp.text
    first = await wait_job(client, resp.json()["id"])
    resp = await client.post(
        "/api/v1/jobs",
        params={"wait": "30"},
        json={"source": {"job": first["id"]}, "outputs": [PNG], "metadata": True},
    )
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "succeeded" and job["source"] == first["source"]
    assert job["metadata"] is not None  # read from the shared object
    png = await client.get(f"/api/v1/jobs/{job['id']}/outputs/square")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


async def test_presigned_uploads_need_s3(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/uploads")
    assert resp.status_code == 409, resp.text
    assert "multipart" in resp.json()["detail"]
