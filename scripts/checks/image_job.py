"""One job through PixTools over HTTP, for scripts/checks/image.sh (the images' smoke test).

Usage: python scripts/checks/image_job.py BASE_URL

Submits the astronaut photograph (one face) with two outputs, a resize to 256 px wide WebP
(standard queue) and ``blur_faces`` to PNG (ML queue), waits for the job, downloads both outputs
and checks them: the WebP is a WebP 256 px wide, the blurred PNG differs from the photograph
inside the face and nowhere outside the blurred region. Prints the figures (timings, sizes) and
exits 1 naming what failed. Runs on the host's virtual environment (httpx, Pillow, the sample
photo from scripts/install-ml.sh --dev), not inside the images.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from pixtools.ml.faces import blur_region

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository
from tests.support import samples

TERMINAL = {"succeeded", "partial", "failed", "canceled"}


def fail(message: str) -> None:
    """Say what failed and exit 1."""
    print(f"image job: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(base_url: str) -> None:
    """Run the job and check what comes back."""
    photo = samples.astronaut().convert("RGB")
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    spec = {
        "outputs": [
            {
                "name": "thumb",
                "steps": [
                    {"op": "resize", "width": 256},
                    {"op": "convert", "format": "webp", "quality": 80},
                ],
            },
            {
                "name": "private",
                "steps": [{"op": "blur_faces", "shape": "box"}, {"op": "convert", "format": "png"}],
            },
        ]
    }
    with httpx.Client(base_url=base_url, timeout=30) as client:
        health = client.get("/health")
        pillow = health.json().get("pillow", {}) if health.status_code == 200 else {}
        print(f"api /health: {health.status_code}, pillow {json.dumps(pillow, sort_keys=True)}")
        if health.status_code != 200:
            fail(f"/health answered {health.status_code}: {health.text[:500]}")
        if not pillow.get("is_simd"):
            fail("the api image does not run pillow-simd")

        started = time.monotonic()
        r = client.post(
            "/api/v1/jobs",
            files={"file": ("astronaut.png", buf.getvalue(), "image/png")},
            data={"spec": json.dumps(spec)},
        )
        submitted = time.monotonic()
        if r.status_code != 202:
            fail(f"submit answered {r.status_code}: {r.text[:500]}")
        job_id = r.json()["id"]
        job: dict[str, Any] = {}
        deadline = started + 300
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}", params={"wait": "10"}).json()
            if job["status"] in TERMINAL:
                break
        done = time.monotonic()
        if job.get("status") != "succeeded":
            fail(f"job {job_id} ended {job.get('status')!r}: {json.dumps(job)[:2000]}")

        outs = {o["name"]: o for o in job["outputs"]}
        thumb, private = outs["thumb"], outs["private"]
        if (thumb["queue"], private["queue"]) != ("standard", "ml"):
            fail(f"queues were {thumb['queue']} and {private['queue']}, not standard and ml")
        webp = Image.open(io.BytesIO(client.get(thumb["url"], follow_redirects=True).content))
        if webp.format != "WEBP" or webp.width != 256:
            fail(f"thumb is {webp.format} {webp.size}, not a WebP 256 px wide")
        blurred = Image.open(io.BytesIO(client.get(private["url"], follow_redirects=True).content))
        if blurred.format != "PNG" or blurred.size != photo.size:
            fail(f"private is {blurred.format} {blurred.size}, not a PNG of {photo.size}")
        face = samples.ASTRONAUT_FACE_REGION
        inside, _ = samples.pixel_change(photo, blurred.convert("RGB"), face)
        _, outside = samples.pixel_change(
            photo, blurred.convert("RGB"), blur_region(face, photo.size)
        )
        if inside <= 5:
            fail(f"the face is not blurred (mean change {inside:.1f} inside the face box)")
        if outside != 0:
            fail(f"pixels outside the face's blur region changed (by up to {outside})")

    print(
        f"job {job_id}: submit {1000 * (submitted - started):.0f} ms, "
        f"submit to succeeded {done - started:.2f} s; "
        f"thumb {thumb['width']}x{thumb['height']} WebP {thumb['bytes']} B (attempts "
        f"{thumb['attempts']}); private PNG {private['bytes']} B, face changed by {inside:.1f} "
        f"on average, none outside the face's blur region (attempts "
        f"{private['attempts']})"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    main(sys.argv[1])
