"""The API's edges against hostile and broken clients, over real sockets to a real server.

Slow headers and bodies, held uploads, clients that vanish mid-upload, spoofed
X-Forwarded-For, trailing newlines in names, malformed webhook URLs, sloppy multipart,
admin routes without a key. Each server here is a real ``pixtools dev`` process (uvicorn,
embedded mode): the deadlines live in the server and its protocol, not in a test client.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dev import BOUNDARY, multipart, start_dev
from tests.support.images import jpeg_bytes
from tests.support.processes import Stack

SPEC = json.dumps({"outputs": [{"name": "small", "steps": [{"op": "resize", "width": 32}]}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_dev(
        tmp_path_factory.mktemp("edge"),
        header_timeout="2",
        body_timeout="6",
        body_idle_timeout="5",
        upload_concurrency="2",
        upload_wait_seconds="2",
        rate_limit_per_minute="0",
        webhook_secret="s3cret",
        cors_origin="https://ui.example",
    )
    try:
        yield stack
    finally:
        stack.stop_all()


def connect(stack: Stack) -> socket.socket:
    port = int(stack.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(30)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def upload_head(length: int) -> bytes:
    return (
        "POST /api/v1/jobs HTTP/1.1\r\nHost: t\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def post_form(stack: Stack, body: bytes) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/api/v1/jobs",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=30,
    )


# --- #14.9: slow headers, slow bodies, held uploads, disconnects ------------------------------


def test_slow_headers_are_cut_off(server: Stack) -> None:
    """One header byte a second: the server closes the connection (uvicorn alone never did)."""
    sock = connect(server)
    head = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200
    closed = False
    give_up = time.monotonic() + 60  # a bound on the test, far beyond the 2 s deadline
    for byte in head:  # 100+ s of trickle if nobody stops it
        if time.monotonic() > give_up:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        sock.settimeout(0.5)
        try:
            if sock.recv(1024) == b"":
                closed = True
                break
        except TimeoutError:
            continue
    sock.close()
    assert closed, "a client trickling its headers kept the connection open"


def test_slow_body_gets_408(server: Stack) -> None:
    body = multipart(("spec", None, SPEC.encode()), ("file", "a.jpg", jpeg_bytes(64, 48)))
    sock = connect(server)
    sock.sendall(upload_head(len(body)))
    answer = b""
    give_up = time.monotonic() + 60  # a bound on the test, far beyond the 6 s deadline
    for byte in body:  # thousands of seconds at this pace
        if time.monotonic() > give_up:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        sock.settimeout(1.0)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        answer += chunk
        if not chunk or b"\r\n\r\n" in answer:
            break
    answer += read_until_closed(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    payload = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert payload["status_code"] == 408 and "in time" in payload["detail"]


def test_a_stalled_body_gets_408(server: Stack) -> None:
    body = multipart(("spec", None, SPEC.encode()), ("file", "a.jpg", jpeg_bytes(64, 48)))
    sock = connect(server)
    sock.sendall(upload_head(len(body)) + body[:100])  # then nothing more
    answer = read_until_closed(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_uploads_beyond_the_cap_get_503_with_retry_after(server: Stack) -> None:
    body = multipart(("spec", None, SPEC.encode()), ("file", "a.jpg", jpeg_bytes(640, 480)))
    held = []
    try:
        for _ in range(2):  # upload_concurrency=2: both slots taken by slow uploads
            sock = connect(server)
            sock.sendall(upload_head(len(body)) + body[:1000])
            held.append(sock)
        # Both are inside the app once their handlers read the first chunk.
        deadline = time.monotonic() + 20
        refused = None
        while time.monotonic() < deadline:
            resp = post_form(server, body)
            if resp.status_code == 503:
                refused = resp
                break
            time.sleep(0.2)
        assert refused is not None, "a third concurrent upload was not refused"
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["status_code"] == 503
        assert "uploads in progress" in refused.json()["detail"]
        assert refused.headers["x-content-type-options"] == "nosniff"
        # A submission arriving in a burst waits for a slot instead of failing: it gets in
        # as soon as one of the held uploads finishes (well within its 2 s wait).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(post_form, server, body)
            time.sleep(0.3)  # let it start waiting (not an assertion on time)
            held[0].sendall(body[1000:])
            assert read_until_closed_or_response(held[0]).startswith(b"HTTP/1.1 202")
            assert waiting.result().status_code == 202
        held[1].sendall(body[1000:])
        assert read_until_closed_or_response(held[1]).startswith(b"HTTP/1.1 202")
    finally:
        for sock in held:
            sock.close()
    # The slots are free again.
    assert post_form(server, body).status_code == 202


def read_until_closed_or_response(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(30)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_clients_vanishing_mid_upload_are_499_not_500(server: Stack) -> None:
    body = multipart(("spec", None, SPEC.encode()), ("file", "a.jpg", jpeg_bytes(640, 480)))
    for _ in range(30):
        sock = connect(server)
        sock.sendall(upload_head(len(body)) + body[: len(body) // 2])
        sock.close()

    def counts() -> dict[str, float]:
        text = httpx.get(server.base_url + "/metrics").text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("pixtools_http_requests_total{") and 'method="POST"' in line:
                status = re.search(r'status="(\d+)"', line)
                assert status is not None
                found[status[1]] = found.get(status[1], 0) + float(line.rsplit(" ", 1)[1])
        return found

    deadline = time.monotonic() + 30
    while counts().get("499", 0) < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert counts().get("499", 0) >= 30, counts()
    assert "500" not in counts()
    log = (server.log_dir / "api.log").read_text()
    assert "client disconnected" in log
    assert '"level": "ERROR"' not in log and "ERROR" not in log, log[-3000:]


# --- #14.10: X-Forwarded-For only from trusted proxies ----------------------------------------


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(
    tmp_path: Path,
) -> None:
    stack = start_dev(tmp_path, rate_limit_per_minute="5", trusted_proxies="192.0.2.0/24")
    try:
        if 60 - time.time() % 60 < 5:  # one-minute windows: do not straddle a boundary
            time.sleep(60 - time.time() % 60 + 0.1)
        codes = [
            httpx.get(
                stack.base_url + "/api/v1/jobs", headers={"X-Forwarded-For": f"203.0.113.{i}"}
            ).status_code
            for i in range(8)
        ]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3, codes
    finally:
        stack.stop_all()


def test_behind_a_trusted_proxy_the_client_is_the_last_untrusted_forwarded_address(
    tmp_path: Path,
) -> None:
    stack = start_dev(tmp_path, rate_limit_per_minute="3", trusted_proxies="127.0.0.1")
    try:
        if 60 - time.time() % 60 < 5:
            time.sleep(60 - time.time() % 60 + 0.1)

        def status(forwarded: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            return httpx.get(stack.base_url + "/api/v1/jobs", headers=headers).status_code

        assert [status("198.51.100.1") for _ in range(4)] == [200, 200, 200, 429]
        # What the client wrote left of the proxy's entry changes nothing...
        assert status("203.0.113.5, 198.51.100.1") == 429
        # ...while another real client (the proxy's last entry) has its own budget.
        assert status("198.51.100.1, 198.51.100.2") == 200
    finally:
        stack.stop_all()


# --- #14.11: names end at the end --------------------------------------------------------------


def spec_with(**changes: object) -> str:
    spec: dict[str, object] = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}
    spec.update(changes)
    return json.dumps(spec)


def submit(stack: Stack, spec: str, filename: str = "a.jpg") -> httpx.Response:
    return post_form(
        stack, multipart(("spec", None, spec.encode()), ("file", filename, jpeg_bytes(64, 48)))
    )


def test_trailing_newlines_are_refused(server: Stack) -> None:
    resp = submit(server, spec_with(outputs=[{"name": "a\n", "steps": [{"op": "grayscale"}]}]))
    assert resp.status_code == 400 and resp.json()["extra"]["field"] == "outputs[0].name"
    rotate = {"op": "rotate", "degrees": 30, "background": "#ffffff\n"}
    resp = submit(server, spec_with(outputs=[{"name": "a", "steps": [rotate]}]))
    assert resp.status_code == 400, resp.text
    assert "background" in resp.json()["detail"]
    resp = httpx.get(server.base_url + "/api/v1/jobs?status=succeeded%0a")
    assert resp.status_code == 400, resp.text
    assert httpx.get(server.base_url + "/api/v1/jobs?status=succeeded").status_code == 200


# --- #14.12: malformed webhook URLs ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:99999/",
        "http://[::1/",
        "http://example.com:abc/",
        "https://example.com:-1/",
        "http://exa\x00mple.com/",
    ],
)
def test_malformed_webhook_urls_are_400(server: Stack, url: str) -> None:
    resp = submit(server, spec_with(webhook_url=url))
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "webhook_url"


# --- #14.13: one file part and one spec part, strictly ----------------------------------------


def test_two_file_parts_are_refused(server: Stack) -> None:
    image = jpeg_bytes(64, 48)
    half = len(image) // 2
    resp = post_form(
        server,
        multipart(
            ("spec", None, SPEC.encode()),
            ("file", "a.jpg", image[:half]),
            ("file", "b", image[half:]),
        ),
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "file"


def test_a_spec_split_over_two_parts_is_refused(server: Stack) -> None:
    half = len(SPEC) // 2
    resp = post_form(
        server,
        multipart(
            ("spec", None, SPEC[:half].encode()),
            ("spec", None, SPEC[half:].encode()),
            ("file", "a.jpg", jpeg_bytes(64, 48)),
        ),
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "spec"


def test_a_spec_sent_as_a_file_part_is_refused(server: Stack) -> None:
    resp = post_form(
        server,
        multipart(("spec", "spec.json", SPEC.encode()), ("file", "a.jpg", jpeg_bytes(64, 48))),
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["extra"]["field"] == "spec"


def test_a_file_named_only_with_rfc5987_filename_star_is_accepted(server: Stack) -> None:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{SPEC}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        "filename*=UTF-8''na%C3%AFve%20photo.jpg\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    body += jpeg_bytes(64, 48) + f"\r\n--{BOUNDARY}--\r\n".encode()
    resp = post_form(server, body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["source"]["filename"] == "naïve photo.jpg"


# --- #14.14: authentication before validation --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/admin/dead-letters", None),
        ("GET", "/api/v1/admin/dead-letters?queue=bogus&limit=0", None),
        ("DELETE", "/api/v1/admin/dead-letters?queue=nope", None),
        ("POST", "/api/v1/admin/dead-letters/replay", b"{not json"),
        ("POST", "/api/v1/admin/dead-letters/replay", b'{"queue": "x", "bad": 1}'),
    ],
)
def test_admin_routes_answer_401_before_validating(
    server: Stack, method: str, path: str, body: bytes | None
) -> None:
    resp = httpx.request(
        method,
        server.base_url + path,
        content=body,
        headers={"Content-Type": "application/json"} if body else None,
    )
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["status_code"] == 401


def test_a_submission_waiting_for_its_job_holds_no_upload_slot(tmp_path: Path) -> None:
    """``POST /api/v1/jobs?wait=N`` kept its upload slot while it waited for the job: as many
    clients submitting-and-waiting as ``PIXTOOLS_UPLOAD_CONCURRENCY`` locked every other
    upload out (503) on an idle server. The slot is given back once the job is stored."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers: the job waits
    port = silent.getsockname()[1]
    stack = start_dev(
        tmp_path,
        upload_concurrency="1",
        upload_wait_seconds="1",
        rate_limit_per_minute="0",
        url_sources="true",
        url_source_hosts="127.0.0.1",
        url_source_allow_private="true",
        url_source_timeout="60",
    )
    try:
        spec = {"outputs": [{"name": "small", "steps": [{"op": "resize", "width": 32}]}]}
        waiting_body = {"source": {"url": f"http://127.0.0.1:{port}/a.jpg"}, **spec}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiter = pool.submit(
                httpx.post,
                stack.base_url + "/api/v1/jobs?wait=60",
                json=waiting_body,
                timeout=90,
            )
            # Its job is stored (listed), so the request is now waiting for the job to end.
            deadline = time.monotonic() + 30
            while not httpx.get(stack.base_url + "/api/v1/jobs").json()["items"]:
                assert time.monotonic() < deadline, "the waiting submission was never stored"
                time.sleep(0.1)
            body = multipart(("spec", None, SPEC.encode()), ("file", "a.jpg", jpeg_bytes(64, 48)))
            other = post_form(stack, body)
            assert other.status_code == 202, other.text  # was 503: the waiter held the slot
            assert not waiter.done()  # it was waiting all along
            silent.close()  # the fetch fails: the job ends, and so does the wait
            answer = waiter.result()
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "failed"
    finally:
        silent.close()
        stack.stop_all()
