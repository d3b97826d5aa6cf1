from __future__ import annotations

import subprocess
import sys

import pytest

from pixtools.settings import Settings, SettingsError


def test_defaults_are_embedded() -> None:
    s = Settings.from_env({})
    assert s.embedded
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert s.max_upload_bytes == 25 * 1024 * 1024
    assert s.max_pixels == 50_000_000
    assert s.auth == "off"


def test_values_are_parsed_from_strings() -> None:
    s = Settings.from_env(
        {
            "PIXTOOLS_MAX_PIXELS": "1000",
            "PIXTOOLS_WEBHOOK_ALLOW_PRIVATE": "true",
            "PIXTOOLS_WEBHOOK_CB_RESET_TIMEOUT": "2.5",
        }
    )
    assert (s.max_pixels, s.webhook_allow_private, s.webhook_cb_reset_timeout) == (1000, True, 2.5)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PIXTOOLS_MAX_PIXELS": "lots"}, "PIXTOOLS_MAX_PIXELS"),
        ({"PIXTOOLS_MAX_PIXELS": "0"}, "PIXTOOLS_MAX_PIXELS"),
        ({"PIXTOOLS_AUTH": "maybe"}, "PIXTOOLS_AUTH"),
        ({"PIXTOOLS_DATABASE_URL": "mysql://x/y"}, "PIXTOOLS_DATABASE_URL"),
        ({"PIXTOOLS_RABBITMQ_URL": "http://x"}, "PIXTOOLS_RABBITMQ_URL"),
        ({"PIXTOOLS_WEBHOOK_CB_FAIL_THRESHOLD": "-1"}, "PIXTOOLS_WEBHOOK_CB_FAIL_THRESHOLD"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_cli_stops_with_one_clear_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "migrate"],
        env={"PIXTOOLS_MAX_UPLOAD_BYTES": "big", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PIXTOOLS_MAX_UPLOAD_BYTES" in lines[0]
