"""The HTTP surface as a client sees it, against a real ``pixtools dev`` process.

Every response carries the security headers and every error is the one JSON body (#13.3);
each status a route answers is in its OpenAPI entry, downloads are declared binary, OPTIONS
lists every method (#14.18, #13.5); /docs and /redoc load only from this origin (#13.5);
duplicate keys in a spec are refused.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixtools.api.middleware import SECURITY_HEADERS
from tests.support.dev import BOUNDARY, multipart, start_dev
from tests.support.images import jpeg_bytes, png_with_corrupt_pixels


@dataclass
class Server:
    url: str
    data: Path
    user: dict[str, str]
    admin: dict[str, str]
    stop: Any


def make_key(data: Path, name: str, *, admin: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    env["PIXTOOLS_DATA_DIR"] = str(data)
    args = [sys.executable, "-m", "pixtools.cli", "keys", "create", name]
    proc = subprocess.run(
        args + (["--admin"] if admin else []),
        env=env,
        capture_output=True,
        text=True,
        cwd=data,
        timeout=60,
        check=True,
    )
    found = re.search(r"secret \(shown once, store it now\): (\S+)", proc.stdout)
    assert found, proc.stdout
    return {"Authorization": f"Bearer {found[1]}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("surface")
    stack = start_dev(
        data,
        auth="required",
        cors_origin="https://ui.example",
        max_upload_bytes="100000",
        rate_limit_per_minute="0",
    )
    try:
        yield Server(
            stack.base_url,
            data,
            make_key(data, "user"),
            make_key(data, "ops", admin=True),
            stack.stop_all,
        )
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def openapi(server: Server) -> dict[str, Any]:
    schema: dict[str, Any] = httpx.get(server.url + "/openapi.json").json()
    return schema


def form(spec: str, image: bytes, filename: str = "a.jpg") -> dict[str, Any]:
    return {
        "content": multipart(("spec", None, spec.encode()), ("file", filename, image)),
        "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    }


SPEC = json.dumps({"outputs": [{"name": "thumb", "steps": [{"op": "resize", "width": 16}]}]})


@pytest.fixture(scope="module")
def finished_job(server: Server) -> str:
    kw = form(SPEC.replace("resize", "resize"), jpeg_bytes(64, 48))
    kw["headers"].update(server.user)
    resp = httpx.post(server.url + "/api/v1/jobs", timeout=30, **kw)
    assert resp.status_code == 202, resp.text
    job_id = str(resp.json()["id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(
            f"{server.url}/api/v1/jobs/{job_id}?wait=5", headers=server.user, timeout=30
        ).json()
        if job["status"] == "succeeded":
            return job_id
        time.sleep(0.1)
    raise AssertionError(f"job did not finish: {job}")


def sweep(server: Server, finished_job: str) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(method, path, OpenAPI path or None, request kwargs): good, bad and odd requests."""
    job = f"/api/v1/jobs/{finished_job}"
    other = f"/api/v1/jobs/{uuid.uuid4()}"
    user, admin = server.user, server.admin
    tiny = jpeg_bytes(32, 24)
    big = os.urandom(150_000)
    t_jobs, t_job = "/api/v1/jobs", "/api/v1/jobs/{job_id}"
    t_out, t_zip = t_job + "/outputs/{name}", t_job + "/archive"
    t_dl = "/api/v1/admin/dead-letters"
    return [
        ("GET", "/", None, {}),
        ("GET", "/app.js", None, {}),
        ("GET", "/no-such-file.txt", None, {}),
        ("GET", "/docs", None, {}),
        ("GET", "/redoc", None, {}),
        ("GET", "/docs-assets/swagger-ui.css", None, {}),
        ("GET", "/docs-assets/nope.js", None, {}),
        ("GET", "/openapi.json", None, {}),
        ("GET", "/livez", "/livez", {}),
        ("GET", "/readyz", "/readyz", {}),
        ("GET", "/health", "/health", {}),
        ("GET", "/metrics", "/metrics", {}),
        ("GET", "/api/v1/nope", None, {}),
        ("PUT", t_jobs, None, {}),
        ("DELETE", job, None, {}),
        ("PATCH", "/livez", None, {}),
        ("OPTIONS", t_jobs, None, {}),
        ("OPTIONS", t_dl, None, {}),
        (
            "OPTIONS",
            t_jobs,
            None,
            {"headers": {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}},
        ),
        (
            "OPTIONS",
            t_jobs,
            None,
            {
                "headers": {
                    "Origin": "https://evil.example",
                    "Access-Control-Request-Method": "POST",
                }
            },
        ),
        ("GET", "/api/v1/operations", "/api/v1/operations", {}),
        ("GET", t_jobs, t_jobs, {}),
        ("GET", t_jobs + "?limit=0", t_jobs, {}),
        ("GET", t_jobs, t_jobs, {"headers": {"Authorization": "Bearer wrong"}}),
        ("GET", t_jobs + "?limit=0", t_jobs, {"headers": user}),
        ("GET", t_jobs + "?status=nope", t_jobs, {"headers": user}),
        ("GET", t_jobs + "?cursor=zzz", t_jobs, {"headers": user}),
        ("GET", t_jobs, t_jobs, {"headers": user}),
        ("GET", job, t_job, {"headers": user}),
        ("GET", job + "?wait=99", t_job, {"headers": user}),
        ("GET", job + "?wait=0&wait=1", t_job, {"headers": user}),  # repeated: 400
        ("GET", job + "?wait=0&wait=1", t_job, {}),  # ...but 401 first
        ("GET", other, t_job, {"headers": user}),
        ("GET", job, t_job, {"headers": admin}),  # another owner's job: 404
        ("GET", "/api/v1/jobs/not-a-uuid", None, {"headers": user}),
        ("GET", job + "/outputs/thumb", t_out, {"headers": user}),
        ("GET", job + "/outputs/nope", t_out, {"headers": user}),
        ("GET", job + "/archive", t_zip, {"headers": user}),
        # A `proxy` that is not a bool is a 400, and documented as one (found by schemathesis).
        ("GET", job + "/outputs/thumb?proxy=maybe", t_out, {"headers": user}),
        ("GET", job + "/archive?proxy=maybe", t_zip, {"headers": user}),
        ("GET", job + "/outputs/thumb/preview", t_out + "/preview", {"headers": user}),
        ("GET", job + "/outputs/nope/preview", t_out + "/preview", {"headers": user}),
        ("GET", job + "/source/preview", t_job + "/source/preview", {"headers": user}),
        ("POST", job + "/retry", t_job + "/retry", {"headers": user}),
        ("POST", other + "/retry", t_job + "/retry", {"headers": user}),
        ("GET", job + "/webhook-attempts", t_job + "/webhook-attempts", {"headers": user}),
        ("POST", t_jobs, t_jobs, {}),
        ("POST", t_jobs, t_jobs, {"headers": user, "content": b"x"}),
        ("POST", t_jobs, t_jobs, {**form(SPEC, b"not an image at all"), "headers": {}}),
        ("POST", t_jobs, t_jobs, merge(form(SPEC, b"not an image at all"), user)),
        ("POST", t_jobs, t_jobs, merge(form(SPEC, big), user)),
        ("POST", t_jobs, t_jobs, merge(form("{", tiny), user)),
        ("POST", t_jobs, t_jobs, merge(form(SPEC, b"\xff\xd8\xff\xe0" + b"\0" * 64), user)),
        ("POST", t_jobs, t_jobs, merge(form(SPEC, tiny), user)),
        ("GET", t_dl, t_dl, {}),
        ("GET", t_dl, t_dl, {"headers": user}),
        ("GET", t_dl + "?queue=standard", t_dl, {"headers": admin}),
        ("GET", t_dl + "?queue=bogus", t_dl, {"headers": admin}),
        ("DELETE", t_dl + "?queue=ml", t_dl, {"headers": admin}),
        ("POST", t_dl + "/replay", t_dl + "/replay", {"headers": admin, "content": b"{"}),
        (
            "POST",
            t_dl + "/replay",
            t_dl + "/replay",
            {"headers": admin, "json": {"queue": "standard", "all": True}},
        ),
    ]


