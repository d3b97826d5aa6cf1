"""The real `pixtools` command line as a subprocess: ordinary mistakes get one clear line and a
non-zero exit, never a traceback; --version; every option's --help says what it does."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixtools import __version__
from pixtools.cli import build_parser
from tests.support.images import jpeg_bytes
from tests.support.processes import ROOT
from tests.support.servers import PG_ADMIN

# Runs the CLI in a Python where numpy and onnxruntime cannot be imported (the ML extra is
# not installed): importing either raises ModuleNotFoundError, as on such an install.
WITHOUT_ML = (
    "import sys; sys.modules['numpy'] = None; sys.modules['onnxruntime'] = None; "
    "from pixtools.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def pixtools(
    *args: str, env: dict[str, str] | None = None, without_ml: bool = False, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    prefix = ["-c", WITHOUT_ML] if without_ml else ["-m", "pixtools.cli"]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The process failed with a message (containing ``words``) and no traceback."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    message = proc.stderr.strip()
    assert message.startswith("pixtools"), message
    for word in words:
        assert word in message, message
    return message


def test_version() -> None:
    proc = pixtools("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"pixtools {__version__}"
    # `python -m pixtools` is the same command line.
    module = subprocess.run(
        [sys.executable, "-m", "pixtools", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout.strip() == f"pixtools {__version__}"


def test_process_output_folder_that_cannot_be_made_or_written(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(40, 30))
    spec = json.dumps({"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]})
    refused(pixtools("process", str(image), "--spec", spec, "--out", str(image)), "is a file")
    # A file where a folder of the path should be: the folder cannot be made.
    below = str(image / "out")
    refused(pixtools("process", str(image), "--spec", spec, "--out", below), "output folder")


def test_process_spec_that_is_json_but_not_an_object(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(40, 30))
    message = refused(pixtools("process", str(image), "--spec", "[1]"), "Expected `object`")
    assert message == "pixtools process: spec: Expected `object`, got `array`"


def test_migrate_and_keys_say_what_is_wrong_with_the_database(tmp_path: Path) -> None:
    data = {"PIXTOOLS_DATA_DIR": str(tmp_path / "data")}
    # A fresh data folder: no tables yet.
    refused(pixtools("keys", "create", "me", env=data), "no such table", "pixtools migrate")
    refused(pixtools("migrate", "--revision", "nonesuch", env=data), "revision nonesuch")
    (tmp_path / "file").write_text("x")
    refused(pixtools("migrate", env={"PIXTOOLS_DATA_DIR": str(tmp_path / "file")}), "not a folder")


def test_process_missing_image_or_spec_file(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}))
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(40, 30))
    refused(pixtools("process", str(tmp_path / "nope.jpg"), "--spec", str(spec)), "nope.jpg")
    refused(pixtools("process", str(image), "--spec", str(tmp_path / "nope.json")), "nope.json")
    refused(pixtools("process", str(image), "--spec", str(tmp_path)), "is a folder")


def test_process_accepts_an_inline_json_spec(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(80, 60))
    spec = {"outputs": [{"name": "small", "steps": [{"op": "resize", "width": 40}]}]}
    proc = pixtools("process", str(image), "--spec", json.dumps(spec), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outputs"]["small"]["status"] == "succeeded"
    assert Image.open(tmp_path / "small.jpg").size == (40, 30)
    bad = pixtools("process", str(image), "--spec", '{"outputs": [{"name": "a"')
    refused(bad, "malformed JSON")


def test_ml_op_without_the_ml_extra_says_what_to_install(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(80, 60))
    spec = {"outputs": [{"name": "faces", "steps": [{"op": "detect_faces"}]}]}
    proc = pixtools("process", str(image), "--spec", json.dumps(spec), without_ml=True)
    refused(proc, "outputs[0].steps[0] (detect_faces)", "numpy", "pip install")
    worker = pixtools(
        "worker",
        "--queues",
        "ml",
        env={
            "PIXTOOLS_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/none",
            "PIXTOOLS_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/none",
        },
        without_ml=True,
    )
    refused(worker, "the ml queue needs numpy", "pip install")


@pytest.mark.services
def test_unknown_ids_are_refused(rabbit_url: str, private_pg_url: str) -> None:
    env = {"PIXTOOLS_RABBITMQ_URL": rabbit_url, "PIXTOOLS_DATABASE_URL": private_pg_url}
    replay = pixtools("dlq", "replay", "--queue", "standard", "no-such-message", env=env)
    refused(replay, "not in the standard dead-letter queue")
    revoke = pixtools("keys", "revoke", "no-such-key", env=env)
    refused(revoke, "no active key no-such-key")


@pytest.mark.services
def test_migrate_without_its_database_is_one_line() -> None:
    server = PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    missing = server + "/pixtools_no_such_db"
    proc = pixtools("migrate", env={"PIXTOOLS_DATABASE_URL": missing})
    message = refused(proc, "cannot use the database")
    assert message == (
        'pixtools migrate: cannot use the database: database "pixtools_no_such_db" does not exist'
    )
    closed = "postgresql+asyncpg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
    refused(pixtools("migrate", env={"PIXTOOLS_DATABASE_URL": closed}), "cannot use the database")


@pytest.mark.services
def test_worker_without_its_database_stops_at_once_with_one_line(rabbit_url: str) -> None:
    server = PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    env = {
        "PIXTOOLS_RABBITMQ_URL": rabbit_url,
        "PIXTOOLS_DATABASE_URL": server + "/pixtools_no_such_db",
    }
    message = refused(pixtools("worker", "--queues", "standard", env=env), "cannot use")
    assert message == (
        "pixtools worker: cannot use the database postgresql+asyncpg://postgres@127.0.0.1:5432/"
        'pixtools_no_such_db: database "pixtools_no_such_db" does not exist'
    )


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


@pytest.mark.parametrize(
    "path", [p for p, _ in _commands(build_parser())], ids=lambda p: " ".join(p) or "pixtools"
)
def test_every_help_explains_each_option_and_its_default(path: tuple[str, ...]) -> None:
    parser = dict(_commands(build_parser()))[path]
    proc = pixtools(*path, "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"{' '.join(path)} {name}: no help text"
        assert " ".join(action.help.split()) in text
        shows_default = action.default not in (None, False) and not action.required
        if shows_default and not isinstance(action, argparse._VersionAction):
            assert f"(default: {action.default})" in text, f"{name}: default not shown"
