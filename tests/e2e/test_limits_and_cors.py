"""Rate limiting shared through Redis, CORS for the one allowed origin, security headers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from pixtools.api.app import create_app
from pixtools.settings import Settings

pytestmark = pytest.mark.services


def app_env(tmp_path: Path, redis_url: str, **extra: str) -> Settings:
    return Settings.from_env(
        {"PIXTOOLS_DATA_DIR": str(tmp_path), "PIXTOOLS_REDIS_URL": redis_url, **extra}
    )


def test_rate_limit_is_shared_by_api_replicas_through_redis(tmp_path: Path, redis_url: str) -> None:
    settings = app_env(tmp_path, redis_url, PIXTOOLS_RATE_LIMIT_PER_MINUTE="5")
    headers: dict[str, str] = {}  # the identity: the peer address (X-Forwarded-For is not
    # believed from an untrusted peer: tests/e2e/test_edge_hardening.py)
    if 60 - time.time() % 60 < 5:  # fixed one-minute windows: do not straddle a boundary
        time.sleep(60 - time.time() % 60 + 0.1)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        codes = [
            c.get("/api/v1/jobs", headers=headers).status_code for c in (one, two, one, two, one)
        ]
        assert codes == [200] * 5
        limited = two.get("/api/v1/jobs", headers=headers)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 61
        assert limited.json()["detail"] == "rate limit exceeded"
        # Another identity (a presented key, unknown here: 401) is not limited; health
        # endpoints are never limited.
        assert one.get("/api/v1/jobs", headers={"X-API-Key": "other"}).status_code == 401
        assert one.get("/livez", headers=headers).status_code == 200


def test_cors_allows_only_the_configured_origin(tmp_path: Path, redis_url: str) -> None:
    settings = app_env(tmp_path, redis_url, PIXTOOLS_CORS_ORIGIN="https://pixtools.example")
    with TestClient(create_app(settings)) as client:
        ok = client.options(
            "/api/v1/jobs",
            headers={"Origin": "https://pixtools.example", "Access-Control-Request-Method": "POST"},
        )
        assert ok.headers.get("access-control-allow-origin") == "https://pixtools.example"
        other = client.get("/api/v1/jobs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        page = client.get("/")
        assert page.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/api/v1/nope").json()["status_code"] == 404  # errors keep the envelope
