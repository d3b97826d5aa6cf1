"""`pixtools worker` and a broker it cannot use, against the real RabbitMQ (never stopped: a
TCP forwarder of the test's own stands between the worker and RabbitMQ and is taken away).

- a refused login or a missing vhost: exit 1, one line on stderr naming the broker with its
  password masked; retrying cannot fix either;
- nothing listening (a wrong port, a broker not up yet): one WARNING line per attempt, no
  traceback, waiting by the project's backoff until the broker is there, then the worker runs;
- the connection lost while running: one WARNING line per reconnect attempt of each consumer
  (Dramatiq's own reconnect), no traceback, and the consumers are back once the broker is.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ROOT, wait_for
from tests.support.servers import RABBIT_HOST
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.services

PASSWORD = "guest"  # RabbitMQ's guest user (the shared test server); must never be printed


def worker_env(rabbit_url: str, pg_url: str, data_dir: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    return {
        **base,
        "PIXTOOLS_RABBITMQ_URL": rabbit_url,
        "PIXTOOLS_DATABASE_URL": pg_url,
        "PIXTOOLS_DATA_DIR": str(data_dir),
        "PIXTOOLS_LOG_FORMAT": "text",
        # A reconciliation pass every second: it meets the missing broker too, and must say
        # so in one line as well.
        "PIXTOOLS_STALE_AFTER_SECONDS": "2",
    }


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "worker", "--queues", "standard"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def with_host(rabbit_url: str, host: str, *, password: str = PASSWORD, vhost: str = "") -> str:
    scheme, rest = rabbit_url.split("://", 1)
    own_vhost = rest.rsplit("/", 1)[1]
    return f"{scheme}://guest:{password}@{host}/{vhost or own_vhost}"


def masked(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert 'File "' not in text, text
    assert "CRITICAL" not in text, text
    assert " pika." not in text, text  # pika's own connection loggers stay quiet


def test_a_refused_login_stops_at_once_with_one_line(
    private_rabbit_url: str, private_pg_url: str, tmp_path: Path
) -> None:
    url = with_host(private_rabbit_url, RABBIT_HOST, password="not-the-password")
    proc = run_worker(worker_env(url, private_pg_url, tmp_path))
    assert proc.returncode == 1, proc
    no_traceback(proc.stderr + proc.stdout)
    assert "not-the-password" not in proc.stderr + proc.stdout
    assert proc.stderr.splitlines() == [
        f"pixtools worker: cannot use the broker {masked(url)}: authentication failed "
        "(the broker refused this user and password)"
    ]


def test_a_missing_vhost_stops_at_once_with_one_line(
    private_rabbit_url: str, private_pg_url: str, tmp_path: Path
) -> None:
    url = with_host(private_rabbit_url, RABBIT_HOST, vhost="pixtools_no_such_vhost")
    proc = run_worker(worker_env(url, private_pg_url, tmp_path))
    assert proc.returncode == 1, proc
    no_traceback(proc.stderr + proc.stdout)
    assert f":{PASSWORD}@" not in proc.stderr + proc.stdout
    assert proc.stderr.splitlines() == [
        f"pixtools worker: cannot use the broker {masked(url)}: "
        "the vhost 'pixtools_no_such_vhost' does not exist"
    ]


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A standard-queue worker in its own session, its stderr into log_path."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pixtools.cli", "worker", "--queues", "standard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
            start_new_session=True,
        )


def stop(worker: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM to the process `pixtools worker` became (Dramatiq's main process, which passes
    it on to its worker processes), as the kubelet sends it; its exit code, or None (then the
    whole group is killed) if it is still there after 60 s."""
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        return None


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    host, port = RABBIT_HOST.rsplit(":", 1)
    p = TcpProxy(host, int(port))
    try:
        yield p
    finally:
        p.down()


def consumers(vhost: str, queue: str) -> int:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "consumers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return int(parts[1])
    return 0


def test_unreachable_broker_waits_one_line_per_attempt_and_reconnects(
    proxy: TcpProxy, private_rabbit_url: str, private_pg_url: str, tmp_path: Path
) -> None:
    vhost = private_rabbit_url.rsplit("/", 1)[1]
    url = with_host(private_rabbit_url, f"127.0.0.1:{proxy.port}")  # nothing listens yet
    log_path = tmp_path / "worker.log"
    worker = start_worker(worker_env(url, private_pg_url, tmp_path), log_path)

    def lines(word: str) -> list[str]:
        return [line for line in log_path.read_text().splitlines() if word in line]

    try:
        # 1. At start, a port where nothing listens: one WARNING line per attempt.
        waiting = "cannot reach the broker"
        wait_for(lambda: len(lines(waiting)) >= 3, 60, "three start-up attempts")
        assert worker.poll() is None  # still waiting, not given up
        for line in lines(waiting):
            assert "WARNING pixtools.worker:" in line, line
            assert f"{masked(url)}: connection refused; trying again in" in line, line
        attempts = [int(line.rsplit("attempt ", 1)[1].rstrip(")")) for line in lines(waiting)]
        assert attempts[:3] == [1, 2, 3]

        # 2. The broker comes: the worker connects and consumes.
        proxy.up()
        wait_for(lambda: lines("Worker process is ready"), 60, "the worker to start")
        wait_for(lambda: consumers(vhost, "standard") >= 1, 60, "a consumer on standard")

        # 3. The broker goes away while the worker runs: one WARNING line per reconnect
        #    attempt of each consumer, naming the broker (masked) and what is wrong.
        before = len(lines("reconnects in"))
        proxy.down()
        lost = "the consumer of queue standard reconnects in"
        wait_for(lambda: len(lines(lost)) >= 2, 60, "two reconnect attempts")
        for line in lines("reconnects in")[before:]:
            assert "WARNING dramatiq.worker.ConsumerThread(standard" in line, line
            assert f"broker {masked(url)}: " in line, line
        wait_for(lambda: lines("reconciliation pass skipped"), 60, "a pass without broker")
        assert all(masked(url) in line for line in lines("reconciliation pass skipped"))

        # 4. It comes back: Dramatiq's consumers reconnect by themselves.
        wait_for(lambda: consumers(vhost, "standard") == 0, 60, "RabbitMQ to drop the consumer")
        accepted = proxy.accepted
        proxy.up()
        wait_for(lambda: consumers(vhost, "standard") >= 1, 60, "the consumer back")
        assert proxy.accepted > accepted  # new connections, through the forwarder
    finally:
        code = stop(worker)
    text = log_path.read_text()
    assert code == 0, text
    no_traceback(text)
    assert f":{PASSWORD}@" not in text
    assert "Restarting consumer" not in text  # folded into the one WARNING line


def test_sigterm_while_waiting_for_the_broker_stops_cleanly(
    proxy: TcpProxy, private_rabbit_url: str, private_pg_url: str, tmp_path: Path
) -> None:
    url = with_host(private_rabbit_url, f"127.0.0.1:{proxy.port}")  # never listens
    log_path = tmp_path / "worker.log"
    worker = start_worker(worker_env(url, private_pg_url, tmp_path), log_path)
    try:
        wait_for(lambda: "attempt 2)" in log_path.read_text(), 60, "two attempts")
    finally:
        code = stop(worker)
    text = log_path.read_text()
    assert code == 0, text
    no_traceback(text)
    assert all("connection refused" in line for line in text.splitlines()), text