def merge(kwargs: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {**kwargs, "headers": {**kwargs["headers"], **headers}}


def documented(openapi: dict[str, Any], method: str, template: str) -> set[str]:
    return set(openapi["paths"][template][method.lower()]["responses"])


def test_every_response_has_the_headers_and_every_error_the_body(
    server: Server, finished_job: str, openapi: dict[str, Any]
) -> None:
    seen: dict[int, int] = {}
    problems = []
    for method, path, template, kwargs in sweep(server, finished_job):
        resp = httpx.request(method, server.url + path, timeout=30, **kwargs)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        where = f"{method} {path} -> {resp.status_code}"
        for name, value in SECURITY_HEADERS.items():
            if resp.headers.get(name) != value:
                problems.append(f"{where}: {name} is {resp.headers.get(name)!r}")
        if "default-src 'self'" not in resp.headers.get("content-security-policy", ""):
            problems.append(f"{where}: no CSP")
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                problems.append(f"{where}: error body is not JSON: {resp.text[:80]!r}")
                continue
            if set(body) != {"status_code", "detail", "extra"}:
                problems.append(f"{where}: error body keys {sorted(body)}")
            elif body["status_code"] != resp.status_code or not body["detail"]:
                problems.append(f"{where}: error body {body}")
        if template is not None and str(resp.status_code) not in documented(
            openapi, method, template
        ):
            problems.append(f"{where}: status not in the OpenAPI for {method} {template}")
    assert not problems, "\n".join(problems)
    # The sweep did reach the errors it is about.
    for status in (200, 202, 204, 307, 400, 401, 403, 404, 405, 409, 413, 415, 422):
        if status == 307:
            continue  # local store: downloads are served, not redirected
        assert seen.get(status), (status, seen)


def test_a_request_uvicorn_cannot_parse_gets_the_json_error_and_headers(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\nBad Header Line\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"x-content-type-options: nosniff" in head.lower()
    assert json.loads(body)["status_code"] == 400


def _raw_exchange(server: Server, request: bytes) -> tuple[bytes, bytes]:
    """Send ``request`` (as far as the server reads it) and read the answer until close."""
    host, port = server.url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            for start in range(0, len(request), 16384):
                sock.sendall(request[start : start + 16384])
        except OSError:  # refused mid-request: the answer is already there
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nHost: t\r\n" + b"X-Many: aaaaaaaa\r\n" * 10_000 + b"\r\n",
        b"GET /api/v1/jobs?q=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    ],
    ids=["one-1MiB-header", "10k-headers", "200kB-url"],
)
def test_headers_over_64_kib_are_431_and_the_connection_closes(
    server: Server, request_bytes: bytes
) -> None:
    # uvicorn's httptools protocol read a 10 MB header and answered 200.
    head, body = _raw_exchange(server, request_bytes)
    assert head.startswith(b"HTTP/1.1 431"), head[:200]
    assert b"x-content-type-options: nosniff" in head.lower()
    assert json.loads(body) == {
        "status_code": 431,
        "detail": "request line and headers over 65536 bytes",
        "extra": None,
    }
    # Under the limit is served as before.
    head, _ = _raw_exchange(
        server,
        b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Big: "
        + b"a" * 60_000
        + b"\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 200"), head[:200]


def test_options_allow_lists_every_method_of_the_path(server: Server) -> None:
    jobs = httpx.options(server.url + "/api/v1/jobs")
    assert set(jobs.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    letters = httpx.options(server.url + "/api/v1/admin/dead-letters")
    assert set(letters.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE", "OPTIONS"}
    # A path with parameters too (the Allow of GET + DELETE on a job omitted GET).
    job = httpx.options(f"{server.url}/api/v1/jobs/{uuid.uuid4()}")
    assert set(job.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE", "OPTIONS"}
    cancel = httpx.options(f"{server.url}/api/v1/jobs/{uuid.uuid4()}/cancel")
    assert set(cancel.headers["allow"].split(", ")) == {"POST", "OPTIONS"}


def test_head_is_get_without_the_body_on_every_get_path(
    server: Server, finished_job: str, openapi: dict[str, Any]
) -> None:
    # It was 405 on every API route, /livez and /readyz included (RFC 9110: GET implies HEAD).
    paths = ["/", "/docs", "/openapi.json", "/favicon.ico"]
    for template, item in openapi["paths"].items():
        if "get" in item and "{" not in template:
            paths.append(template)
    job = f"/api/v1/jobs/{finished_job}"
    paths += [job, job + "/outputs/thumb", job + "/outputs/thumb/preview", job + "/nope"]
    for path in paths:
        get = httpx.get(server.url + path, headers=server.user)
        head = httpx.head(server.url + path, headers=server.user)
        assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
        assert head.content == b"", path
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
        if path not in ("/metrics", "/readyz", "/health"):  # counters and latencies change
            assert head.headers.get("content-length") == get.headers.get("content-length"), path
        assert head.headers["x-content-type-options"] == "nosniff", path
    assert httpx.head(server.url + "/api/v1/jobs", headers={}).status_code == 401
    refused = httpx.head(f"{server.url}{job}/cancel", headers=server.user)  # POST only
    assert refused.status_code == 405 and refused.content == b""


def test_options_allow_matches_openapi_on_every_path(
    server: Server, openapi: dict[str, Any]
) -> None:
    # Every documented path, its parameters filled in: Allow is exactly its methods.
    for template, item in openapi["paths"].items():
        path = re.sub(r"\{job_id\}", str(uuid.uuid4()), template)
        path = re.sub(r"\{[^}]+\}", "a", path)
        documented = {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}
        answer = httpx.options(server.url + path)
        allowed = set(answer.headers.get("allow", "").split(", ")) - {"OPTIONS", "HEAD"}
        assert allowed == documented, (template, answer.status_code, answer.headers)


def test_openapi_documents_errors_and_binary_downloads(openapi: dict[str, Any]) -> None:
    error = openapi["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"status_code", "detail", "extra"}
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if not path.startswith("/api/") or not isinstance(op, dict):
                continue
            responses = op["responses"]
            assert "429" in responses, (method, path)
            if path != "/api/v1/operations":
                assert "401" in responses, (method, path)
            for status, resp in responses.items():
                if int(status) >= 400:
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (method, path, status)
    outputs = openapi["paths"]["/api/v1/jobs/{job_id}/outputs/{name}"]["get"]["responses"]
    assert set(outputs["200"]["content"]) == {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/avif",
        "image/gif",
        "image/tiff",
    }
    assert outputs["200"]["content"]["image/png"]["schema"]["format"] == "binary"
    archive = openapi["paths"]["/api/v1/jobs/{job_id}/archive"]["get"]["responses"]
    assert set(archive["200"]["content"]) == {"application/zip"}
    submit = openapi["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert {"401", "409", "413", "415", "422", "429", "503"} <= set(submit)
    for path in ("/api/v1/admin/dead-letters", "/api/v1/admin/dead-letters/replay"):
        for op in openapi["paths"][path].values():
            assert {"401", "403"} <= set(op["responses"])


def test_a_download_is_the_documented_binary(
    server: Server, finished_job: str, openapi: dict[str, Any]
) -> None:
    resp = httpx.get(f"{server.url}/api/v1/jobs/{finished_job}/outputs/thumb", headers=server.user)
    assert resp.status_code == 200
    outputs = openapi["paths"]["/api/v1/jobs/{job_id}/outputs/{name}"]["get"]["responses"]
    assert resp.headers["content-type"] in outputs["200"]["content"]
    assert resp.content[:3] == b"\xff\xd8\xff"  # a JPEG source stays JPEG
    for path in ("/outputs/{name}/preview", "/source/preview"):
        url = f"{server.url}/api/v1/jobs/{finished_job}" + path.replace("{name}", "thumb")
        resp = httpx.get(url, headers=server.user)
        assert resp.status_code == 200, resp.text
        previews = openapi["paths"]["/api/v1/jobs/{job_id}" + path]["get"]["responses"]
        assert resp.headers["content-type"] in previews["200"]["content"], path
        assert resp.content[8:12] == b"WEBP"


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("?wait=0&wait=1", "wait"),
        ("?wait=1&since=a&since=b", "since"),
        ("/outputs/thumb?proxy=true&proxy=false", "proxy"),
        ("/archive?proxy=1&proxy=0", "proxy"),
    ],
)
def test_a_query_parameter_given_twice_is_refused_naming_it(
    server: Server, finished_job: str, query: str, name: str
) -> None:
    # Litestar keeps the last value silently (`?queue=ml&queue=standard` on a purge).
    url = f"{server.url}/api/v1/jobs/{finished_job}{query}"
    assert httpx.get(url).status_code == 401  # authentication still comes first
    resp = httpx.get(url, headers=server.user)
    assert resp.status_code == 400, resp.text
    assert resp.json() == {
        "status_code": 400,
        "detail": f"{name}: given more than once (give it once)",
        "extra": {"field": name},
    }
    for listing in ("?limit=1&limit=2", "?status=queued&status=failed"):
        resp = httpx.get(f"{server.url}/api/v1/jobs{listing}", headers=server.user)
        assert resp.status_code == 400, resp.text
    # A parameter the route does not take is ignored, however often it comes.
    resp = httpx.get(f"{server.url}/api/v1/jobs/{finished_job}?x=1&x=2", headers=server.user)
    assert resp.status_code == 200, resp.text


def test_the_preview_of_an_output_that_failed_is_a_documented_409(
    server: Server, openapi: dict[str, Any]
) -> None:
    # Found by schemathesis: 409 was answered but not in the route's OpenAPI entry.
    kw = merge(form(SPEC, png_with_corrupt_pixels(), "broken.png"), server.user)
    resp = httpx.post(server.url + "/api/v1/jobs?wait=30", timeout=60, **kw)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"][0]["status"] == "failed", resp.text
    template = "/api/v1/jobs/{job_id}/outputs/{name}/preview"
    preview = httpx.get(
        f"{server.url}/api/v1/jobs/{resp.json()['id']}/outputs/thumb/preview", headers=server.user
    )
    assert preview.status_code == 409, preview.text
    assert preview.json()["extra"] == {"status": "failed"}
    assert "409" in documented(openapi, "GET", template)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "spec-url"):
            if found.get(name):
                self.urls.append(str(found[name]))
        self._in_script = tag == "script" and "src" not in found

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_this_origin(server: Server, page: str) -> None:
    resp = httpx.get(server.url + page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in resp.headers["content-security-policy"]
    links = _Links()
    links.feed(resp.text)
    assert links.inline_scripts == 0  # the CSP would block them
    assert len(links.urls) >= 2, links.urls
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
        asset = httpx.get(server.url + url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url
        # The bundles themselves fetch the spec from this origin, not a CDN.
        if url.endswith("swagger-init.js"):
            assert '"/openapi.json"' in asset.text
    assert "http://" not in resp.text and "https://" not in resp.text


def test_duplicate_keys_in_a_spec_are_refused(server: Server) -> None:
    duplicated = (
        '{"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}], '
        '"metadata": true, "metadata": false}'
    )
    kw = merge(form(duplicated, jpeg_bytes(32, 24)), server.user)
    resp = httpx.post(server.url + "/api/v1/jobs", timeout=30, **kw)
    assert resp.status_code == 400, resp.text
    assert "duplicate key 'metadata'" in resp.json()["detail"]
