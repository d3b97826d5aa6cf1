"""The two work queues. An op's queue decides which worker process renders its output."""

from typing import Final, Literal

Queue = Literal["standard", "ml"]

STANDARD: Final[Queue] = "standard"
ML: Final[Queue] = "ml"
QUEUES: Final[tuple[Queue, ...]] = (STANDARD, ML)
