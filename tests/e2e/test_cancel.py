"""POST /api/v1/jobs/{id}/cancel over HTTP, with `pixtools api` and a `pixtools worker` on the
real services (a database and a vhost of this module: its webhook receiver is on loopback)."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.images import jpeg_bytes
from tests.support.processes import Stack, free_port, wait_job
from tests.support.servers import RABBIT_HOST, rabbitmqctl
from tests.support.slow_jobs import SLOW_OUTPUT, noisy_jpeg, submit, until_running
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def cancel_stack(
    services_env: dict[str, str],
    private_pg_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    vhost = f"pixtools_cancel_{secrets.token_hex(3)}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    env = {
        **services_env,
        "PIXTOOLS_DATABASE_URL": private_pg_url,
        "PIXTOOLS_RABBITMQ_URL": f"amqp://guest:guest@{RABBIT_HOST}/{vhost}",
        "PIXTOOLS_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", env, tmp_path_factory.mktemp("cancel-logs"))
    stack.start("api", "api", "--host", "127.0.0.1", "--port", str(port))
    # One thread: of two outputs, one runs and the other waits its turn.
    stack.start("worker", "worker", "--queues", "standard", "--processes", "1", "--threads", "1")
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop_all()
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
async def client(cancel_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cancel_stack.base_url, timeout=30) as c:
        yield c


async def test_cancel_stops_pending_work_drops_running_work_and_says_so(
    client: httpx.AsyncClient, cancel_stack: Stack
) -> None:
    receiver = Receiver()
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    try:
        spec = {
            "outputs": [SLOW_OUTPUT, {**SLOW_OUTPUT, "name": "second"}],
            "webhook_url": receiver.url,
        }
        jid = await submit(client, spec, noisy_jpeg(2400, 1600))
        await until_running(client, jid)

        resp = await client.post(f"/api/v1/jobs/{jid}/cancel")
        assert resp.status_code == 200, resp.text
        job = resp.json()
        assert job["status"] == "canceled"
        assert job["finished_at"] is not None
        assert {o["name"]: o["status"] for o in job["outputs"]} == {
            "slow": "canceled",
            "second": "canceled",
        }

        for _ in range(1200):  # the webhook's message queues behind the running render
            if receiver.requests:
                break
            await asyncio.sleep(0.1)
        headers, body = receiver.requests[0]
        assert headers["pixtools-event"] == "job.canceled"
        assert json.loads(body)["status"] == "canceled"

        # The running output's worker finishes its render, finds itself fenced off and drops
        # the result; the pending one is skipped when its message comes.
        for _ in range(600):
            log = cancel_stack.logs("worker")
            if "result dropped" in log and "finished or canceled; skipping" in log:
                break
            await asyncio.sleep(0.1)
        assert "result dropped" in log and "finished or canceled; skipping" in log, log
        job = (await client.get(f"/api/v1/jobs/{jid}")).json()
        assert job["status"] == "canceled"
        outs = {o["name"]: o for o in job["outputs"]}
        assert outs["slow"]["status"] == outs["second"]["status"] == "canceled"
        assert outs["second"]["attempts"] == 0  # never processed
        assert outs["slow"]["url"] is None

        again = await client.post(f"/api/v1/jobs/{jid}/cancel")
        assert again.status_code == 409
        assert again.json()["detail"].startswith("job is canceled")
        assert (await client.post(f"/api/v1/jobs/{jid}/retry")).status_code == 409
    finally:
        receiver.server.shutdown()


async def test_cancel_of_a_finished_or_unknown_job(client: httpx.AsyncClient) -> None:
    spec = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}
    jid = await submit(client, spec, jpeg_bytes(64, 48))
    assert (await wait_job(client, jid))["status"] == "succeeded"
    resp = await client.post(f"/api/v1/jobs/{jid}/cancel")
    assert resp.status_code == 409
    assert resp.json()["extra"] == {"status": "succeeded"}
    assert (await client.get(f"/api/v1/jobs/{jid}")).json()["status"] == "succeeded"
    missing = await client.post("/api/v1/jobs/00000000-0000-0000-0000-000000000000/cancel")
    assert missing.status_code == 404
