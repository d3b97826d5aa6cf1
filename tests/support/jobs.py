"""A job to store, and an output's end, for the repository's tests."""

from __future__ import annotations

import uuid

from pixtools.store.jobs import NewJob, NewOutput, OutputDone


def new_job(*names: str, owner: str = "tester") -> NewJob:
    return NewJob(
        id=uuid.uuid4(),
        owner=owner,
        spec={"outputs": [{"name": n, "steps": [{"op": "grayscale"}]} for n in names]},
        source={
            "filename": "x.jpg",
            "format": "jpeg",
            "content_type": "image/jpeg",
            "bytes": 1,
            "width": 1,
            "height": 1,
            "key": "raw/x",
        },
        webhook_url=None,
        archive=len(names) > 1,
        outputs=[NewOutput(n, i, "standard", [{"op": "grayscale"}]) for i, n in enumerate(names)],
    )


DONE = OutputDone("processed/x/a.jpeg", "jpeg", "image/jpeg", 1, 1, 10, None)
