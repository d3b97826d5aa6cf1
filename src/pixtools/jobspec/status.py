"""The job and output state machines (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

JobStatus = Literal["queued", "running", "succeeded", "partial", "failed", "canceled"]

TERMINAL_JOB: frozenset[str] = frozenset({"succeeded", "partial", "failed", "canceled"})
TERMINAL_OUTPUT: frozenset[str] = frozenset({"succeeded", "failed"})


def final_status(output_statuses: Iterable[str]) -> JobStatus:
    """The terminal status of a job whose outputs have all finished.

    All succeeded: ``succeeded``; none succeeded: ``failed``; otherwise ``partial``.
    """
    statuses = list(output_statuses)
    if not statuses or any(s not in TERMINAL_OUTPUT for s in statuses):
        raise ValueError("every output must be terminal")
    ok = sum(1 for s in statuses if s == "succeeded")
    if ok == len(statuses):
        return "succeeded"
    return "failed" if ok == 0 else "partial"


def webhook_event(status: str) -> str:
    """The ``PixTools-Event`` header value for a terminal job status."""
    events = {"succeeded": "job.succeeded", "partial": "job.partial", "canceled": "job.canceled"}
    return events.get(status, "job.failed")
