"""The broker's URL with its password masked, and Dramatiq's consumer records as one line each
(the records built as Dramatiq's worker builds them; the e2e test runs the real worker)."""

from __future__ import annotations

import logging

import pika.exceptions
import pytest
from dramatiq.errors import ConnectionClosed

from pixtools.messaging.brokerlog import ConsumerLogFilter, broker_problem, masked_url


def closed(exc: BaseException) -> ConnectionClosed:
    """Dramatiq's ConnectionClosed around pika's exception, as its RabbitMQ broker raises it."""
    return ConnectionClosed(exc)  # type: ignore[no-untyped-call]  # Dramatiq leaves it untyped


URL = "amqp://pixtools:s3cr%40t@rabbitmq:5672/pixtools"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "amqp://pixtools:***@rabbitmq:5672/pixtools"),
        ("amqp://u:p@ss@host/v", "amqp://u:***@host/v"),  # an '@' in the password
        ("amqp://host:5672/%2F", "amqp://host:5672/%2F"),  # nothing to hide
        ("amqps://u:pw@a/v;amqps://u:pw@b/v", "amqps://u:***@a/v;amqps://u:***@b/v"),
    ],
)
def test_masked_url(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_what_is_wrong_and_whether_retrying_can_fix_it() -> None:
    auth = pika.exceptions.ProbableAuthenticationError("ConnectionClosedByBroker: (403) ...")
    assert broker_problem(auth, URL) == (
        "authentication failed (the broker refused this user and password)",
        True,
    )
    vhost = pika.exceptions.ProbableAccessDeniedError(
        "ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost pixtools not found'"
    )
    assert broker_problem(vhost, URL) == ("the vhost 'pixtools' does not exist", True)
    lost = closed(pika.exceptions.StreamLostError("Transport indicated EOF"))
    assert broker_problem(lost, URL) == ("connection lost", False)
    refused = pika.exceptions.AMQPConnectionError(ConnectionRefusedError(111, "refused"))
    assert broker_problem(refused, URL) == ("connection refused", False)


def record(name: str, level: int, msg: str, args: tuple[object, ...]) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_consumer_connection_error_is_one_warning_and_its_restart_line_goes() -> None:
    filt = ConsumerLogFilter(URL)
    name = "dramatiq.worker.ConsumerThread(standard)"
    error = closed(pika.exceptions.StreamLostError("Transport indicated EOF"))
    first = record(name, logging.CRITICAL, "Consumer encountered a connection error: %s", (error,))
    assert filt.filter(first)
    assert first.levelname == "WARNING"
    assert first.getMessage() == (
        "broker amqp://pixtools:***@rabbitmq:5672/pixtools: connection lost; "
        "the consumer of queue standard reconnects in 3 s"
    )
    assert not filt.filter(
        record(name, logging.INFO, "Restarting consumer in %0.2f seconds.", (3,))
    )
    # After an unexpected error (a traceback, left as it is) the restart line stays.
    assert filt.filter(record(name, logging.INFO, "Restarting consumer in %0.2f seconds.", (3,)))


def test_an_ack_waiting_for_the_broker_is_one_line() -> None:
    class Message:
        message_id = "m-1"

    error = closed(pika.exceptions.ConnectionWrongStateError("closed"))
    rec = record(
        "dramatiq.worker.ConsumerThread(ml)",
        logging.WARNING,
        "Failed to post_process_message(%s) due to a connection error: %s\n"
        "The operation will be retried in %s seconds until the connection recovers.\n"
        "If you restart this worker before this operation succeeds, the message will be "
        "re-processed later.",
        (Message(), error, 1),
    )
    assert ConsumerLogFilter(URL).filter(rec)
    message = rec.getMessage()
    assert "\n" not in message
    assert message.startswith("broker amqp://pixtools:***@rabbitmq:5672/pixtools: ")
    assert message.endswith("acknowledging message m-1 on queue ml waits for it")
