"""Embedded mode without the ML extra refuses ML ops at submit, naming the step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from pixtools.api import app as app_module
from pixtools.api.app import create_app
from pixtools.settings import Settings
from tests.support.images import jpeg_bytes


def test_ml_ops_refused_when_this_process_cannot_run_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "ml_available", lambda: False)
    app = create_app(Settings.from_env({"PIXTOOLS_DATA_DIR": str(tmp_path)}))
    spec = {
        "outputs": [
            {"name": "a", "steps": [{"op": "grayscale"}]},
            {"name": "b", "steps": [{"op": "resize", "width": 10}, {"op": "ocr"}]},
        ]
    }
    with TestClient(app) as client:
        r = client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(64, 64))},
            data={"spec": json.dumps(spec)},
        )
        assert r.status_code == 400
        assert r.json()["extra"]["field"] == "outputs[1].steps[1].op"
        assert "ml extra" in r.json()["detail"]
        assert client.get("/api/v1/jobs").json()["items"] == []  # nothing created
