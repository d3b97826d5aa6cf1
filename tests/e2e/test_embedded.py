"""End to end over HTTP in embedded mode: `pixtools dev` as a real process, no servers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
from PIL import Image

from tests.support.images import jpeg_bytes
from tests.support.processes import ROOT, Stack, wait_job
from tests.support.slow_jobs import SLOW_OUTPUT, noisy_jpeg


async def test_dev_prints_the_url_and_runs_a_job(
    client: httpx.AsyncClient, embedded: Stack
) -> None:
    assert embedded.base_url in (embedded.log_dir / "dev.log").read_text()
    spec = {
        "outputs": [
            {
                "name": "thumb",
                "steps": [
                    {"op": "resize", "width": 160},
                    {"op": "convert", "format": "webp", "quality": 75},
                ],
            },
            {"name": "gray", "steps": [{"op": "grayscale"}]},
        ],
        "metadata": True,
    }
    resp = await client.post(
        "/api/v1/jobs",
        files={"file": ("cat.jpg", jpeg_bytes(640, 480))},
        data={"spec": json.dumps(spec)},
    )
    assert resp.status_code == 202, resp.text
    done = await wait_job(client, resp.json()["id"])
    assert done["status"] == "succeeded"
    outs = {o["name"]: o for o in done["outputs"]}
    # The local store serves the bytes itself.
    r = await client.get(outs["thumb"]["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(r.content)).size == (160, 120)
    gray = await client.get(outs["gray"]["url"])
    assert Image.open(io.BytesIO(gray.content)).mode == "L" and outs["gray"]["format"] == "jpeg"
    archive = await client.get(done["archive"]["url"])
    assert sorted(zipfile.ZipFile(io.BytesIO(archive.content)).namelist()) == [
        "gray.jpg",
        "thumb.webp",
    ]
    assert done["metadata"]["format"] == "jpeg"
    health = (await client.get("/health")).json()
    assert (
        health["mode"] == "embedded"
        and health["object_store"] == "local"
        and health["status"] == "ok"
    )
    stored = Path(embedded.log_dir) / "objects" / "processed" / done["id"]
    assert sorted(p.name for p in stored.iterdir()) == [
        "gray.jpg",
        "gray.preview.webp",
        "thumb.preview.webp",
        "thumb.webp",
    ]


async def test_embedded_refuses_bad_input_like_services_mode(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/jobs",
        files={"file": ("x.txt", b"hello world, not an image" * 4)},
        data={"spec": json.dumps({"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]})},
    )
    assert r.status_code == 415
    r = await client.post(
        "/api/v1/jobs",
        files={"file": ("a.jpg", jpeg_bytes())},
        data={"spec": '{"outputs": [{"name": "a", "steps": [{"op": "resize"}]}]}'},
    )
    assert r.status_code == 400 and r.json()["extra"]["field"] == "outputs[0].steps[0].width"


def test_process_runs_a_spec_without_any_service(tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(jpeg_bytes(800, 600))
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "outputs": [
                    {
                        "name": "small",
                        "steps": [
                            {"op": "resize", "width": 200},
                            {"op": "convert", "format": "png"},
                        ],
                    }
                ]
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixtools.cli",
            "process",
            str(src),
            "--spec",
            str(spec),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["outputs"]["small"]["status"] == "succeeded"
    assert Image.open(tmp_path / "out" / "small.png").size == (200, 150)


async def test_webhook_is_delivered_signed(client: httpx.AsyncClient, embedded: Stack) -> None:
    from pixtools.webhooks.signing import verify
    from tests.support.webhooks import Receiver

    receiver = Receiver()
    import threading

    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    try:
        spec = {
            "outputs": [{"name": "a", "steps": [{"op": "flip", "direction": "horizontal"}]}],
            "webhook_url": receiver.url,
        }
        resp = await client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(50, 40))},
            data={"spec": json.dumps(spec)},
        )
        assert resp.status_code == 202, resp.text
        jid = resp.json()["id"]
        await wait_job(client, jid)
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.05)
        headers, body = receiver.requests[0]
        secret = (embedded.log_dir / "webhook-secret").read_text().strip()
        assert verify(secret, body, headers["pixtools-signature"])
        assert headers["pixtools-event"] == "job.succeeded"
        assert json.loads(body)["status"] == "succeeded"
        for _ in range(100):
            attempts = (await client.get(f"/api/v1/jobs/{jid}/webhook-attempts")).json()
            if attempts:
                break
            await asyncio.sleep(0.05)
        assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 200)]
        job = (await client.get(f"/api/v1/jobs/{jid}")).json()
        assert job["webhook"] == {"url": receiver.url, "status": "delivered", "attempts": 1}
    finally:
        receiver.server.shutdown()


async def test_long_poll_in_embedded_mode(client: httpx.AsyncClient) -> None:
    spec = {"outputs": [{"name": "a", "steps": [{"op": "blur", "sigma": 2}]}]}
    job = (
        await client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(300, 200))},
            data={"spec": json.dumps(spec)},
        )
    ).json()
    r = await client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 30})
    assert r.json()["status"] == "succeeded"


async def test_a_trace_runs_from_the_request_to_the_worker(
    client: httpx.AsyncClient, embedded: Stack
) -> None:
    import re

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    # Two outputs: an archive to build, so finalize_job runs too.
    spec = {
        "outputs": [
            {"name": "traced", "steps": [{"op": "grayscale"}]},
            {"name": "also", "steps": [{"op": "blur", "sigma": 1}]},
        ]
    }
    r = await client.post(
        "/api/v1/jobs",
        files={"file": ("a.jpg", jpeg_bytes(60, 40))},
        data={"spec": json.dumps(spec)},
        headers=headers,
    )
    await wait_job(client, r.json()["id"])
    pattern = re.compile(r'"name": "([^"]+)",\s*"context": \{\s*"trace_id": "0x([0-9a-f]{32})"')
    names: set[str] = set()
    for _ in range(50):
        log = (embedded.log_dir / "dev.log").read_text(errors="replace")
        names = {name for name, tid in pattern.findall(log) if tid == trace_id}
        if {"process_output", "finalize_job"} <= names:
            break
        await asyncio.sleep(0.1)
    assert {"POST /api/v1/jobs", "process_output", "finalize_job"} <= names, names


async def test_progress_long_poll_in_embedded_mode(client: httpx.AsyncClient) -> None:
    """`?wait=&since=` answers when an output moves: in-process signals, no NOTIFY."""
    spec = {"outputs": [{"name": "quick", "steps": [{"op": "grayscale"}]}, SLOW_OUTPUT]}
    job = (
        await client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", noisy_jpeg(2400, 1600))},
            data={"spec": json.dumps(spec)},
        )
    ).json()
    now = await client.get(f"/api/v1/jobs/{job['id']}")
    state, seen = now.headers["pixtools-job-state"], [now.json()]
    while seen[-1]["status"] not in {"succeeded", "partial", "failed", "canceled"}:
        # 60 s asked, 30 s of client timeout: only a move (or the end) can answer in time.
        r = await client.get(f"/api/v1/jobs/{job['id']}", params={"wait": 60, "since": state})
        assert r.headers["pixtools-job-state"] != state, r.json()
        state = r.headers["pixtools-job-state"]
        seen.append(r.json())
    assert seen[-1]["status"] == "succeeded"
    # The slow output runs for seconds after the quick one has started: the polls saw the
    # job on its way, not only at its end.
    assert any(j["status"] == "running" for j in seen[1:]), seen
