from __future__ import annotations

import pytest

from pixtools.jobspec.status import final_status, webhook_event


@pytest.mark.parametrize(
    ("outputs", "status"),
    [
        (["succeeded"], "succeeded"),
        (["succeeded", "succeeded"], "succeeded"),
        (["failed"], "failed"),
        (["failed", "failed"], "failed"),
        (["succeeded", "failed"], "partial"),
    ],
)
def test_final_status(outputs: list[str], status: str) -> None:
    assert final_status(outputs) == status


@pytest.mark.parametrize("outputs", [[], ["pending"], ["succeeded", "running"]])
def test_final_status_needs_every_output_terminal(outputs: list[str]) -> None:
    with pytest.raises(ValueError, match="terminal"):
        final_status(outputs)


def test_webhook_events() -> None:
    assert [webhook_event(s) for s in ("succeeded", "partial", "failed")] == [
        "job.succeeded",
        "job.partial",
        "job.failed",
    ]
