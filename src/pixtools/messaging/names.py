"""Every name a message travels under: queues, actors, dead-letter queues.

The store writes outbox rows naming an actor; it is handed these names (it imports no
messaging), the relay publishes under them, and the workers declare actors with them.
"""

from typing import Final

from pixtools.jobspec.queues import ML, QUEUES, STANDARD, Queue

__all__ = [
    "FINALIZE_ACTOR",
    "ML",
    "PROCESS_ACTOR",
    "QUEUES",
    "STANDARD",
    "WEBHOOK_ACTOR",
    "Queue",
    "dead_letter_queue",
]

PROCESS_ACTOR: Final[dict[Queue, str]] = {STANDARD: "process_output", ML: "process_output_ml"}
FINALIZE_ACTOR: Final = "finalize_job"
WEBHOOK_ACTOR: Final = "deliver_webhook"


def dead_letter_queue(queue: str) -> str:
    """Where Dramatiq's RabbitMQ broker keeps the messages of ``queue`` it gave up on."""
    return f"{queue}.XQ"
