"""What a worker says about its broker: one line per connection attempt, never a traceback.

At start (``pixtools worker``, before Dramatiq starts): ``wait_for_broker`` connects once per
attempt and waits by the project's backoff while the broker cannot be reached; a refused login
or a missing vhost is a configuration error, raised at once (retrying cannot fix it).

While running, Dramatiq's consumer threads reconnect by themselves (every 3 s, forever: the
durability design relies on it). ``ConsumerLogFilter`` only rewords what they log: one WARNING
line per failed attempt naming the broker (password masked) and what is wrong, instead of a
CRITICAL line with pika's exception repr followed by an INFO line. pika's own connection
loggers are quieted in ``observability.logs`` (every failure they log is also raised to the
caller, which says it once).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

import pika
import pika.exceptions
from dramatiq.errors import BrokerConnectionError
from pika.adapters.utils.connection_workflow import AMQPConnectorStackTimeout

from pixtools.backoff import backoff

log = logging.getLogger("pixtools.worker")

# The start-up wait: 1 s, 2 s, 4 s ... at most 30 s between attempts (full jitter, so that
# many workers started together do not knock in step).
START_BACKOFF_BASE = 1.0
START_BACKOFF_CAP = 30.0
PROBE_TIMEOUT = 5.0


class BrokerConfigError(Exception):
    """The broker answered and refused us: wrong user or password, or no such vhost."""


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (each of ``;``-separated URLs)."""
    return ";".join(_mask_one(u) for u in url.split(";"))


def _mask_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a port that is not a number: the rest is still worth showing
        return url.split("@", 1)[-1] if "@" in url else url
    if password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _vhost(url: str) -> str:
    path = urlsplit(url.split(";", 1)[0]).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _leaf(exc: BaseException) -> BaseException:
    """The innermost exception pika wrapped (pika nests them in ``args``)."""
    for _ in range(10):
        inner = getattr(exc, "exception", None)  # pika's AMQPConnector*Error
        if not isinstance(inner, BaseException):
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        exc = inner
    return exc


def broker_problem(exc: BaseException, url: str) -> tuple[str, bool]:
    """What is wrong, in a few words, and whether it is a configuration error (one that
    retrying cannot fix: the broker refused the login, or the vhost does not exist)."""
    if isinstance(exc, BrokerConnectionError) and isinstance(exc.message, BaseException):
        exc = exc.message  # Dramatiq's ConnectionClosed wraps pika's exception
    config = _config_problem(exc, _vhost(url))
    if config is not None:
        return config, True
    return _transient_problem(_leaf(exc)), False


def _config_problem(exc: BaseException, vhost: str) -> str | None:
    if isinstance(
        exc, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError
    ):
        return "authentication failed (the broker refused this user and password)"
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        if "not found" in str(exc):
            return f"the vhost {vhost!r} does not exist"
        return f"access to the vhost {vhost!r} refused for this user"
    return None


_TRANSIENT: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    ((TimeoutError, AMQPConnectorStackTimeout), "timed out"),
    (pika.exceptions.AMQPHeartbeatTimeout, "heartbeats missed, connection dropped"),
    ((pika.exceptions.StreamLostError, ConnectionResetError, EOFError), "connection lost"),
)


def _transient_problem(leaf: BaseException) -> str:
    if isinstance(leaf, socket.gaierror):
        return f"host name not resolved ({leaf.strerror or leaf})"
    if isinstance(leaf, pika.exceptions.ConnectionClosedByBroker | pika.exceptions.ChannelClosed):
        return f"closed by the broker ({leaf.reply_code} {leaf.reply_text})"
    for kinds, words in _TRANSIENT:
        if isinstance(leaf, kinds):
            return words
    if isinstance(leaf, OSError) and leaf.strerror:
        return leaf.strerror[0].lower() + leaf.strerror[1:]
    text = str(leaf).strip()
    return f"{type(leaf).__name__}: {text.splitlines()[0][:200]}" if text else type(leaf).__name__


def probe(url: str) -> None:
    """Open and close one connection (one attempt, bounded by ``PROBE_TIMEOUT``)."""
    params = []
    for one in url.split(";"):
        p = pika.URLParameters(one)
        p.socket_timeout = PROBE_TIMEOUT
        p.stack_timeout = PROBE_TIMEOUT * 2
        p.blocked_connection_timeout = PROBE_TIMEOUT
        p.connection_attempts = 1
        p.retry_delay = 0
        params.append(p)
    conn = pika.BlockingConnection(params)
    conn.close()


