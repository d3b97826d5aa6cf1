"""Sources by reference, end to end in services mode: `pixtools api` and workers as real
processes on PostgreSQL, RabbitMQ, Redis and a moto S3 server (presigned POSTs over HTTP),
URL sources from a local HTTP server."""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.api import PNG, THUMB, s3_keys, submit
from tests.support.images import jpeg_bytes
from tests.support.keys import make_key
from tests.support.processes import Stack, free_port, wait_job
from tests.support.servers import migrated_database, rabbitmqctl

pytestmark = pytest.mark.services


def sources(keys: list[str]) -> list[str]:
    """The source objects among ``keys`` (without the UI's previews)."""
    return [k for k in keys if not k.endswith(".preview.webp")]


async def by_ref(
    client: httpx.AsyncClient, source: dict[str, Any], outputs: list[Any], **kw: Any
) -> httpx.Response:
    return await client.post("/api/v1/jobs", json={"source": source, "outputs": outputs}, **kw)


async def first_job(client: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    resp = await submit(client, {"outputs": [THUMB]}, jpeg_bytes(1200, 800), **kw)
    assert resp.status_code == 202, resp.text
    return await wait_job(client, resp.json()["id"], headers=kw.get("headers"))


async def test_a_job_on_an_earlier_jobs_source_shares_its_object(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    first = await first_job(stack_client)
    resp = await by_ref(stack_client, {"job": first["id"]}, [PNG])
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["source"] == first["source"]  # the same facts, from the database
    done = await wait_job(stack_client, job["id"])
    assert done["status"] == "succeeded", done
    (out,) = done["outputs"]
    assert (out["width"], out["height"], out["format"]) == (100, 100, "png")
    png = await stack_client.get(f"/api/v1/jobs/{job['id']}/outputs/square")
    assert png.status_code == 307  # downloads still redirect to S3
    image = Image.open(io.BytesIO(httpx.get(png.headers["location"]).content))
    assert image.size == (100, 100)
    # No new source object: the second job renders from the first one's. (Each job has its
    # own preview of the source beside where its source would be.)
    assert sources(s3_keys(services_stack, f"raw/{job['id']}/")) == []
    assert len(sources(s3_keys(services_stack, f"raw/{first['id']}/"))) == 1


async def test_post_with_wait_answers_with_the_finished_job(
    stack_client: httpx.AsyncClient,
) -> None:
    first = await first_job(stack_client)
    resp = await stack_client.post(
        "/api/v1/jobs",
        params={"wait": "30"},
        json={"source": {"job": first["id"]}, "outputs": [THUMB]},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "succeeded"
    assert resp.json()["outputs"][0]["url"] is not None
    # A multipart upload waits the same way.
    resp = await submit(stack_client, {"outputs": [THUMB]}, params={"wait": "30"})
    assert resp.status_code == 200 and resp.json()["status"] == "succeeded", resp.text
    # A wait shorter than the job: 202 and the job as it is then (200 only if finished).
    resp = await by_ref(stack_client, {"job": first["id"]}, [THUMB], params={"wait": "0.001"})
    assert resp.status_code in (200, 202), resp.text
    assert (resp.status_code == 200) == (resp.json()["status"] == "succeeded")
    bad = await by_ref(stack_client, {"job": first["id"]}, [THUMB], params={"wait": "61"})
    assert bad.status_code == 400, bad.text


async def test_a_key_sees_only_its_own_sources(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    alice = {"Authorization": f"Bearer {make_key(services_stack, 'src-alice')}"}
    bob = {"Authorization": f"Bearer {make_key(services_stack, 'src-bob')}"}
    first = await first_job(stack_client, headers=alice)
    resp = await by_ref(stack_client, {"job": first["id"]}, [THUMB], headers=bob)
    assert resp.status_code == 404, resp.text
    assert resp.json()["extra"]["field"] == "source.job"
    resp = await by_ref(stack_client, {"job": first["id"]}, [THUMB], headers=alice)
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"outputs": [THUMB]}, 400, "source"),
        ({"source": {"job": "nope"}, "outputs": [THUMB]}, 400, "source.job"),
        ({"source": {"job": "0" * 32}, "outputs": [THUMB]}, 404, "source.job"),
        ({"source": {"file": "x"}, "outputs": [THUMB]}, 400, "source"),
        ({"source": {"job": 5}, "outputs": [THUMB]}, 400, "source.job"),
        ({"source": {"url": "https://example.com/a.jpg"}, "outputs": [THUMB]}, 400, "source.url"),
        ({"source": {"job": "0" * 32}, "outputs": []}, 400, "outputs"),
        ({"source": {"upload": "0" * 32}, "outputs": [THUMB]}, 404, "source.upload"),
        ([1, 2], 400, "body"),
    ],
)
async def test_bad_references_are_refused_naming_the_field(
    stack_client: httpx.AsyncClient, body: Any, status: int, field: str
) -> None:
    resp = await stack_client.post("/api/v1/jobs", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["extra"]["field"] == field, resp.text


async def test_the_spec_is_checked_against_the_stored_sources_facts(
    stack_client: httpx.AsyncClient,
) -> None:
    first = await first_job(stack_client)  # 1200x800
    crop = {"op": "crop", "left": 1000, "top": 0, "width": 400, "height": 100}
    resp = await by_ref(stack_client, {"job": first["id"]}, [{"name": "c", "steps": [crop]}])
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "outputs[0].steps[0].width"
    huge = {"op": "resize", "width": 16000, "height": 16000, "fit": "fill", "upscale": True}
    resp = await by_ref(stack_client, {"job": first["id"]}, [{"name": "h", "steps": [huge]}])
    assert resp.status_code == 422, resp.text
    malformed = await stack_client.post(
        "/api/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["extra"]["field"] == "body"


# --- presigned uploads --------------------------------------------------------------------


async def presigned(client: httpx.AsyncClient, data: bytes) -> str:
    resp = await client.post("/api/v1/uploads")
    assert resp.status_code == 201, resp.text
    upload = resp.json()
    assert upload["method"] == "POST" and upload["max_bytes"] > 0
    # Straight to S3 (moto over HTTP): the API never sees the bytes.
    stored = httpx.post(
        upload["url"], data=upload["fields"], files={"file": ("big.jpg", data)}, timeout=30
    )
    assert stored.status_code in (200, 204), stored.text
    return str(upload["id"])


async def test_a_presigned_upload_becomes_a_job_once_it_is_there(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    resp = await stack_client.post("/api/v1/uploads")
    early = resp.json()["id"]
    resp = await by_ref(stack_client, {"upload": early}, [THUMB])
    assert resp.status_code == 409, resp.text  # nothing uploaded yet
    assert resp.json()["extra"]["field"] == "source.upload"

    data = jpeg_bytes(2400, 1600)
    upload_id = await presigned(stack_client, data)
    resp = await by_ref(stack_client, {"upload": upload_id}, [THUMB, PNG], params={"wait": "30"})
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["id"] == upload_id and job["status"] == "succeeded", job
    assert (job["source"]["width"], job["source"]["height"]) == (2400, 1600)
    assert job["source"]["bytes"] == len(data)
    assert sources(s3_keys(services_stack, f"raw/{upload_id}/")) == [f"raw/{upload_id}/source"]
    again = await by_ref(stack_client, {"upload": upload_id}, [THUMB])
    assert again.status_code == 409 and again.json()["extra"]["job_id"] == upload_id
    # Another job on it names the job.
    resp = await by_ref(stack_client, {"job": upload_id}, [PNG])
    assert resp.status_code == 202, resp.text


def noisy_jpeg(width: int, height: int) -> bytes:
    """A JPEG far over 256 KiB (noise does not compress)."""
    img = Image.frombytes("RGB", (width, height), secrets.token_bytes(width * height * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


async def test_a_large_presigned_upload_is_probed_on_its_first_bytes(
    stack_client: httpx.AsyncClient,
) -> None:
    data = noisy_jpeg(1000, 1000)
    assert len(data) > 256 * 1024
    upload_id = await presigned(stack_client, data)
    resp = await by_ref(stack_client, {"upload": upload_id}, [THUMB], params={"wait": "30"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "succeeded"
    assert resp.json()["source"]["bytes"] == len(data)
    # Cut short after its header: accepted on the head, then the worker's decode refuses it.
    upload_id = await presigned(stack_client, data[: 300 * 1024])
    resp = await by_ref(stack_client, {"upload": upload_id}, [THUMB], params={"wait": "30"})
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "failed"
    assert "truncated" in job["outputs"][0]["error"], job


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"just some text, not an image" * 10, 415),
        (jpeg_bytes()[:200], 422),  # a header cut short
    ],
)
async def test_a_bad_presigned_upload_is_refused_like_a_bad_upload(
    stack_client: httpx.AsyncClient, data: bytes, status: int
) -> None:
    upload_id = await presigned(stack_client, data)
    resp = await by_ref(stack_client, {"upload": upload_id}, [THUMB])
    assert resp.status_code == status, resp.text
    assert resp.json()["extra"]["field"] == "source.upload"


# --- URL sources --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def url_stack(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """An api and a worker of their own (database, vhost) with URL sources on: 127.0.0.1 on
    the allowlist and private addresses allowed (the local server is one)."""
    vhost = f"pixtools_test_urls_{secrets.token_hex(3)}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    rabbit = services_env["PIXTOOLS_RABBITMQ_URL"].rsplit("/", 1)[0] + "/" + vhost
    try:
        with migrated_database(f"pixtools_test_urls_{secrets.token_hex(3)}") as db_url:
            env = services_env | {
                "PIXTOOLS_DATABASE_URL": db_url,
                "PIXTOOLS_RABBITMQ_URL": rabbit,
                "PIXTOOLS_URL_SOURCES": "true",
                "PIXTOOLS_URL_SOURCE_HOSTS": "127.0.0.1,*.example.invalid",
                "PIXTOOLS_URL_SOURCE_ALLOW_PRIVATE": "true",
                "PIXTOOLS_MAX_UPLOAD_BYTES": "200000",
                "PIXTOOLS_OUTPUT_MAX_ATTEMPTS": "1",
            }
            port = free_port()
            stack = Stack(f"http://127.0.0.1:{port}", env, tmp_path_factory.mktemp("url-logs"))
            stack.start("api", "api", "--host", "127.0.0.1", "--port", str(port))
            stack.start("worker", "worker", "--queues", "standard", "--processes", "1")
            try:
                stack.wait_ready()
                yield stack
            finally:
                stack.stop_all()
    finally:
        with contextlib.suppress(Exception):
            rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
async def url_client(url_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url_stack.base_url, timeout=60) as client:
        yield client


async def test_a_url_source_is_fetched_by_the_worker(
    url_client: httpx.AsyncClient, image_server: str
) -> None:
    resp = await by_ref(url_client, {"url": f"{image_server}/hop"}, [THUMB, PNG])
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["source"]["url"] == f"{image_server}/hop" and job["source"]["width"] is None
    done = await wait_job(url_client, job["id"])
    assert done["status"] == "succeeded", done
    assert (done["source"]["width"], done["source"]["height"]) == (800, 600)
    assert done["outputs"][0]["width"] == 320
    # Its source is stored now: another job on it needs no fetch.
    resp = await by_ref(url_client, {"job": job["id"]}, [PNG], params={"wait": "30"})
    assert resp.status_code == 200 and resp.json()["status"] == "succeeded", resp.text


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/missing", "HTTP 404"),
        ("/text", "unsupported image format"),
        ("/big", "larger than 200000 bytes"),
        ("/elsewhere", "not on PIXTOOLS_URL_SOURCE_HOSTS"),  # a redirect off the allowlist
    ],
)
async def test_a_failed_fetch_fails_the_output_saying_why(
    url_client: httpx.AsyncClient, image_server: str, path: str, error: str
) -> None:
    resp = await by_ref(url_client, {"url": image_server + path}, [THUMB])
    assert resp.status_code == 202, resp.text
    done = await wait_job(url_client, resp.json()["id"])
    assert done["status"] == "failed", done
    assert error in done["outputs"][0]["error"], done


async def test_url_sources_are_refused_off_the_allowlist(url_client: httpx.AsyncClient) -> None:
    resp = await by_ref(url_client, {"url": "https://elsewhere.example.com/a.jpg"}, [THUMB])
    assert resp.status_code == 400 and resp.json()["extra"]["field"] == "source.url"
    resp = await by_ref(url_client, {"url": "ftp://127.0.0.1/a.jpg"}, [THUMB])
    assert resp.status_code == 400 and resp.json()["extra"]["field"] == "source.url"


@pytest.mark.parametrize("bad", ["\n", "\t", " ", "\r\n"])
async def test_a_source_url_with_whitespace_is_400(
    url_client: httpx.AsyncClient, image_server: str, bad: str
) -> None:
    # On the allowlist and fetchable but for the character: urlsplit would drop it silently.
    resp = await by_ref(url_client, {"url": f"{image_server}/a{bad}.jpg"}, [THUMB])
    assert resp.status_code == 400 and resp.json()["extra"]["field"] == "source.url", resp.text
    resp = await by_ref(url_client, {"url": f"{image_server}/hop{bad}"}, [THUMB])
    assert resp.status_code == 400 and "control characters" in resp.json()["detail"]
