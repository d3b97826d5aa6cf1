"""API keys, per-key job visibility, and the dead-letter admin routes, over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import dramatiq
import httpx
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from tests.support.images import jpeg_bytes
from tests.support.keys import make_key
from tests.support.processes import ROOT, Stack, wait_job

pytestmark = pytest.mark.services


def enqueue_poison(stack: Stack) -> dramatiq.Message[object]:
    """A poison message: finalize_job without its argument fails every time; no retries."""
    broker = RabbitmqBroker(url=stack.env["PIXTOOLS_RABBITMQ_URL"], confirm_delivery=True)
    poison: dramatiq.Message[object] = dramatiq.Message(
        queue_name="standard",
        actor_name="finalize_job",
        args=(),
        kwargs={},
        options={"max_retries": 0},
    )
    try:
        broker.enqueue(poison)
    finally:
        broker.close()
    return poison


async def test_a_key_sees_only_its_own_jobs(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    alice = {"Authorization": f"Bearer {make_key(services_stack, 'alice')}"}
    bob = {"X-API-Key": make_key(services_stack, "bob")}
    spec = json.dumps({"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]})
    r = await stack_client.post(
        "/api/v1/jobs",
        files={"file": ("a.jpg", jpeg_bytes(64, 64))},
        data={"spec": spec},
        headers=alice,
    )
    assert r.status_code == 202
    jid = r.json()["id"]
    await wait_job(stack_client, jid, headers=alice)
    assert (await stack_client.get(f"/api/v1/jobs/{jid}", headers=bob)).status_code == 404
    assert (await stack_client.get(f"/api/v1/jobs/{jid}")).status_code == 404  # anonymous
    assert (await stack_client.get(f"/api/v1/jobs/{jid}/outputs/a", headers=bob)).status_code == 404
    assert jid not in [
        j["id"] for j in (await stack_client.get("/api/v1/jobs", headers=bob)).json()["items"]
    ]
    assert [
        j["id"] for j in (await stack_client.get("/api/v1/jobs", headers=alice)).json()["items"]
    ] == [jid]
    bad = await stack_client.get("/api/v1/jobs", headers={"Authorization": "Bearer pxt_nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"


async def test_revoked_key_is_refused(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    secret = make_key(services_stack, "temp")
    key_id = secret.split("_")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await stack_client.get("/api/v1/jobs", headers=headers)).status_code == 200
    env = {**os.environ, **services_stack.env}
    subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "keys", "revoke", key_id],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    listing = subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "keys", "list"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert f"{key_id}\ttemp\tuser\trevoked" in listing.stdout
    assert secret not in listing.stdout  # never shown again
    assert (await stack_client.get("/api/v1/jobs", headers=headers)).status_code == 401


async def test_dead_letters_list_replay_purge(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    admin = {"Authorization": f"Bearer {make_key(services_stack, 'ops', admin=True)}"}
    user = {"Authorization": f"Bearer {make_key(services_stack, 'user')}"}
    assert (await stack_client.get("/api/v1/admin/dead-letters?queue=standard")).status_code == 401
    assert (
        await stack_client.get("/api/v1/admin/dead-letters?queue=standard", headers=user)
    ).status_code == 403
    assert (
        await stack_client.get("/api/v1/admin/dead-letters?queue=bogus", headers=admin)
    ).status_code == 400

    poison = enqueue_poison(services_stack)

    async def dead() -> list[dict[str, object]]:
        r = await stack_client.get(
            "/api/v1/admin/dead-letters?queue=standard&limit=50", headers=admin
        )
        assert r.status_code == 200
        return [m for m in r.json()["items"] if m["message_id"] == poison.message_id]

    for _ in range(100):
        if found := await dead():
            break
        await asyncio.sleep(0.1)
    assert found, "the poison message never reached the dead-letter queue"
    assert found[0]["actor"] == "finalize_job" and "TypeError" in str(found[0]["error"])
    assert "Traceback" in str(found[0]["traceback"])
    assert await dead() == found  # browsing does not consume

    r = await stack_client.post(
        "/api/v1/admin/dead-letters/replay",
        json={"queue": "standard", "message_ids": [poison.message_id]},
        headers=admin,
    )
    assert r.json() == {"queue": "standard", "replayed": 1}
    # Replayed, it ran again (and, still poison, failed again into the dead-letter queue).
    for _ in range(100):
        if again := await dead():
            break
        await asyncio.sleep(0.1)
    assert again and again[0]["enqueued_at"] == found[0]["enqueued_at"]

    assert (
        await stack_client.post(
            "/api/v1/admin/dead-letters/replay", json={"queue": "standard"}, headers=admin
        )
    ).status_code == 400
    # A repeated key is refused, not "the last one wins" (here: replay the whole queue).
    repeated = await stack_client.post(
        "/api/v1/admin/dead-letters/replay",
        content=b'{"queue": "standard", "all": false, "all": true}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert repeated.status_code == 400, repeated.text
    assert repeated.json()["detail"] == "body: duplicate key 'all' in a JSON object"
    # Both "all" and ids: which was meant? Refused, not "replay everything".
    both = await stack_client.post(
        "/api/v1/admin/dead-letters/replay",
        json={"queue": "standard", "all": True, "message_ids": ["no-such-id"]},
        headers=admin,
    )
    assert both.status_code == 400, both.text
    assert both.json()["extra"] == {"field": "message_ids"}
    # A repeated query parameter is refused too, not "the last one wins" (here: purge).
    twice = await stack_client.delete(
        "/api/v1/admin/dead-letters?queue=ml&queue=standard", headers=admin
    )
    assert twice.status_code == 400, twice.text
    assert twice.json()["detail"] == "queue: given more than once (give it once)"
    assert await dead() == again  # nothing was replayed or purged
    purged = await stack_client.delete("/api/v1/admin/dead-letters?queue=standard", headers=admin)
    assert purged.status_code == 200 and purged.json()["purged"] >= 1
    assert await dead() == []


def test_dlq_cli_lists_replays_and_purges(services_stack: Stack) -> None:
    poison = enqueue_poison(services_stack)
    env = {**os.environ, **services_stack.env}

    def dlq(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pixtools.cli", "dlq", *args, "--queue", "standard"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    listed: list[dict[str, object]] = []
    for _ in range(100):
        listed = [json.loads(line) for line in dlq("list").splitlines() if line.strip()]
        if any(m["message_id"] == poison.message_id for m in listed):
            break
        time.sleep(0.1)
    assert any(
        m["message_id"] == poison.message_id and m["actor"] == "finalize_job" for m in listed
    )
    assert json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pixtools.cli",
                "dlq",
                "replay",
                "--queue",
                "standard",
                poison.message_id,
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=True,
        ).stdout
    ) == {"replayed": 1}
    for _ in range(100):  # still poison: back in the dead-letter queue
        if poison.message_id in dlq("list"):
            break
        time.sleep(0.1)
    assert json.loads(dlq("purge"))["purged"] >= 1
    assert poison.message_id not in dlq("list")
