"""A local HTTP server of images and failures, for URL sources."""

from __future__ import annotations

import http.server
from typing import Any, cast

from tests.support.images import jpeg_bytes


class Images(http.server.BaseHTTPRequestHandler):
    photo = jpeg_bytes(800, 600)

    def do_GET(self) -> None:
        port = cast("tuple[str, int]", self.server.server_address)[1]
        routes: dict[str, tuple[int, dict[str, str], bytes]] = {
            "/photo.jpg": (200, {"Content-Type": "image/jpeg"}, self.photo),
            "/text": (200, {}, b"hello"),
            "/missing": (404, {}, b""),
            "/big": (200, {}, b"\xff\xd8\xff" + b"0" * 300_000),
            "/elsewhere": (302, {"Location": f"http://localhost:{port}/photo.jpg"}, b""),
            "/hop": (302, {"Location": "/photo.jpg"}, b""),
        }
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return