def wait_for_broker(
    url: str,
    stop: threading.Event,
    *,
    attempt_once: Callable[[str], None] = probe,
) -> bool:
    """Return True once the broker accepts a connection, False if ``stop`` was set while
    waiting. Each failed attempt is one WARNING line; waits by the project's backoff.
    Raises ``BrokerConfigError`` at once when the broker refuses the login or has no such
    vhost."""
    where = masked_url(url)
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            attempt_once(url)
        except (pika.exceptions.AMQPError, OSError, BrokerConnectionError) as exc:
            what, config_error = broker_problem(exc, url)
        except ValueError as exc:  # pika could not read the URL
            raise BrokerConfigError(f"cannot use the broker {where}: {exc}") from None
        else:
            if attempt > 1:
                log.info("broker %s reached (attempt %d)", where, attempt)
            return True
        if config_error:
            raise BrokerConfigError(f"cannot use the broker {where}: {what}")
        delay = backoff(attempt, START_BACKOFF_BASE, START_BACKOFF_CAP)
        log.warning(
            "cannot reach the broker %s: %s; trying again in %.1f s (attempt %d)",
            where,
            what,
            delay,
            attempt,
        )
        stop.wait(delay)
    return False


_CONSUMER = "dramatiq.worker.ConsumerThread("
_CONNECTION_ERROR = "Consumer encountered a connection error: %s"
_RESTARTING = "Restarting consumer in %0.2f seconds."
_POST_PROCESS = "Failed to post_process_message("


class ConsumerLogFilter(logging.Filter):
    """On a handler: Dramatiq's consumer-thread connection errors as one WARNING line each.

    Dramatiq logs a lost or refused connection as CRITICAL "Consumer encountered a connection
    error: AMQPConnectionError: (...)" and then INFO "Restarting consumer in 3.00 seconds.";
    this rewrites the first (broker URL masked, what is wrong, the queue, the delay) and drops
    the second. Anything else passes unchanged (an unexpected error keeps its traceback)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.where = masked_url(url)
        self._folded: set[str] = set()  # consumer loggers whose restart line is said already
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """False drops the record; the connection-error record is reworded in place."""
        if not record.name.startswith(_CONSUMER):
            return True
        queue = record.name[len(_CONSUMER) : -1]
        if record.msg == _CONNECTION_ERROR and isinstance(record.args, tuple) and record.args:
            exc = record.args[0]
            what = broker_problem(exc, self.url)[0] if isinstance(exc, BaseException) else exc
            self._reword(
                record,
                "broker %s: %s; the consumer of queue %s reconnects in %.0f s",
                (self.where, what, queue, _restart_delay()),
            )
            with self._lock:
                self._folded.add(record.name)
            return True
        if record.msg == _RESTARTING:
            with self._lock:
                if record.name in self._folded:
                    self._folded.discard(record.name)
                    return False
            return True
        if isinstance(record.msg, str) and record.msg.startswith(_POST_PROCESS):
            args = record.args if isinstance(record.args, tuple) else ()
            exc = args[1] if len(args) > 1 else None
            what = broker_problem(exc, self.url)[0] if isinstance(exc, BaseException) else exc
            message_id = getattr(args[0], "message_id", "?") if args else "?"
            self._reword(
                record,
                "broker %s: %s; acknowledging message %s on queue %s waits for it",
                (self.where, what, message_id, queue),
            )
        return True

    @staticmethod
    def _reword(record: logging.LogRecord, msg: str, args: tuple[object, ...]) -> None:
        record.msg = msg
        record.args = args
        record.levelno = logging.WARNING
        record.levelname = logging.getLevelName(logging.WARNING)
        record.exc_info = None
        record.exc_text = None


def _restart_delay() -> float:
    from dramatiq import worker

    return float(getattr(worker, "CONSUMER_RESTART_DELAY_SECS", 3.0))


def install_consumer_log_filter(url: str) -> None:
    """Add ``ConsumerLogFilter`` to every handler of the root logger (Dramatiq names its
    consumer loggers per queue, and a logger's filter does not apply to its children)."""
    filt = ConsumerLogFilter(url)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ConsumerLogFilter) for f in handler.filters):
            handler.addFilter(filt)
